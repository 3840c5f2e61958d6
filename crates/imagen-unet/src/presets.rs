//! The U-Nets of the Imagen paper (Saharia et al. 2022, appendix F, as
//! imagen-pytorch reads it) and small presets for the demo cascade and tests.
//!
//! The base 64x64 model uses the DeepFloyd IF layout (IF is the open
//! re-implementation of Imagen's base stage); the super-resolution stages are
//! Efficient U-Nets: DBlocks that downsample before their residual blocks,
//! UBlocks that upsample after them, more residual blocks at low resolution,
//! residual outputs scaled by 1/sqrt(2), and, at 1024 pixels, text
//! cross-attention without self-attention.

use std::f64::consts::SQRT_2;

use crate::{DownBlockType as Down, PerBlock, UNetConfig, UpBlockType as Up};

/// Width of T5-XXL's hidden states, the paper's text encoder.
pub const T5_XXL_DIM: usize = 4096;

/// What every Imagen preset shares: scale-shift time conditioning, SiLU,
/// pooled text added to the time embedding, text states projected to the
/// lowest level's width for attention, RGB out.
fn imagen(text_dim: usize, block_out_channels: Vec<usize>, groups: usize) -> UNetConfig {
    let last = *block_out_channels.last().expect("at least one level");
    UNetConfig {
        out_channels: 3,
        block_out_channels,
        norm_num_groups: Some(groups),
        resnet_time_scale_shift: "scale_shift".into(),
        addition_embed_type: Some("text".into()),
        // 64-wide heads pooling T5 states, as IF (one head for narrow tests).
        addition_embed_type_num_heads: if text_dim.is_multiple_of(64) {
            text_dim / 64
        } else {
            1
        },
        encoder_hid_dim: Some(text_dim),
        encoder_hid_dim_type: Some("text_proj".into()),
        cross_attention_dim: PerBlock::All(last),
        attention_head_dim: PerBlock::All(64),
        ..UNetConfig::default()
    }
}

/// What the super-resolution presets add: the low-resolution image
/// concatenated to the input, its noise level embedded beside the timestep,
/// residual outputs scaled by 1/sqrt(2).
fn super_resolution(text_dim: usize, block_out_channels: Vec<usize>, groups: usize) -> UNetConfig {
    UNetConfig {
        in_channels: 6,
        class_embed_type: Some("timestep".into()),
        resnet_out_scale_factor: SQRT_2,
        mid_block_scale_factor: SQRT_2,
        ..imagen(text_dim, block_out_channels, groups)
    }
}

impl UNetConfig {
    /// The paper's base 64x64 model: 512 channels x (1, 2, 3, 4), three
    /// residual blocks per level, self + text attention at 32, 16 and 8 pixels.
    pub fn imagen_base_64(text_dim: usize) -> Self {
        Self {
            sample_size: Some(64),
            in_channels: 3,
            down_block_types: vec![
                Down::ResnetDownsampleBlock2D,
                Down::SimpleCrossAttnDownBlock2D,
                Down::SimpleCrossAttnDownBlock2D,
                Down::SimpleCrossAttnDownBlock2D,
            ],
            up_block_types: vec![
                Up::SimpleCrossAttnUpBlock2D,
                Up::SimpleCrossAttnUpBlock2D,
                Up::SimpleCrossAttnUpBlock2D,
                Up::ResnetUpsampleBlock2D,
            ],
            layers_per_block: PerBlock::All(3),
            attention_head_dim: PerBlock::All(64),
            ..imagen(text_dim, vec![512, 1024, 1536, 2048], 32)
        }
    }

    /// The paper's 64->256 Efficient U-Net: 128 channels x (1, 2, 4, 8),
    /// (2, 4, 8, 8) residual blocks, self + text attention at the lowest level.
    pub fn imagen_sr_256(text_dim: usize) -> Self {
        Self {
            sample_size: Some(256),
            down_block_types: vec![
                Down::EfficientDownBlock2D,
                Down::EfficientDownBlock2D,
                Down::EfficientDownBlock2D,
                Down::EfficientCrossAttnDownBlock2D,
            ],
            up_block_types: vec![
                Up::EfficientCrossAttnUpBlock2D,
                Up::EfficientUpBlock2D,
                Up::EfficientUpBlock2D,
                Up::EfficientUpBlock2D,
            ],
            layers_per_block: PerBlock::Each(vec![2, 4, 8, 8]),
            only_cross_attention: PerBlock::Each(vec![false; 4]),
            mid_block_only_cross_attention: Some(false),
            ..super_resolution(text_dim, vec![128, 256, 512, 1024], 32)
        }
    }

    /// The paper's 256->1024 Efficient U-Net: as [`Self::imagen_sr_256`] but
    /// with text cross-attention only (no self-attention over 64x64 pixels).
    pub fn imagen_sr_1024(text_dim: usize) -> Self {
        Self {
            sample_size: Some(1024),
            only_cross_attention: PerBlock::Each(vec![false, false, false, true]),
            mid_block_only_cross_attention: Some(true),
            ..Self::imagen_sr_256(text_dim)
        }
    }

