//! Loading diffusers U-Net checkpoints: half-precision files and typed
//! errors that name the key, the file or the config value.

use crate::common;

use common::fixtures;

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use burn_flex::Flex;
use imagen_unet::{UNet, UNetConfig, UNetError};
use imagen_weights::WeightsError;
use safetensors::{Dtype, SafeTensors};

/// A scratch copy of `if_stage1_tiny` whose checkpoint `edit` may change.
fn scratch(
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>),
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imagen-unet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixtures().join("if_stage1_tiny");
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("diffusion_pytorch_model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, d, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(
        views,
        None,
        &dir.join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    dir
}

fn load(dir: &Path) -> Result<UNet<Flex>, UNetError> {
    UNet::from_dir(dir, &Default::default())
}

fn to_bf16(bytes: &[u8]) -> Vec<u8> {
    // Round to nearest even, as torch's `.to(torch.bfloat16)`.
    bytes
        .chunks_exact(4)
        .flat_map(|c| {
            let bits = u32::from_le_bytes(c.try_into().unwrap());
            let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
            ((rounded >> 16) as u16).to_le_bytes()
        })
        .collect()
}

#[test]
fn bf16_checkpoint_loads_and_stays_close() {
    let dir = scratch("bf16", |t| {
        for (_, dtype, _, bytes) in t.iter_mut() {
            *bytes = to_bf16(bytes);
            *dtype = Dtype::BF16;
        }
    });
    let device = Default::default();
    let half = load(&dir).unwrap();
    let full = load(&fixtures().join("if_stage1_tiny")).unwrap();
    let x = Tensor::<Flex, 4>::from_data(
        TensorData::new(vec![0.1f32; 2 * 3 * 16 * 16], [2, 3, 16, 16]),
        &device,
    );
    let text = Tensor::<Flex, 3>::from_data(
        TensorData::new(vec![0.2f32; 2 * 7 * 40], [2, 7, 40]),
        &device,
    );
    let a = half.forward(x.clone(), &[10.0, 900.0], text.clone(), None, None);
    let b = full.forward(x, &[10.0, 900.0], text, None, None);
    let diff: f32 = (a - b.clone()).abs().max().into_scalar();
    let scale: f32 = b.abs().max().into_scalar();
    // bf16 keeps 8 bits of mantissa: a few percent after ~25 layers.
    assert!(
        diff > 0.0 && diff < 0.1 * scale,
        "bf16 vs f32: {diff} (scale {scale})"
    );
}

#[test]
fn missing_key_is_named() {
    let dir = scratch("missing", |t| {
        t.retain(|(k, ..)| k != "down_blocks.1.attentions.0.add_k_proj.weight")
    });
    match load(&dir).unwrap_err() {
        UNetError::Weights(WeightsError::MissingTensor { key, .. }) => {
            assert_eq!(key, "down_blocks.1.attentions.0.add_k_proj.weight")
        }
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn renamed_keys_round_trip_in_errors() {
    let dir = scratch("to_out", |t| {
        t.retain(|(k, ..)| k != "mid_block.attentions.0.to_out.0.bias")
    });
    let err = load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("mid_block.attentions.0.to_out.0.bias"),
        "{err}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let dir = scratch("shape", |t| {
        let e = t.iter_mut().find(|(k, ..)| k == "conv_in.weight").unwrap();
        e.2 = vec![8, 3, 1, 9];
    });
    match load(&dir).unwrap_err() {
        UNetError::Weights(WeightsError::ShapeMismatch {
            key,
            expected,
            found,
        }) => {
            assert_eq!(key, "conv_in.weight");
            assert_eq!(expected, vec![8, 3, 3, 3]);
            assert_eq!(found, vec![8, 3, 1, 9]);
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
}

#[test]
fn unknown_block_type_is_named() {
    let dir = scratch("blocks", |_| {});
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"ResnetUpsampleBlock2D\"", "\"UpBlock2D\""),
    )
    .unwrap();
    let err = load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("UpBlock2D") && err.contains("config.json"),
        "{err}"
    );
}

#[test]
fn saved_unets_load_back_exactly_in_both_layouts() {
    use burn::tensor::{DType, Distribution, Tensor};
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("imagen-unet-save-{}", std::process::id()));
    for (name, config) in [
        ("base", UNetConfig::tiny_base(24)),
        ("sr", UNetConfig::tiny_sr(24)),
    ] {
        let unet = config.init::<Flex>(&device).unwrap();
        let x = Tensor::<Flex, 4>::random(
            [1, config.in_channels, 8, 8],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let text = Tensor::<Flex, 3>::random([1, 3, 24], Distribution::Normal(0.0, 1.0), &device);
        let run = |u: &UNet<Flex>| u.forward(x.clone(), &[7.0], text.clone(), None, Some(&[3.0]));
        let want = run(&unet);

        let path = dir.join(name);
        unet.save_dir(&config, &path, None).unwrap();
        let back = UNet::<Flex>::from_dir(&path, &device).unwrap();
        assert_eq!(
            run(&back).into_data(),
            want.clone().into_data(),
            "{name}: f32 round trip"
        );

        // f16 storage: half the bytes, outputs within f16 rounding.
        unet.save_dir(&config, &path, Some(DType::F16)).unwrap();
        let back = UNet::<Flex>::from_dir(&path, &device).unwrap();
        let err: f32 = (run(&back) - want).abs().max().into_scalar();
        assert!(err < 5e-2, "{name}: f16 round trip {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
