//! Half-precision compute. T5's residual stream overflows f16 (it was trained
//! in bf16); like transformers we take norms' mean squares in f32 and clamp the
//! stream once it overflows. The recorded network reaches 1.6e5 in f32.
//!
//! Tolerance: transformers' own f16 run differs from its f32 run by 1.28 here;
//! ours must stay finite and within 0.1 of transformers' f16 output (f16 keeps
//! ~3 decimal digits, and the clamped values feed the next block).

use crate::common;

use burn::tensor::DType;
use burn_flex::Flex;
use common::{Recording, fixtures, max_abs_diff};
use imagen_text::{T5Config, T5Encoder};
use imagen_weights::Checkpoint;

/// burn-flex computes in the dtype of its tensors: f16 weights mean f16 compute.
type Half = Flex;

fn load_f16(dir: &str) -> T5Encoder<Half> {
    let dir = fixtures().join(dir);
    let config = T5Config::from_file(dir.join("config.json")).unwrap();
    let ckpt = Checkpoint::open_dir(&dir, "model").unwrap();
    let model = T5Encoder::<Half>::load_with_dtype(&config, &ckpt, DType::F16, &Default::default())
        .unwrap();
    assert_eq!(model.shared.weight.val().dtype(), DType::F16);
    model
}

#[test]
fn f16_overflow_is_clamped_like_transformers() {
    let device = Default::default();
    let model = load_f16("t5_gated_overflow");
    let rec = Recording::open("t5_gated_overflow_io.safetensors");
    let (ids, mask) = rec.inputs::<Half>(&device);
    let out = model.forward(ids, mask);
    assert_eq!(out.dtype(), DType::F16);
    let values: Vec<f32> = out.clone().into_data().convert::<f32>().to_vec().unwrap();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "f16 output has NaN/inf"
    );
    let vs_torch_f16 = max_abs_diff(out.clone(), &rec.f32("last_hidden_state_f16"));
    let vs_f32 = max_abs_diff(out, &rec.f32("last_hidden_state"));
    eprintln!("f16: vs transformers f16 {vs_torch_f16:e}, vs f32 reference {vs_f32:e}");
    assert!(
        vs_torch_f16 <= 0.1,
        "max abs error vs transformers f16: {vs_torch_f16}"
    );
}

#[test]
fn f16_matches_f32_on_a_well_scaled_network() {
    let device = Default::default();
    let model = load_f16("t5_relu");
    let rec = Recording::open("t5_relu_io.safetensors");
    let (ids, mask) = rec.inputs::<Half>(&device);
    let err = max_abs_diff(model.forward(ids, mask), &rec.f32("last_hidden_state"));
    eprintln!("f16 relu: max abs error vs f32 {err:e}");
    assert!(err <= 2e-2, "max abs error {err}");
}
