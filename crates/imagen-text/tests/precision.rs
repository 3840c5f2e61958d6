//! The compute dtype chosen at load: f32, bf16, f16, against transformers
//! 5.24's own half-precision runs of the same checkpoints
//! (`t5_half_io.safetensors`, `tools/fixtures/t5.py --half`:
//! `T5EncoderModel.from_pretrained(dir, dtype=...)`, sdpa attention) and the
//! f32 references.
//!
//! Tolerances (max abs error on `last_hidden_state`, every position). The
//! networks are tiny random T5s with N(0, 0.5) weights: activations of order
//! 10-100 inside, outputs of order 1 after the final norm, and a high gain, so
//! a rounding in block 0 is amplified by the blocks after it. What the
//! reference stack itself loses is the yardstick, `T` = transformers' own
//! half run's distance from its f32 run, per case:
//! - f16: T = 1.4e-2 (`t5_gated_overflow`), 8.4e-2 (`t5_gated`), 6.8e-3
//!   (`t5_relu`); bf16 (8 significant bits, 8x f16's unit roundoff): T =
//!   0.24, 0.44, 0.045.
//! - Ours must be within 2 T of the f32 output (measured 0.7-0.9 T) and within
//!   2 T of transformers' run in the same dtype: the two round the same values
//!   in a different order (burn-flex's attention is f32 inside, matmuls
//!   accumulate differently), so their errors are independent and may sit on
//!   opposite sides of f32 (measured 0.3-0.8 T, 1.24 T for bf16 `t5_gated`).
//! - f32 loaded through the options path is bit-identical to `from_dir`.
//!
//! burn-flex computes in the dtype of its tensors, so these run on it whatever
//! this crate's test backend is.

use crate::common;

use burn::module::Param;
use burn::tensor::DType;
use burn_flex::Flex;
use common::{Recording, fixtures, max_abs_diff};
use imagen_text::{T5Encoder, TextEncoder, TextError};
use imagen_weights::{LoadOptions, WeightsError};

/// A fixture directory loaded with `dtype`.
fn load(dir: &str, dtype: DType) -> T5Encoder<Flex> {
    let options = LoadOptions::default().dtype(dtype);
    T5Encoder::from_dir_with(fixtures().join(dir), &options, &Default::default()).unwrap()
}

/// `(ours vs f32 reference, ours vs transformers in the same dtype)`.
fn errors(model: &T5Encoder<Flex>, case: &str, io: &str, dtype: &str) -> (f32, f32) {
    let rec = Recording::open(io);
    let (ids, mask) = rec.inputs::<Flex>(&Default::default());
    let out = model.forward(ids, mask);
    assert_eq!(out.dtype(), DType::F32, "output in the default float dtype");
    let values: Vec<f32> = out.clone().into_data().to_vec().unwrap();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{case} {dtype}: NaN/inf"
    );
    let half = Recording::open("t5_half_io.safetensors");
    let vs_f32 = max_abs_diff(out.clone(), &rec.f32("last_hidden_state"));
    let vs_torch = max_abs_diff(out, &half.f32(&format!("{case}_{dtype}")));
    eprintln!(
        "{case} {dtype}: max abs error vs f32 {vs_f32:e}, vs transformers {dtype} {vs_torch:e}"
    );
    (vs_f32, vs_torch)
}

/// Every `wo` weight in `wo`, every other weight of a block in `rest`.
fn assert_dtypes(model: &T5Encoder<Flex>, wo: DType, rest: DType) {
    assert_eq!(model.dtype(), rest);
    assert_eq!(model.shared.weight.val().dtype(), rest);
    for block in &model.encoder.block {
        let ff = &block.feed_forward;
        assert_eq!(ff.wo.weight.val().dtype(), wo);
        for wi in [&ff.wi, &ff.wi_0, &ff.wi_1].into_iter().flatten() {
            assert_eq!(wi.weight.val().dtype(), rest);
        }
        assert_eq!(block.attention.q.weight.val().dtype(), rest);
        assert_eq!(block.attention_norm.weight.val().dtype(), rest);
    }
}

/// Loads `case` in `dtype` (`wo` then in `wo`), checks it against f32 and
/// transformers within 2 `torch_vs_f32` (see the module docs).
fn check(case: &str, io: &str, dtype: DType, wo: DType, torch_vs_f32: f32) {
    let name = if dtype == DType::F16 { "f16" } else { "bf16" };
    let model = load(case, dtype);
    assert_dtypes(&model, wo, dtype);
    let (vs_f32, vs_torch) = errors(&model, case, io, name);
    let tol = 2.0 * torch_vs_f32;
    assert!(vs_f32 <= tol, "{case} {name} vs f32: {vs_f32} > {tol}");
    assert!(
        vs_torch <= tol,
        "{case} {name} vs transformers {name}: {vs_torch} > {tol}"
    );
}

fn check_f16(case: &str, io: &str, torch_vs_f32: f32) {
    // transformers keeps `wo` in f32 when it loads T5 in f16.
    check(case, io, DType::F16, DType::F32, torch_vs_f32);
}

fn check_bf16(case: &str, io: &str, torch_vs_f32: f32) {
    check(case, io, DType::BF16, DType::BF16, torch_vs_f32);
}

