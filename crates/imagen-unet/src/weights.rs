//! Loading diffusers `unet/` checkpoints: the key renames between diffusers'
//! names and ours, in one place.

use std::path::Path;

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_weights::{Checkpoint, LoadOptions, LoadSpec, Rename, WeightsError, check_dtype};

use crate::{UNet, UNetConfig, UNetError};

/// diffusers' names → our module paths: single-element `ModuleList`s
/// (`downsamplers.0`, `upsamplers.0`, `to_out.0`) are plain fields here, and
/// the text norm is an enum.
fn load_spec() -> LoadSpec {
    let mut spec = LoadSpec::pytorch()
        .rename(Rename::new(
            "down_blocks.{n}.downsamplers.0.",
            "down_blocks.{n}.downsamplers.",
        ))
        .rename(Rename::new(
            "up_blocks.{n}.upsamplers.0.",
            "up_blocks.{n}.upsamplers.",
        ));
    for path in [
        "down_blocks.{n}.attentions.{n}.",
        "up_blocks.{n}.attentions.{n}.",
        "mid_block.attentions.{n}.",
    ] {
        spec = spec
            .rename(Rename::new(
                format!("{path}to_out.0."),
                format!("{path}to_out."),
            ))
            .rename(Rename::new(
                format!("{path}norm_cross."),
                format!("{path}norm_cross.Group."),
            ));
    }
    spec
}

impl<B: Backend> UNet<B> {
    /// Builds the U-Net of `config` and loads `checkpoint` into it (f32, f16
    /// or bf16, single file or shards), computing in the backend's default
    /// float type.
    pub fn load(
        config: &UNetConfig,
        checkpoint: &Checkpoint,
        device: &B::Device,
    ) -> Result<Self, UNetError> {
        let dtype = LoadOptions::default().resolve_dtype::<B>(device)?;
        Self::load_with(config, checkpoint, dtype, device)
    }

    /// Like [`UNet::load`], computing in `dtype` (f32, f16 or bf16): each
    /// stored tensor is converted once, from whatever dtype the file holds.
    /// [`UNet::forward`] still takes and returns the caller's dtype.
    ///
    /// Fails with [`WeightsError::UnsupportedComputeDtype`](imagen_weights::WeightsError::UnsupportedComputeDtype)
    /// when `dtype` is not a float dtype the backend holds on `device`.
    pub fn load_with(
        config: &UNetConfig,
        checkpoint: &Checkpoint,
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self, UNetError> {
        check_dtype::<B>(dtype, device)?;
        fits_checkpoint(config, checkpoint)?;
        let model = config.init::<B>(device)?;
        Ok(checkpoint.load_into(model, &load_spec().dtype(dtype))?)
    }

    /// Loads `checkpoint` into this U-Net in place, keeping its parameter ids
    /// (so optimiser state and EMA copies keyed by them stay valid).
    pub fn load_checkpoint(self, checkpoint: &Checkpoint) -> Result<Self, UNetError> {
        Ok(checkpoint.load_into(self, &load_spec())?)
    }

    /// Loads `config.json` and `diffusion_pytorch_model.safetensors` (or its
    /// shards) from a diffusers `unet/` directory, computing in the backend's
    /// default float type.
    pub fn from_dir(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, UNetError> {
        Self::from_dir_with(dir, &LoadOptions::default(), device)
    }

    /// Like [`UNet::from_dir`], reading the weight files of `options.variant`
    /// (`"fp16"`: `diffusion_pytorch_model.fp16.safetensors`, as DeepFloyd
    /// IF's repositories hold) and computing in `options.dtype` (see
    /// [`UNet::load_with`]).
    pub fn from_dir_with(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self, UNetError> {
        let dir = dir.as_ref();
        let dtype = options.resolve_dtype::<B>(device)?;
        let config = UNetConfig::from_file(dir.join("config.json"))?;
        let checkpoint = Checkpoint::open_dir_variant(
            dir,
            "diffusion_pytorch_model",
            options.variant.as_deref(),
        )?;
        Self::load_with(&config, &checkpoint, dtype, device)
    }

    /// Writes `config.json` and `diffusion_pytorch_model.safetensors` to `dir`
    /// (created if needed) in the diffusers layout [`UNet::from_dir`] reads,
    /// storing floats as `dtype` (`None`: as they are; `Some(DType::F16)`
    /// halves the size). `config` must be the one the U-Net was built from.
    pub fn save_dir(
        &self,
        config: &UNetConfig,
        dir: impl AsRef<Path>,
        dtype: Option<DType>,
    ) -> Result<(), UNetError> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| UNetError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let config_path = dir.join("config.json");
        let json = serde_json::to_string_pretty(config).map_err(|source| UNetError::Config {
            path: config_path.clone(),
            source,
        })?;
        std::fs::write(&config_path, json).map_err(io(&config_path))?;
        load_spec().save(self, dir.join("diffusion_pytorch_model.safetensors"), dtype)?;
        Ok(())
    }
}

/// Checks the sizes `config` gives against the checkpoint before the U-Net
/// is built. Building allocates parameters first, and some sizes are
/// multiplied on the way: a corrupt config (`layers_per_block` or
/// `out_channels` of 2^31, found by the fuzz tests) hung, overflowed or
/// asked for terabytes before loading could report the mismatch. The
/// number of residual blocks per level, `conv_in` (input channels, kernel,
/// first width), each level's width (its first residual block's `conv2`),
/// the time embedding and `conv_out` (output channels, kernel) bound what
/// the U-Net allocates; a mismatch is the error loading would give, naming
/// the tensor.
fn fits_checkpoint(config: &UNetConfig, checkpoint: &Checkpoint) -> Result<(), UNetError> {
    let missing = |key: String| WeightsError::MissingTensor {
        key,
        others: Vec::new(),
    };
    let shape = |key: String, expected: Vec<usize>| -> Result<(), UNetError> {
        Ok(checkpoint.expect_shape(&key, &expected)?)
    };
    let c = &config.block_out_channels;
    // An empty list is the config's own error, reported by building.
    let Some(&c0) = c.first() else {
        return Ok(());
    };
    for (level, &width) in c.iter().enumerate() {
        let layers = config.layers_per_block.get(level);
        if let Some(last) = layers.checked_sub(1) {
            let key = format!("down_blocks.{level}.resnets.{last}.conv1.weight");
            if !checkpoint.contains(&key) {
                return Err(missing(key).into());
            }
            shape(
                format!("down_blocks.{level}.resnets.0.conv2.weight"),
                vec![width, width, 3, 3],
            )?;
        }
    }
    let (k_in, k_out) = (config.conv_in_kernel, config.conv_out_kernel);
    shape(
        "conv_in.weight".into(),
        vec![c0, config.in_channels, k_in, k_in],
    )?;
    let Some(out) = checkpoint.get("conv_out.weight") else {
        return Err(missing("conv_out.weight".into()).into());
    };
    let head = out.shape.get(1).copied().unwrap_or(0);
    shape(
        "conv_out.weight".into(),
        vec![config.out_channels, head, k_out, k_out],
    )?;
    let temb = c0.saturating_mul(4);
    shape(
        "time_embedding.linear_1.weight".into(),
        vec![config.time_embedding_dim.unwrap_or(temb), c0],
    )?;
    Ok(())
}
