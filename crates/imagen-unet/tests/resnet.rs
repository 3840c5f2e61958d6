//! `ResnetBlock2D` against diffusers 0.42.1 standalone blocks recorded by
//! `tools/fixtures/unet.py` (scale-shift; down; up with skip_time_act and
//! sqrt-2 output scaling; channel change with a 1x1 shortcut). Weights load
//! through imagen-weights from the fixture file itself.
//! Tolerance: max abs error 1e-5 (f32).

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use burn_flex::Flex;
use imagen_unet::{Activation, Resample, ResnetConfig, TimeConditioning};
use imagen_weights::{Checkpoint, LoadSpec};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tensor(st: &SafeTensors, key: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(key).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

fn check(file: &str) {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("units.json")).unwrap())
            .unwrap();
    let args = &meta[file]["args"];
    let u = |k: &str| args[k].as_u64().unwrap() as usize;
    let config = ResnetConfig {
        in_channels: u("in_channels"),
        out_channels: u("out_channels"),
        temb_channels: u("temb_channels"),
        groups: u("groups"),
        eps: args["eps"].as_f64().unwrap(),
        act: Activation::parse("non_linearity", args["non_linearity"].as_str().unwrap()).unwrap(),
        time: TimeConditioning::ScaleShift,
        resample: if args["down"].as_bool() == Some(true) {
            Resample::Down
        } else if args["up"].as_bool() == Some(true) {
            Resample::Up
        } else {
            Resample::None
        },
        skip_time_act: args["skip_time_act"].as_bool().unwrap_or(false),
        output_scale_factor: args["output_scale_factor"].as_f64().unwrap_or(1.0),
    };
    let device = Default::default();
    let ckpt = Checkpoint::open(fixtures().join(file)).unwrap();
    let spec = LoadSpec::pytorch()
        .ignore_prefix("input")
        .ignore_prefix("temb")
        .ignore_prefix("output");
    let block = ckpt.load_into(config.init::<Flex>(&device), &spec).unwrap();

    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (xs, x) = tensor(&st, "input");
    let (ts, t) = tensor(&st, "temb");
    let (os, want) = tensor(&st, "output");
    let x = Tensor::<Flex, 4>::from_data(TensorData::new(x, xs), &device);
    let t = Tensor::<Flex, 2>::from_data(TensorData::new(t, ts), &device);
    let out = block.forward(x, t);
    assert_eq!(out.dims().to_vec(), os, "{file}: shape");
    let got: Vec<f32> = out.into_data().to_vec().unwrap();
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{file}: max abs error {err:e}");
    assert!(err <= 1e-5, "{file}: max abs error {err}");
}

#[test]
fn resnet_down_scale_shift() {
    check("unit_resnet_down.safetensors");
}

#[test]
fn resnet_up_skip_time_act_scaled() {
    check("unit_resnet_up.safetensors");
}

#[test]
fn resnet_channel_change_shortcut() {
    check("unit_resnet_shortcut.safetensors");
}