    /// The demo cascade's base 64x64 model, small enough to train on a CPU:
    /// the Efficient U-Net layout (DBlocks downsample first, so no residual
    /// block runs at 64 x 64) with 3 input channels and no noise-level
    /// embedding, self + text attention at 8 x 8 and 4 x 4, and the
    /// full-resolution path of [`UNetConfig::conv_in_skip`]. At equal width
    /// it trains about 4x faster on a CPU than the IF layout.
    pub fn demo_base(text_dim: usize) -> Self {
        Self {
            sample_size: Some(64),
            in_channels: 3,
            class_embed_type: None,
            down_block_types: vec![
                Down::EfficientDownBlock2D,
                Down::EfficientDownBlock2D,
                Down::EfficientCrossAttnDownBlock2D,
                Down::EfficientCrossAttnDownBlock2D,
            ],
            up_block_types: vec![
                Up::EfficientCrossAttnUpBlock2D,
                Up::EfficientCrossAttnUpBlock2D,
                Up::EfficientUpBlock2D,
                Up::EfficientUpBlock2D,
            ],
            layers_per_block: PerBlock::Each(vec![1, 2, 2, 2]),
            attention_head_dim: PerBlock::All(32),
            only_cross_attention: PerBlock::Each(vec![false; 4]),
            mid_block_only_cross_attention: Some(false),
            conv_in_skip: true,
            ..super_resolution(text_dim, vec![32, 64, 128, 128], 8)
        }
    }

    /// The demo cascade's 64->256 Efficient U-Net, with the full-resolution
    /// path of [`UNetConfig::conv_in_skip`].
    pub fn demo_sr(text_dim: usize) -> Self {
        Self {
            sample_size: Some(256),
            down_block_types: vec![
                Down::EfficientDownBlock2D,
                Down::EfficientDownBlock2D,
                Down::EfficientDownBlock2D,
                Down::EfficientCrossAttnDownBlock2D,
            ],
            up_block_types: vec![
                Up::EfficientCrossAttnUpBlock2D,
                Up::EfficientUpBlock2D,
                Up::EfficientUpBlock2D,
                Up::EfficientUpBlock2D,
            ],
            layers_per_block: PerBlock::Each(vec![1, 2, 2, 2]),
            attention_head_dim: PerBlock::All(32),
            only_cross_attention: PerBlock::Each(vec![false; 4]),
            mid_block_only_cross_attention: Some(false),
            conv_in_skip: true,
            ..super_resolution(text_dim, vec![32, 64, 128, 128], 16)
        }
    }

    /// A tiny base U-Net for tests (16x16 inputs work).
    pub fn tiny_base(text_dim: usize) -> Self {
        Self {
            sample_size: Some(64),
            in_channels: 3,
            down_block_types: vec![
                Down::ResnetDownsampleBlock2D,
                Down::SimpleCrossAttnDownBlock2D,
            ],
            up_block_types: vec![Up::SimpleCrossAttnUpBlock2D, Up::ResnetUpsampleBlock2D],
            layers_per_block: PerBlock::All(1),
            attention_head_dim: PerBlock::All(8),
            ..imagen(text_dim, vec![16, 32], 8)
        }
    }

    /// A tiny Efficient U-Net for tests (inputs divisible by 4).
    pub fn tiny_sr(text_dim: usize) -> Self {
        Self {
            sample_size: Some(16),
            down_block_types: vec![
                Down::EfficientDownBlock2D,
                Down::EfficientCrossAttnDownBlock2D,
            ],
            up_block_types: vec![Up::EfficientCrossAttnUpBlock2D, Up::EfficientUpBlock2D],
            layers_per_block: PerBlock::Each(vec![1, 2]),
            attention_head_dim: PerBlock::All(8),
            only_cross_attention: PerBlock::Each(vec![false, true]),
            mid_block_only_cross_attention: Some(true),
            ..super_resolution(text_dim, vec![16, 32], 8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for c in [
            UNetConfig::imagen_base_64(T5_XXL_DIM),
            UNetConfig::imagen_sr_256(T5_XXL_DIM),
            UNetConfig::imagen_sr_1024(T5_XXL_DIM),
            UNetConfig::demo_base(256),
            UNetConfig::demo_sr(256),
            UNetConfig::tiny_base(32),
            UNetConfig::tiny_sr(32),
        ] {
            c.validate().unwrap();
        }
        assert!(UNetConfig::imagen_sr_1024(8).is_efficient());
        assert_eq!(UNetConfig::imagen_sr_1024(8).downsampling_factor(), 16);
        assert_eq!(UNetConfig::imagen_base_64(8).downsampling_factor(), 8);
    }
}
