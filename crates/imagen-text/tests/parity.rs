//! Parity with transformers 5.24 on tiny random T5 encoders recorded by
//! `tools/fixtures/t5.py`. Tolerance: max abs error <= 1e-4 on every position
//! of `last_hidden_state` (f32), padded positions included.

use crate::common;

use common::{Recording, TestBackend, fixtures, max_abs_diff};
use imagen_text::{T5Config, T5Encoder, relative_position_bucket};
use imagen_weights::Checkpoint;

const TOL: f32 = 1e-4;

fn check_dir(dir: &str, io: &str) {
    let device = Default::default();
    let model = T5Encoder::<TestBackend>::from_dir(fixtures().join(dir), &device).unwrap();
    let rec = Recording::open(io);
    let (ids, mask) = rec.inputs::<TestBackend>(&device);
    let err = max_abs_diff(model.forward(ids, mask), &rec.f32("last_hidden_state"));
    eprintln!("{dir}: max abs error {err:e}");
    assert!(err <= TOL, "{dir}: max abs error {err} > {TOL}");
}

#[test]
fn t5_v1_0_relu_full_checkpoint_matches_transformers() {
    // A T5ForConditionalGeneration checkpoint: decoder and lm_head are skipped.
    check_dir("t5_relu", "t5_relu_io.safetensors");
}

#[test]
fn t5_v1_1_gated_gelu_matches_transformers() {
    check_dir("t5_gated", "t5_gated_io.safetensors");
}

#[test]
fn sharded_checkpoint_matches_transformers() {
    check_dir("t5_gated_sharded", "t5_gated_io.safetensors");
}

#[test]
fn half_precision_checkpoints_convert_to_f32() {
    let device = Default::default();
    let config = T5Config::from_file(fixtures().join("t5_gated/config.json")).unwrap();
    let rec = Recording::open("t5_gated_io.safetensors");
    for name in ["f16", "bf16"] {
        let ckpt =
            Checkpoint::open(fixtures().join(format!("t5_gated_{name}.safetensors"))).unwrap();
        let model = T5Encoder::<TestBackend>::load(&config, &ckpt, &device).unwrap();
        let (ids, mask) = rec.inputs::<TestBackend>(&device);
        let expected = rec.f32(&format!("last_hidden_state_{name}_weights"));
        let err = max_abs_diff(model.forward(ids, mask), &expected);
        eprintln!("{name}: max abs error {err:e}");
        assert!(err <= TOL, "{name}: max abs error {err} > {TOL}");
    }
}

#[test]
fn relative_position_buckets_match_transformers_exactly() {
    let rec = Recording::open("buckets.safetensors");
    let (_, rel) = rec.i64("relative_position");
    for (nb, md) in [(32, 128), (16, 20), (8, 16), (64, 256)] {
        let (_, expected) = rec.i64(&format!("buckets_{nb}_{md}"));
        for (r, e) in rel.iter().zip(&expected) {
            assert_eq!(
                relative_position_bucket(*r, nb, md),
                *e,
                "rel {r}, {nb} buckets, max {md}"
            );
        }
    }
}

#[test]
fn overflowing_activations_stay_exact_in_f32() {
    // Residual stream reaches ~1.6e5 (beyond f16) in this network.
    check_dir("t5_gated_overflow", "t5_gated_overflow_io.safetensors");
}
