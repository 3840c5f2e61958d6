//! The real DeepFloyd IF configs build, and their parameter counts match
//! diffusers' exactly (IF-I-XL 4.3B, IF-II-L 1.2B), counted from the lazily
//! initialised modules without allocating the weights.

mod common;

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
