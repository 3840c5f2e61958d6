//! The whole IF-layout U-Net against diffusers 0.42.1 on tiny random models
//! (stage I: text pooling, 6-channel output; stage II: noise-level class
//! embedding, per-block layer counts, sqrt-2 output scaling, non-square
//! input), with and without a text mask, loaded from diffusers' own
//! `save_pretrained` directories. Tolerance: max abs error 2e-5 on the output
//! (f32, ~25 layers deep; measured 3.2e-6 stage I, 6.4e-6 stage II; PyTorch
//! itself moves ~1.5e-6 between thread counts), 1e-5 on the time embedding.
//!
//! The same bounds hold on every backend: these tests run on burn-flex in
//! `cargo test`, and on burn-wgpu (lavapipe in CI: `--features wgpu`) or
//! burn-cuda (`--features cuda`) through `common::TestBackend`.

use crate::common;

use burn::tensor::Tensor;
use common::{Fixture, TestBackend as B, fixtures, max_abs_err as err};
use imagen_unet::UNet;

fn check(stage: &str, has_class: bool) {
    let device = Default::default();
    let unet = UNet::<B>::from_dir(fixtures().join(stage), &device).unwrap();
    let io = Fixture::open(&format!("{stage}_io.safetensors"));
    let (timesteps, labels, mask) = common::conditioning::<B>(&io, has_class, &device);
    let sample: Tensor<B, 4> = io.tensor_on("sample", &device);
    let text: Tensor<B, 3> = io.tensor_on("encoder_hidden_states", &device);

    let e_emb = err(
        unet.embedding(&timesteps, labels.as_deref(), &text),
        &io.floats("emb"),
    );
    let unmasked = unet.forward(
        sample.clone(),
        &timesteps,
        text.clone(),
        None,
        labels.as_deref(),
    );
    let e_out = err(unmasked, &io.floats("out_unmasked"));
    let masked = unet.forward(sample, &timesteps, text, Some(mask), labels.as_deref());
    let e_masked = err(masked, &io.floats("out_masked"));
    eprintln!("{stage}: emb {e_emb:e}, out {e_out:e}, out (masked) {e_masked:e}");
    assert!(e_emb <= 1e-5, "{stage}: time embedding error {e_emb}");
    assert!(
        e_out <= 1e-4 && e_masked <= 1e-4,
        "{stage}: output errors {e_out} / {e_masked}"
    );
}

#[test]
fn if_stage1_tiny_matches_diffusers() {
    check("if_stage1_tiny", false);
}

#[test]
fn if_stage2_tiny_matches_diffusers() {
    check("if_stage2_tiny", true);
}
