//! Tokenizer parity with transformers (`PreTrainedTokenizerFast`, padding to
//! `max_length`, truncation on) on a tiny Unigram `tokenizer.json` recorded by
//! `tools/fixtures/t5.py`. Ids and masks must be identical.

use crate::common;

use common::fixtures;
use imagen_text::{T5Tokenizer, TextError};

#[derive(serde::Deserialize)]
struct Expected {
    prompts: Vec<String>,
    cases: std::collections::BTreeMap<String, Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
}

fn tokenizer() -> T5Tokenizer {
    T5Tokenizer::from_file(fixtures().join("tokenizer/tokenizer.json")).unwrap()
}

#[test]
fn ids_and_masks_match_transformers() {
    let text = std::fs::read_to_string(fixtures().join("tokenizer/expected.json")).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    let prompts: Vec<&str> = expected.prompts.iter().map(String::as_str).collect();
    let tok = tokenizer();
    for (max_length, case) in &expected.cases {
        let max_length: usize = max_length.parse().unwrap();
        let batch = tok.encode(&prompts, max_length).unwrap();
        assert_eq!(
            batch.input_ids, case.input_ids,
            "ids at max_length {max_length}"
        );
        assert_eq!(
            batch.attention_mask, case.attention_mask,
            "mask at max_length {max_length}"
        );
    }
}

#[test]
fn truncation_is_reported_and_keeps_eos() {
    let tok = tokenizer();
    let eos = tok.inner().token_to_id("</s>").unwrap();
    let long = "two small green triangles to the left of a yellow star and three circles";
    let batch = tok.encode(&["a red circle", long], 8).unwrap();
    assert_eq!(batch.truncated.len(), 1);
    let t = &batch.truncated[0];
    assert_eq!((t.index, t.kept), (1, 8));
    assert!(t.needed > 8);
    assert_eq!(*batch.input_ids[1].last().unwrap(), eos);
    assert!(batch.attention_mask[1].iter().all(|&m| m == 1));
    assert!(t.to_string().contains("truncated to 8"));
}

#[test]
fn empty_prompt_list_is_an_error() {
    assert!(matches!(
        tokenizer().encode(&[], 77),
        Err(TextError::EmptyInput)
    ));
}

#[test]
fn max_length_must_leave_room_for_eos() {
    let err = tokenizer().encode(&["a"], 1).unwrap_err();
    assert!(
        matches!(
            err,
            TextError::MaxLengthTooSmall {
                max_length: 1,
                special: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn missing_or_broken_tokenizer_names_the_file() {
    let err = T5Tokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/tokenizer.json"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("imagen-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, "{ not json").unwrap();
    let err = T5Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, TextError::Tokenizer { .. }), "{err}");
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

/// Text the vocabulary lacks becomes `<unk>`: reported by name, not
/// silently dropped (the fixture's Unigram vocabulary has no CJK or symbols).
#[test]
fn unknown_words_are_reported_by_name() {
    let batch = tokenizer()
        .encode(&["a red circle", "a red circle beneath 日本 ☃"], 32)
        .unwrap();
    assert_eq!(batch.unknown.len(), 1, "{:?}", batch.unknown);
    assert_eq!(batch.unknown[0].index, 1);
    assert_eq!(batch.unknown[0].words, ["日本", "☃"]);
    let msg = batch.unknown[0].to_string();
    assert!(msg.contains("`日本`") && msg.contains("prompt 1"), "{msg}");
}
