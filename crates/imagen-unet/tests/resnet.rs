//! `ResnetBlock2D` against diffusers 0.42.1 standalone blocks recorded by
//! `tools/fixtures/unet.py` (scale-shift; down; up with skip_time_act and
//! sqrt-2 output scaling; channel change with a 1x1 shortcut). Weights load
//! through imagen-weights from the fixture file itself.
//! Tolerance: max abs error 1e-5 (f32).

use crate::common;

use burn::tensor::Tensor;
use burn_flex::Flex;
use common::{Fixture, fixtures, max_abs_err};
use imagen_unet::{Activation, Resample, ResnetConfig, TimeConditioning};
use imagen_weights::{Checkpoint, LoadSpec};

fn check(file: &str) {
    let meta = common::units();
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

    let fx = Fixture::open(file);
    let x: Tensor<Flex, 4> = fx.tensor("input");
    let t: Tensor<Flex, 2> = fx.tensor("temb");
    let err = max_abs_err(block.forward(x, t), &fx.floats("output"));
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
