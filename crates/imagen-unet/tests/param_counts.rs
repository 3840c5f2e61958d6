//! The real DeepFloyd IF configs build, and their parameter counts match
//! diffusers' exactly (IF-I-XL 4.3B, IF-II-L 1.2B), counted from the lazily
//! initialised modules without allocating the weights.

use crate::common;

use common::fixtures;

use std::path::PathBuf;

use burn_flex::Flex;
use imagen_unet::UNetConfig;
use imagen_weights::count_params;

#[test]
fn full_size_if_unets_have_diffusers_parameter_counts() {
    let counts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("param_counts.json")).unwrap(),
    )
    .unwrap();

    for (file, key) in [
        ("if_i_xl_config.json", "if_i_xl"),
        ("if_ii_l_config.json", "if_ii_l"),
    ] {
        let config = UNetConfig::from_file(fixtures().join(file)).unwrap();
        let (n, _) = count_params(config.init::<Flex>(&Default::default()).unwrap());
        let want = counts[key]["total"].as_u64().unwrap() as usize;
        eprintln!("{key}: {n} parameters (diffusers: {want})");
        assert_eq!(n, want, "{key}");
    }
}

#[test]
fn tiny_models_count_the_same_as_their_checkpoints() {
    for dir in ["if_stage1_tiny", "if_stage2_tiny"] {
        let config = UNetConfig::from_file(fixtures().join(dir).join("config.json")).unwrap();
        let (n, _) = count_params(config.init::<Flex>(&Default::default()).unwrap());
        let ckpt =
            imagen_weights::Checkpoint::open_dir(fixtures().join(dir), "diffusion_pytorch_model")
                .unwrap();
        let stored: usize = ckpt
            .keys()
            .map(|k| ckpt.get(k).unwrap().shape.iter().product::<usize>())
            .sum();
        assert_eq!(n, stored, "{dir}");
    }
}

#[test]
fn bench_config_size() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/configs/if_like_unet.json");
    let config = UNetConfig::from_file(path).unwrap();
    let (n, _) = count_params(config.init::<Flex>(&Default::default()).unwrap());
    eprintln!("bench U-Net: {n} parameters");
    assert!(n > 50_000_000 && n < 200_000_000);
}

/// Peak memory of one IF-I-XL forward (4.3B parameters, f32, random weights)
/// at 64x64, batch 2, 77 text tokens. Needs ~20 GB of RAM and a release
/// build: `cargo test --release -p imagen-unet --test integration -- --ignored param_counts::`.
/// Attention runs through burn's fused `attention` (burn-flex: tiled
/// flash attention past 8 KV tiles), so no [4096+77]^2 score matrix per head
/// is materialised.
#[test]
#[ignore = "needs ~20 GB of RAM"]
fn if_i_xl_forward_peak_memory() {
    use burn::tensor::{Distribution, Tensor};
    let config = UNetConfig::from_file(fixtures().join("if_i_xl_config.json")).unwrap();
    let device = Default::default();
    let start = std::time::Instant::now();
    let unet = config.init::<Flex>(&device).unwrap();
    let x = Tensor::<Flex, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let text = Tensor::<Flex, 3>::random([2, 77, 4096], Distribution::Normal(0.0, 1.0), &device);
    let out = unet.forward(x, &[500.0, 500.0], text, None, None);
    assert_eq!(out.dims(), [2, 6, 64, 64]);
    let first = start.elapsed();
    let start = std::time::Instant::now();
    let x = Tensor::<Flex, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let text = Tensor::<Flex, 3>::random([2, 77, 4096], Distribution::Normal(0.0, 1.0), &device);
    let _ = unet
        .forward(x, &[400.0, 400.0], text, None, None)
        .into_data();
    let second = start.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unknown");
    eprintln!(
        "IF-I-XL 64x64 b2: first forward (with weight init) {first:.1?}, second {second:.1?}, {peak}; weights {:.1} GB",
        4_304_695_110f64 * 4.0 / 1e9
    );
}
