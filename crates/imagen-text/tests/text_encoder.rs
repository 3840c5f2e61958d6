//! The joined tokenizer + encoder, end to end against transformers.

use crate::common;

use common::{Recording, TestBackend, fixtures, max_abs_diff};
use imagen_text::TextEncoder;

#[test]
fn encode_matches_transformers_end_to_end() {
    // t5_gated_io.safetensors was recorded from these prompts, tokenized by
    // transformers at max_length 16.
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("tokenizer/expected.json")).unwrap(),
    )
    .unwrap();
    let prompts: Vec<String> = serde_json::from_value(expected["prompts"].clone()).unwrap();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();

    let enc =
        TextEncoder::<TestBackend>::from_dir(fixtures().join("t5_gated"), &Default::default())
            .unwrap()
            .with_max_length(16);
    let out = enc.encode(&prompts).unwrap();
    let rec = Recording::open("t5_gated_io.safetensors");
    let err = max_abs_diff(out.embeddings, &rec.f32("last_hidden_state"));
    assert!(err <= 1e-4, "max abs error {err}");
    // Through an int tensor: backends store bools differently (wgpu as u32).
    let mask: Vec<i64> = out
        .mask
        .int()
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    let (_, want) = rec.i64("attention_mask");
    assert_eq!(mask, want);
    // Prompts cut at 16 tokens are reported, and are exactly the full rows.
    assert!(!out.truncated.is_empty());
    for t in &out.truncated {
        assert!(t.kept == 16 && t.needed > 16, "{t}");
        assert!(
            want[t.index * 16..(t.index + 1) * 16]
                .iter()
                .all(|&m| m == 1)
        );
    }
}
