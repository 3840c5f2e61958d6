//! IF's added-K/V attention against diffusers 0.42.1 (`Attention` with
//! `added_kv_proj_dim`, `AttnAddedKVProcessor2_0`, group-norm text norm),
//! with and without a text mask, and text-only. Tolerance: max abs error 1e-5.

use crate::common;

use burn::tensor::{Bool, Tensor, TensorData};
use burn_flex::Flex;
use common::{Fixture, fixtures, max_abs_err};
use imagen_unet::{AddedKvAttentionConfig, AttentionScope, TextNorm};
use imagen_weights::{Checkpoint, LoadSpec, Rename};

fn run(file: &str, only_cross: bool, masked: bool) -> f32 {
    let device = Default::default();
    let config = AddedKvAttentionConfig {
        channels: 24,
        heads: 3,
        head_dim: 8,
        text_dim: 64,
        groups: 4,
        eps: 1e-5,
        cross_norm: Some(TextNorm::Group),
        scope: if only_cross {
            AttentionScope::TextOnly
        } else {
            AttentionScope::SelfAndText
        },
    };
    let spec = LoadSpec::pytorch()
        .rename(Rename::new("to_out.0.", "to_out."))
        .rename(Rename::new("norm_cross.", "norm_cross.Group."))
        .ignore_prefix("hidden_states")
        .ignore_prefix("encoder_")
        .ignore_prefix("attention_bias")
        .ignore_prefix("output_");
    let layer = Checkpoint::open(fixtures().join(file))
        .unwrap()
        .load_into(config.init::<Flex>(&device), &spec)
        .unwrap();
    let fx = Fixture::open(file);
    let x: Tensor<Flex, 4> = fx.tensor("hidden_states");
    let t: Tensor<Flex, 3> = fx.tensor("encoder_hidden_states");
    let mask = masked.then(|| {
        let (shape, m) = fx.ints("encoder_attention_mask");
        let m: Vec<bool> = m.iter().map(|&v| v != 0).collect();
        Tensor::<Flex, 2, Bool>::from_data(TensorData::new(m, shape), &device)
    });
    let out = layer.forward(x, t, mask);
    let err = max_abs_err(
        out,
        &fx.floats(if masked {
            "output_masked"
        } else {
            "output_unmasked"
        }),
    );
    eprintln!("{file} masked={masked}: max abs error {err:e}");
    err
}

#[test]
fn added_kv_attention_unmasked() {
    assert!(run("unit_attention_added_kv.safetensors", false, false) <= 1e-5);
}

#[test]
fn added_kv_attention_with_text_mask() {
    assert!(run("unit_attention_added_kv.safetensors", false, true) <= 1e-5);
    // The mask matters in this recording.
    let fx = Fixture::open("unit_attention_added_kv.safetensors");
    let (_, a) = fx.floats("output_masked");
    let (_, b) = fx.floats("output_unmasked");
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff > 1e-2,
        "masked and unmasked references differ by only {diff}"
    );
}

#[test]
fn text_only_attention() {
    assert!(
        run(
            "unit_attention_added_kv_cross_only.safetensors",
            true,
            false
        ) <= 1e-5
    );
}
