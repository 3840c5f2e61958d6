//! The tiny IF U-Nets loaded in f16 and bf16 on burn-flex, fed the recorded
//! f32 inputs, against diffusers 0.42.1's f32 outputs (`*_io.safetensors`)
//! and its own half-precision runs (`if_half_io.safetensors`,
//! `tools/fixtures/unet.py --half`: `from_pretrained(dir, torch_dtype=...)`,
//! inputs cast to that dtype).
//!
//! Tolerance: max abs error <= 16 u max|out_f32|, u the dtype's unit roundoff
//! (f16 2^-11, bf16 2^-8), against both references. A forward pass is ~25
//! layers deep (stage I: 8 residual blocks, 5 attentions, the text pooling)
//! and each rounds its output once, so errors of a few u per layer add up
//! along the depth; diffusers' own half runs land at 5-10 u of the output
//! scale (f16 1.25e-2 on 2.6 and 4.8, bf16 7.3e-2 and 0.10), and 16 u leaves
//! ours the same room on a different rounding order (burn-flex's attention is
//! f32 inside; GroupNorm statistics are f32 in both). Measured (2026-12-06):
//! f16 9.8e-3 / 1.3e-2 from f32 (7.7 u / 5.6 u of the scale), bf16 0.12 /
//! 0.11 (12 u / 5.9 u); from diffusers' half runs 1.3e-2 / 1.4e-2 and 9.8e-2
//! / 0.14. With convolutions and attention summed in f32 (`src/norm.rs`):
//! f16 1.1e-2 / 1.0e-2 (8.4 u / 4.4 u), bf16 0.12 / 0.11.
//!
//! The same tolerance holds on every backend (`common::TestBackend`: burn-wgpu
//! on lavapipe in CI, burn-cuda with `--features cuda`). A dtype the device
//! cannot compute in at all is skipped with the reason printed, after
//! checking that loading refuses it: bf16 on burn-wgpu (WGSL has none);
//! lavapipe has f16 (`shaderFloat16`). Measured on lavapipe (2026-12-06): f16
//! 1.4e-2 / 1.3e-2 from f32 (10.9 u / 5.5 u of the scale), 1.7e-2 / 1.7e-2
//! from diffusers' f16; before convolutions and attention of half tensors
//! were summed in f32 (`src/norm.rs`), 1.9e-2 / 2.6e-2 (15.2 u / 11 u).

use crate::common;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};
use common::{Fixture, TestBackend as B, fixtures, max_abs_err};
use imagen_unet::{UNet, UNetError};
use imagen_weights::{LoadOptions, WeightsError};

fn load(stage: &str, dtype: DType) -> Result<UNet<B>, UNetError> {
    let options = LoadOptions::default().dtype(dtype);
    UNet::from_dir_with(fixtures().join(stage), &options, &Default::default())
}

fn check(stage: &str, has_class: bool, dtype: DType, name: &str, unit_roundoff: f32) {
    let device = Default::default();
    if !B::supports_dtype(&device, dtype) {
        // Only where the device cannot compute in this dtype at all (on
        // burn-wgpu: bf16 always, WGSL has no bf16; f16 without the
        // adapter's SHADER_F16 feature). Loading must then refuse it.
        eprintln!(
            "{stage} {name}: SKIPPED, {} on {device:?} does not support {dtype:?}",
            B::name(&device)
        );
        assert!(matches!(
            load(stage, dtype),
            Err(UNetError::Weights(
                WeightsError::UnsupportedComputeDtype { .. }
            ))
        ));
        return;
    }
    let unet = load(stage, dtype).unwrap();
    assert_eq!(unet.dtype(), dtype);
    let io = Fixture::open(&format!("{stage}_io.safetensors"));
    let half = Fixture::open("if_half_io.safetensors");
    let (timesteps, labels, mask) = common::conditioning::<B>(&io, has_class, &device);
    let sample: Tensor<B, 4> = io.tensor_on("sample", &device);
    let text: Tensor<B, 3> = io.tensor_on("encoder_hidden_states", &device);
    for (mode, mask) in [("unmasked", None), ("masked", Some(mask))] {
        let out = unet.forward(
            sample.clone(),
            &timesteps,
            text.clone(),
            mask,
            labels.as_deref(),
        );
        assert_eq!(out.dtype(), DType::F32, "output in the input's dtype");
        let values: Vec<f32> = out.clone().into_data().to_vec().unwrap();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{stage} {name}: NaN/inf"
        );
        let reference = io.floats(&format!("out_{mode}"));
        let scale = reference.1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let tol = 16.0 * unit_roundoff * scale;
        let vs_f32 = max_abs_err(out.clone(), &reference);
        let vs_diffusers = max_abs_err(out, &half.floats(&format!("{stage}_out_{mode}_{name}")));
        eprintln!(
            "{stage} {name} {mode}: max abs error vs f32 {vs_f32:e}, vs diffusers {name} \
             {vs_diffusers:e} (tolerance {tol:e})"
        );
        assert!(
            vs_f32 <= tol,
            "{stage} {name} {mode}: vs f32 {vs_f32} > {tol}"
        );
        assert!(
            vs_diffusers <= tol,
            "{stage} {name} {mode}: vs diffusers {name} {vs_diffusers} > {tol}"
        );
    }
}

const F16_U: f32 = 1.0 / 2048.0;
const BF16_U: f32 = 1.0 / 256.0;

#[test]
fn stage1_f16_matches_diffusers() {
    check("if_stage1_tiny", false, DType::F16, "f16", F16_U);
}

#[test]
fn stage1_bf16_matches_diffusers() {
    check("if_stage1_tiny", false, DType::BF16, "bf16", BF16_U);
}

#[test]
fn stage2_f16_matches_diffusers() {
    check("if_stage2_tiny", true, DType::F16, "f16", F16_U);
}

#[test]
fn stage2_bf16_matches_diffusers() {
    check("if_stage2_tiny", true, DType::BF16, "bf16", BF16_U);
}

#[test]
fn f32_through_options_is_bit_identical() {
    let device = Default::default();
    let plain = UNet::<B>::from_dir(fixtures().join("if_stage1_tiny"), &device).unwrap();
    let options = load("if_stage1_tiny", DType::F32).unwrap();
    let io = Fixture::open("if_stage1_tiny_io.safetensors");
    let (timesteps, _, _) = common::conditioning::<B>(&io, false, &device);
    let run = |u: &UNet<B>| {
        u.forward(
            io.tensor_on("sample", &device),
            &timesteps,
            io.tensor_on("encoder_hidden_states", &device),
            None,
            None,
        )
        .into_data()
    };
    assert_eq!(run(&plain), run(&options));
}

#[test]
fn non_float_compute_dtypes_are_refused() {
    for dtype in [DType::F64, DType::I32, DType::U8] {
        match load("if_stage1_tiny", dtype) {
            Err(UNetError::Weights(WeightsError::UnsupportedComputeDtype {
                dtype: d,
                backend,
            })) => {
                assert!(d.contains(&format!("{dtype:?}")), "{d}");
                assert!(!backend.is_empty());
            }
            Err(other) => panic!("{dtype:?}: expected UnsupportedComputeDtype, got {other}"),
            Ok(_) => panic!("{dtype:?}: loaded"),
        }
    }
}
