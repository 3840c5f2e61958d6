//! Bad input at scale for the text-side loaders (issue 39, part 3): T5
//! `config.json`, `tokenizer.json`, the hand-written SentencePiece reader
//! (`spiece.model` with `tokenizer_config.json`), and the whole
//! `TextEncoder::from_dir` (config, weights and tokenizer together). See
//! `fuzz_support` for the mutations and the checks and `docs/robustness.md`
//! for the ten-minute runs; `IMAGEN_FUZZ_SECS=600` runs each target that long.

#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use fuzz_support::{Target, run};
use imagen_text::{T5Config, T5Tokenizer, TextEncoder};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

/// A loaded tokenizer is also used: prompts with ordinary, special and
/// unknown text, at a length that truncates.
fn use_tokenizer(tok: &T5Tokenizer) -> Result<(), Box<dyn std::error::Error>> {
    let prompts = [
        "a red circle",
        "",
        "<extra_id_0> </s> ▁▁ 東京 \u{0}",
        "x y z w v u t s r",
    ];
    for len in [4, 77] {
        match tok.encode(&prompts, len) {
            Ok(_) | Err(imagen_text::TextError::MaxLengthTooSmall { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[test]
fn fuzz_t5_config() {
    run(Target::new(
        "t5_config",
        fixtures().join("t5_gated"),
        &["config.json"],
        corpus(),
        |dir| {
            T5Config::from_file(dir.join("config.json"))?;
            Ok(())
        },
    )
    .ci_cases(300));
}

#[test]
fn fuzz_tokenizer_json() {
    run(Target::new(
        "tokenizer_json",
        fixtures().join("tokenizer"),
        &["tokenizer.json"],
        corpus(),
        |dir| {
            let tok = T5Tokenizer::from_file(dir.join("tokenizer.json"))?;
            // Errors of use name the prompt, not a file; the file loaded.
            let _ = use_tokenizer(&tok);
            Ok(())
        },
    )
    .ci_cases(150));
}

#[test]
fn fuzz_spiece_model() {
    run(Target::new(
        "spiece_model",
        fixtures().join("spiece"),
        &["spiece.model", "tokenizer_config.json"],
        corpus(),
        |dir| {
            let tok = T5Tokenizer::from_dir(dir)?;
            let _ = use_tokenizer(&tok);
            Ok(())
        },
    )
    .ci_cases(300));
}

/// A config that parses and validates but describes another network than
/// the weights (a `d_ff` of 64 instead of 32) is refused by a shape, missing
/// or unused tensor error, which names the tensor key and both shapes:
/// neither file alone is at fault, so no one file is named.
fn names_a_tensor(msg: &str) -> bool {
    msg.starts_with("tensor `")
}

#[test]
fn fuzz_text_encoder_dir() {
    run(Target::new(
        "text_encoder_dir",
        fixtures().join("t5_gated"),
        &["config.json", "model.safetensors", "tokenizer.json"],
        corpus(),
        |dir| {
            TextEncoder::<Flex>::from_dir(dir, &Default::default())?;
            Ok(())
        },
    )
    .accept(names_a_tensor)
    .ci_cases(100));
}