#[test]
fn f16_keeps_wo_in_f32_and_does_not_overflow() {
    // In f32 this network's residual stream reaches 1.6e5, beyond f16.
    check_f16(
        "t5_gated_overflow",
        "t5_gated_overflow_io.safetensors",
        1.4e-2,
    );
}

#[test]
fn f16_gated_gelu_matches_transformers_f16() {
    check_f16("t5_gated", "t5_gated_io.safetensors", 8.4e-2);
}

#[test]
fn f16_relu_full_checkpoint_matches_transformers_f16() {
    check_f16("t5_relu", "t5_relu_io.safetensors", 6.8e-3);
}

#[test]
fn bf16_overflow_network_matches_transformers_bf16() {
    check_bf16(
        "t5_gated_overflow",
        "t5_gated_overflow_io.safetensors",
        0.24,
    );
}

#[test]
fn bf16_gated_gelu_matches_transformers_bf16() {
    check_bf16("t5_gated", "t5_gated_io.safetensors", 0.44);
}

#[test]
fn bf16_relu_full_checkpoint_matches_transformers_bf16() {
    check_bf16("t5_relu", "t5_relu_io.safetensors", 4.5e-2);
}

#[test]
fn f32_through_options_is_bit_identical() {
    let device = Default::default();
    let rec = Recording::open("t5_gated_io.safetensors");
    let (ids, mask) = rec.inputs::<Flex>(&device);
    let plain = T5Encoder::<Flex>::from_dir(fixtures().join("t5_gated"), &device).unwrap();
    let options = load("t5_gated", DType::F32);
    assert_dtypes(&options, DType::F32, DType::F32);
    assert_eq!(
        plain.forward(ids.clone(), mask.clone()).into_data(),
        options.forward(ids, mask).into_data()
    );
}

/// Without transformers' f32 `wo` (a whole-model `.half()` in PyTorch) the
/// residual stream overflows f16; like transformers we clamp it to
/// `±(f16::MAX - 1000)` after each sub-layer once it has. Tolerance: the
/// output must stay finite and within 0.1 of transformers' own all-f16 run
/// (which is 1.28 from f32: the clamped values feed the next block, and f16
/// keeps ~3 decimal digits).
#[test]
fn all_f16_overflow_is_clamped_like_transformers() {
    let mut model = load("t5_gated_overflow", DType::F16);
    for block in &mut model.encoder.block {
        let wo = &mut block.feed_forward.wo;
        wo.weight = Param::from_tensor(wo.weight.val().cast(DType::F16));
    }
    assert_dtypes(&model, DType::F16, DType::F16);
    let rec = Recording::open("t5_gated_overflow_io.safetensors");
    let (ids, mask) = rec.inputs::<Flex>(&Default::default());
    let out = model.forward(ids, mask);
    let values: Vec<f32> = out.clone().into_data().to_vec().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "NaN/inf");
    let err = max_abs_diff(out, &rec.f32("last_hidden_state_f16"));
    eprintln!("all-f16: max abs error vs transformers all-f16 {err:e}");
    assert!(err <= 0.1, "max abs error vs transformers all-f16: {err}");
}

#[test]
fn text_encoder_returns_f32_embeddings_from_a_bf16_model() {
    let options = LoadOptions::default().dtype(DType::BF16);
    let enc = TextEncoder::<Flex>::from_dir_with(
        fixtures().join("t5_gated"),
        &options,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(enc.model().dtype(), DType::BF16);
    let out = enc.encode(&["a red circle above a blue square"]).unwrap();
    assert_eq!(out.embeddings.dtype(), DType::F32);
    assert_eq!(out.embeddings.dims(), [1, 77, 40]);
}

#[test]
fn fp16_variant_files_are_read_and_converted_to_f32() {
    // `model.fp16.safetensors` beside `model.safetensors`, as on the Hub.
    let dir = std::env::temp_dir().join(format!("imagen-text-variant-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixtures().join("t5_gated");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    std::fs::copy(
        fixtures().join("t5_gated_f16.safetensors"),
        dir.join("model.fp16.safetensors"),
    )
    .unwrap();
    let device = Default::default();
    let options = LoadOptions::default().variant("fp16");
    let model = T5Encoder::<Flex>::from_dir_with(&dir, &options, &device).unwrap();
    assert_eq!(model.dtype(), DType::F32);
    let rec = Recording::open("t5_gated_io.safetensors");
    let (ids, mask) = rec.inputs::<Flex>(&device);
    // The f16-rounded weights computed in f32: the parity tolerance, 1e-4.
    let err = max_abs_diff(
        model.forward(ids, mask),
        &rec.f32("last_hidden_state_f16_weights"),
    );
    assert!(err <= 1e-4, "fp16 variant: max abs error {err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn non_float_compute_dtypes_are_refused() {
    for dtype in [DType::F64, DType::I64, DType::U8] {
        let options = LoadOptions::default().dtype(dtype);
        let err = T5Encoder::<Flex>::from_dir_with(
            fixtures().join("t5_gated"),
            &options,
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TextError::Weights(WeightsError::UnsupportedComputeDtype { .. })
            ),
            "{dtype:?}: {err}"
        );
    }
}
