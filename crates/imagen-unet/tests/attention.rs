//! IF's added-K/V attention against diffusers 0.42.1 (`Attention` with
//! `added_kv_proj_dim`, `AttnAddedKVProcessor2_0`, group-norm text norm),
//! with and without a text mask, and text-only. Tolerance: max abs error 1e-5.

use std::path::PathBuf;

use burn::tensor::{Bool, Tensor, TensorData};
use burn_flex::Flex;
use imagen_unet::AddedKvAttentionConfig;
use imagen_weights::{Checkpoint, LoadSpec, Rename};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn floats(st: &SafeTensors, key: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(key).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

fn run(file: &str, only_cross: bool, masked: bool) -> f32 {
    let device = Default::default();
    let config = AddedKvAttentionConfig {
        channels: 24,
        heads: 3,
        head_dim: 8,
        text_dim: 64,
        groups: 4,
        eps: 1e-5,
        cross_norm_layer: Some(false),
        only_cross_attention: only_cross,
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
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (xs, x) = floats(&st, "hidden_states");
    let (ts, t) = floats(&st, "encoder_hidden_states");
    let x = Tensor::<Flex, 4>::from_data(TensorData::new(x, xs), &device);
    let t = Tensor::<Flex, 3>::from_data(TensorData::new(t, ts), &device);
    let mask = masked.then(|| {
        let m = st.tensor("encoder_attention_mask").unwrap();
        let v: Vec<bool> = m
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) != 0)
            .collect();
        Tensor::<Flex, 2, Bool>::from_data(TensorData::new(v, m.shape().to_vec()), &device)
    });
    let out = layer.forward(x, t, mask);
    let (_, want) = floats(
        &st,
        if masked {
            "output_masked"
        } else {
            "output_unmasked"
        },
    );
    let got: Vec<f32> = out.into_data().to_vec().unwrap();
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
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
    let bytes = std::fs::read(fixtures().join("unit_attention_added_kv.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, a) = floats(&st, "output_masked");
    let (_, b) = floats(&st, "output_unmasked");
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
