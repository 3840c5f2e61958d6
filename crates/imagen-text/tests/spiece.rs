//! A T5 tokenizer directory with only a SentencePiece `spiece.model` (the
//! DeepFloyd IF layout) against transformers, recorded by
//! `tools/fixtures/spiece.py`, and malformed models that must be refused with
//! an error naming the file, never a panic.

use std::path::{Path, PathBuf};

use crate::common::fixtures;
use imagen_text::{PieceType, SentencePieceModel, T5SpecialTokens, T5Tokenizer, TextError};

#[derive(serde::Deserialize)]
struct Expected {
    max_length: usize,
    prompts: Vec<String>,
    vocab_size: usize,
    pieces: usize,
    transformers5: Rows,
    transformers4: V4,
    sentencepiece: SentencePieceRows,
    differences: Differences,
}

#[derive(serde::Deserialize)]
struct Rows {
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
}

#[derive(serde::Deserialize)]
struct V4 {
    slow: Rows,
    fast: Rows,
}

#[derive(serde::Deserialize)]
struct SentencePieceRows {
    prompt_indices: Vec<usize>,
    input_ids: Vec<Vec<u32>>,
}

#[derive(serde::Deserialize)]
struct Differences {
    sentencepiece_vs_transformers5: Vec<usize>,
    slow_vs_transformers5: Vec<usize>,
    fast_vs_transformers5: Vec<usize>,
}

fn dir() -> PathBuf {
    fixtures().join("spiece")
}

