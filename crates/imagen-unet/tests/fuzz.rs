//! Bad input at scale for the U-Net loaders (issue 39, part 3): diffusers
//! `unet/config.json` alone (`UNetConfig::from_file`) and the whole
//! `UNet::from_dir` (config and weights). See `fuzz_support` (in
//! imagen-weights' tests) for the mutations and checks and
//! `docs/robustness.md` for the ten-minute runs.

#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use fuzz_support::{Target, run};
use imagen_unet::{UNet, UNetConfig};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/if_stage1_tiny")
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

#[test]
fn fuzz_unet_config() {
    run(Target::new(
        "unet_config",
        fixture(),
        &["config.json"],
        corpus(),
        |dir| {
            UNetConfig::from_file(dir.join("config.json"))?;
            Ok(())
        },
    )
    .ci_cases(300));
}

/// A config that parses and validates but describes another network than
/// the weights is refused by a shape, missing or unused tensor error, which
/// names the tensor key and both shapes: neither file alone is at fault.
fn names_a_tensor(msg: &str) -> bool {
    msg.starts_with("tensor `")
}

#[test]
fn fuzz_unet_dir() {
    run(Target::new(
        "unet_dir",
        fixture(),
        &["config.json", "diffusion_pytorch_model.safetensors"],
        corpus(),
        |dir| {
            UNet::<Flex>::from_dir(dir, &Default::default())?;
            Ok(())
        },
    )
    .accept(names_a_tensor)
    .ci_cases(60));
}