fn expected(dir: &Path) -> Expected {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imagen-spiece-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Indices of the prompts whose ids or mask differ from `rows`.
fn mismatches(tok: &T5Tokenizer, e: &Expected, rows: &Rows) -> Vec<usize> {
    let prompts: Vec<&str> = e.prompts.iter().map(String::as_str).collect();
    let batch = tok.encode(&prompts, e.max_length).unwrap();
    (0..prompts.len())
        .filter(|&i| {
            batch.input_ids[i] != rows.input_ids[i]
                || batch.attention_mask[i] != rows.attention_mask[i]
        })
        .collect()
}

fn check_parity(dir: &Path) {
    let e = expected(dir);
    let tok = T5Tokenizer::from_dir(dir).unwrap();
    assert_eq!(tok.inner().get_vocab_size(true), e.vocab_size);
    let prompts: Vec<&str> = e.prompts.iter().map(String::as_str).collect();
    let batch = tok.encode(&prompts, e.max_length).unwrap();
    for (i, prompt) in prompts.iter().enumerate() {
        assert_eq!(
            batch.input_ids[i], e.transformers5.input_ids[i],
            "ids of prompt {i} {prompt:?}"
        );
        assert_eq!(
            batch.attention_mask[i], e.transformers5.attention_mask[i],
            "mask of prompt {i} {prompt:?}"
        );
    }
    // transformers 4 (slow SentencePiece and converted fast tokenizers) and
    // SentencePiece itself differ from transformers 5 only where recorded.
    assert_eq!(
        mismatches(&tok, &e, &e.transformers4.slow),
        e.differences.slow_vs_transformers5
    );
    assert_eq!(
        mismatches(&tok, &e, &e.transformers4.fast),
        e.differences.fast_vs_transformers5
    );
    let sp_diff: Vec<usize> = e
        .sentencepiece
        .prompt_indices
        .iter()
        .zip(&e.sentencepiece.input_ids)
        .filter(|&(&i, ids)| batch.input_ids[i][..ids.len()] != ids[..])
        .map(|(&i, _)| i)
        .collect();
    assert_eq!(sp_diff, e.differences.sentencepiece_vs_transformers5);
}

#[test]
fn spiece_dir_matches_transformers_for_every_prompt() {
    check_parity(&dir());
}

/// The same prompts on a model with SentencePiece's full `nmt_nfkc` rules, as
/// T5's own: `python tools/fixtures/spiece.py --nfkc DIR` writes it (240 kB,
/// not committed), then `IMAGEN_SPIECE_NFKC_DIR=DIR cargo test -p imagen-text
/// --test integration -- --ignored nfkc`.
#[test]
#[ignore = "needs IMAGEN_SPIECE_NFKC_DIR from tools/fixtures/spiece.py --nfkc"]
fn spiece_nfkc_dir_matches_transformers() {
    let dir = std::env::var_os("IMAGEN_SPIECE_NFKC_DIR").expect("IMAGEN_SPIECE_NFKC_DIR");
    check_parity(Path::new(&dir));
}

#[test]
fn vocabulary_is_pieces_then_sentinels_in_reverse() {
    let e = expected(&dir());
    let model = SentencePieceModel::from_file(dir().join("spiece.model")).unwrap();
    assert_eq!(model.pieces.len(), e.pieces);
    assert_eq!(model.unk_id, 2);
    assert_eq!(model.pieces[0].piece, "<pad>");
    assert_eq!(model.pieces[0].kind, PieceType::Control);
    assert_eq!(model.pieces[1].piece, "</s>");
    assert_eq!(model.pieces[2].kind, PieceType::Unknown);
    assert!(!model.precompiled_charsmap.is_empty());
    assert!(model.add_dummy_prefix && model.remove_extra_whitespaces);

    let tok = T5Tokenizer::from_dir(dir()).unwrap();
    let id = |t: &str| tok.inner().token_to_id(t).unwrap() as usize;
    assert_eq!(tok.pad_id(), 0);
    assert_eq!(id("</s>"), 1);
    assert_eq!(id("<extra_id_99>"), e.pieces);
    assert_eq!(id("<extra_id_0>"), e.pieces + 99);
}

#[test]
fn without_a_config_the_defaults_are_transformers_defaults() {
    let d = scratch("noconfig");
    std::fs::copy(dir().join("spiece.model"), d.join("spiece.model")).unwrap();
    let e = expected(&dir());
    let tok = T5Tokenizer::from_dir(&d).unwrap();
    assert!(mismatches(&tok, &e, &e.transformers5).is_empty());

    // extra_ids = 0: no sentinels, `<extra_id_3>` is plain text.
    std::fs::write(d.join("tokenizer_config.json"), r#"{"extra_ids": 0}"#).unwrap();
    let tok = T5Tokenizer::from_dir(&d).unwrap();
    assert_eq!(tok.inner().get_vocab_size(true), e.pieces);
    assert_eq!(tok.inner().token_to_id("<extra_id_0>"), None);
}

#[test]
fn from_dir_prefers_tokenizer_json() {
    let d = scratch("both");
    std::fs::copy(dir().join("spiece.model"), d.join("spiece.model")).unwrap();
    std::fs::copy(
        fixtures().join("tokenizer/tokenizer.json"),
        d.join("tokenizer.json"),
    )
    .unwrap();
    let json = T5Tokenizer::from_file(d.join("tokenizer.json")).unwrap();
    let tok = T5Tokenizer::from_dir(&d).unwrap();
    assert_eq!(
        tok.inner().get_vocab_size(true),
        json.inner().get_vocab_size(true)
    );
}

#[test]
fn from_dir_without_a_tokenizer_names_the_dir_and_both_files() {
    let d = scratch("empty");
    let err = T5Tokenizer::from_dir(&d).unwrap_err();
    assert!(matches!(err, TextError::Tokenizer { .. }), "{err}");
    let msg = err.to_string();
    for part in [d.to_str().unwrap(), "tokenizer.json", "spiece.model"] {
        assert!(msg.contains(part), "{msg}");
    }
}

/// Writes `bytes` as `spiece.model` in a scratch dir and loads it; the error
/// must be a tokenizer error naming the file.
fn refused(name: &str, bytes: &[u8]) -> String {
    let d = scratch(name);
    let path = d.join("spiece.model");
    std::fs::write(&path, bytes).unwrap();
    let err = T5Tokenizer::from_dir(&d).unwrap_err();
    assert!(matches!(err, TextError::Tokenizer { .. }), "{name}: {err}");
    let msg = err.to_string();
    assert!(msg.contains(path.to_str().unwrap()), "{name}: {msg}");
    msg
}

/// A length-delimited protobuf field.
fn field(number: u8, body: &[u8]) -> Vec<u8> {
    assert!(number < 16);
    let mut out = vec![(number << 3) | 2];
    let mut len = body.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(body);
    out
}

/// A `SentencePiece` message: piece text, score 0, the given type.
fn piece(text: &str, kind: u8) -> Vec<u8> {
    let mut body = field(1, text.as_bytes());
    body.extend_from_slice(&[0x15, 0, 0, 0, 0, 0x18, kind]);
    field(1, &body)
}

/// A minimal valid model: `<unk>` (id 0, the proto default unk_id) and `a`.
fn minimal() -> Vec<u8> {
    let mut m = piece("<unk>", 2);
    m.extend(piece("a", 1));
    m
}

#[test]
fn minimal_model_loads() {
    let d = scratch("minimal");
    std::fs::write(d.join("spiece.model"), minimal()).unwrap();
    let tok = T5Tokenizer::from_spiece(d.join("spiece.model"), None);
    // No `</s>` and no `<pad>` in it: the default eos/pad tokens become new
    // added tokens, as transformers' add_special_tokens would make them.
    let tok = tok.unwrap();
    let eos = tok.inner().token_to_id("</s>").unwrap();
    assert_eq!((eos, tok.pad_id()), (102, 103));
    let batch = tok.encode(&["a b"], 8).unwrap();
    // "▁" and "b" are unknown: ▁ (unk) a, then ▁b fused into one unk.
    assert_eq!(batch.input_ids[0], [0, 1, 0, eos, 103, 103, 103, 103]);
}

#[test]
fn malformed_models_are_refused_with_the_file_named() {
    let good = std::fs::read(dir().join("spiece.model")).unwrap();
    refused("empty", b"");
    refused("truncated", &good[..good.len() / 2]);
    refused(
        "garbage",
        b"this is not a protobuf message at all \xff\xff\xff",
    );
    // Field 1, length-delimited, claiming 2^62 bytes.
    refused(
        "huge",
        &[0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40],
    );
    // An 11-byte varint.
    refused(
        "longvarint",
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    );
    // Wire types 3 (group), 7 (invalid), field number 0.
    refused("group", &[0x0b]);
    refused("wiretype7", &[0x0f, 0x00]);
    refused("field0", &[0x02, 0x00]);
    // `pieces` as a varint instead of a message.
    refused("wrongtype", &[0x08, 0x01]);
    let msg = refused("nopieces", &field(2, &[0x18, 0x01]));
    assert!(msg.contains("no pieces"), "{msg}");

    // A BPE model (trainer_spec.model_type = 2): appended fields merge.
    let mut bpe = good.clone();
    bpe.extend(field(2, &[0x18, 0x02]));
    let msg = refused("bpe", &bpe);
    assert!(msg.contains("BPE"), "{msg}");

    // unk_id past the pieces.
    let mut m = minimal();
    m.extend(field(2, &[0xc0, 0x02, 0x07]));
    let msg = refused("unkid", &m);
    assert!(msg.contains("unk_id"), "{msg}");
    // A negative unk_id (sign-extended 10-byte varint).
    let mut m = minimal();
    m.extend(field(
        2,
        &[
            0xc0, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ],
    ));
    refused("negunk", &m);

    // Piece problems: no text, invalid UTF-8, empty, duplicate, unknown type.
    let mut m = minimal();
    m.extend(field(1, &[0x18, 0x01]));
    refused("notext", &m);
    let mut m = minimal();
    m.extend(field(1, &field(1, &[0xff, 0xfe])));
    refused("utf8", &m);
    let mut m = minimal();
    m.extend(piece("", 1));
    refused("emptypiece", &m);
    let mut m = minimal();
    m.extend(piece("a", 1));
    let msg = refused("duplicate", &m);
    assert!(msg.contains("twice"), "{msg}");
    let mut m = minimal();
    m.extend(piece("b", 9));
    refused("piecetype", &m);
}

#[test]
fn malformed_charsmaps_are_refused() {
    let charsmap = |bytes: &[u8]| {
        let mut m = minimal();
        m.extend(field(3, &field(2, bytes)));
        m
    };
    // Shorter than its header; a trie size past the end (no 16 GB allocation).
    refused("cm-short", &charsmap(&[1, 0]));
    refused("cm-huge", &charsmap(&[0xfc, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
    refused("cm-odd", &charsmap(&[3, 0, 0, 0, 0, 0, 0]));
    refused("cm-emptytrie", &charsmap(&[0, 0, 0, 0]));
    // One unit whose root state reads units 0..=255 that are not there.
    refused("cm-oob", &charsmap(&[4, 0, 0, 0, 0, 0, 0, 0]));
    // Replacement strings that are not UTF-8.
    let mut bad = vec![0u8; 4 + 256 * 4];
    bad[..4].copy_from_slice(&(256u32 * 4).to_le_bytes());
    bad.push(0xff);
    refused("cm-utf8", &charsmap(&bad));
}

/// Every prefix and every single-byte corruption of the fixture model either
/// loads and tokenizes, or is refused with a typed error: never a panic.
#[test]
fn corrupted_models_never_panic() {
    let good = std::fs::read(dir().join("spiece.model")).unwrap();
    let path = Path::new("fuzz/spiece.model");
    // No sentinels: building them 5000 times would only slow the test down.
    let special = T5SpecialTokens {
        extra_ids: 0,
        ..T5SpecialTokens::default()
    };
    let check = |bytes: &[u8]| {
        let built = SentencePieceModel::from_bytes(bytes, path)
            .and_then(|model| model.t5_tokenizer(&special, path));
        match built {
            Ok(tok) => {
                tok.encode("a Red cafe\u{301}, \u{ff21} \u{2581}x 12 <pad>", false)
                    .unwrap();
            }
            Err(TextError::Tokenizer { path: p, .. }) => assert_eq!(p, path),
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    };
    for len in 0..good.len() {
        check(&good[..len]);
    }
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= 0x5a;
        check(&bytes);
    }
}

#[test]
fn broken_tokenizer_config_is_refused_with_the_file_named() {
    let cases: [(&str, &str); 5] = [
        ("json", "{ not json"),
        ("extra", r#"{"extra_ids": 1000000000000}"#),
        ("neg", r#"{"extra_ids": -1}"#),
        (
            "mismatch",
            r#"{"extra_ids": 2, "additional_special_tokens": ["<extra_id_0>"]}"#,
        ),
        ("eos", r#"{"eos_token": 5}"#),
    ];
    for (name, text) in cases {
        let d = scratch(&format!("config-{name}"));
        std::fs::copy(dir().join("spiece.model"), d.join("spiece.model")).unwrap();
        let config = d.join("tokenizer_config.json");
        std::fs::write(&config, text).unwrap();
        let err = T5Tokenizer::from_dir(&d).unwrap_err();
        assert!(matches!(err, TextError::Tokenizer { .. }), "{name}: {err}");
        assert!(
            err.to_string().contains(config.to_str().unwrap()),
            "{name}: {err}"
        );
    }
    // An AddedToken object is read by its content.
    let d = scratch("config-object");
    std::fs::copy(dir().join("spiece.model"), d.join("spiece.model")).unwrap();
    std::fs::write(
        d.join("tokenizer_config.json"),
        r#"{"eos_token": {"__type": "AddedToken", "content": "</s>"}, "pad_token": null}"#,
    )
    .unwrap();
    let tok = T5Tokenizer::from_dir(&d).unwrap();
    assert_eq!(tok.pad_id(), 0);
}
