//! The down, middle and up blocks, one file per layout:
//!
//! - [`if_layout`]: DeepFloyd IF's blocks (diffusers' `ResnetDownsampleBlock2D`,
//!   `SimpleCrossAttnDownBlock2D`, `SimpleCrossAttnUpBlock2D`,
//!   `ResnetUpsampleBlock2D`): residual blocks, optionally each followed by
//!   added-K/V attention, and a resampling residual block; a skip after
//!   every layer.
//! - [`efficient`]: the Efficient U-Net's DBlock / UBlock of the Imagen
//!   paper: downsample before the residual blocks, upsample after them, one
//!   attention and one skip per block.
//! - [`mid`]: the middle block both layouts share
//!   (`UNetMidBlock2DSimpleCrossAttn`).
//!
//! A down (up) block is one module type for both layouts, so that
//! `UNet::down_blocks` keeps diffusers' key names; [`BlockLayout`] says
//! which forward pass it runs.

mod efficient;
mod if_layout;
mod mid;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use crate::{AddedKvAttention, AddedKvAttentionConfig, Resample, ResnetBlock2D, ResnetConfig};

pub(crate) use efficient::{EfficientDown, EfficientUp};
pub(crate) use if_layout::{IfDown, IfUp};
pub use mid::MidBlock;

/// Which layout a block was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockLayout {
    /// DeepFloyd IF ([`if_layout`]).
    If,
    /// Efficient U-Net DBlock / UBlock ([`efficient`]).
    Efficient,
}

/// What every block of one level (or the middle block) shares: the residual
/// blocks' settings and, when the block attends, the attention's; sizes are
/// filled in per layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSettings {
    pub resnet: ResnetConfig,
    pub attention: Option<AddedKvAttentionConfig>,
}

impl BlockSettings {
    fn resnet<B: Backend>(
        &self,
        in_channels: usize,
        out_channels: usize,
        resample: Resample,
        device: &B::Device,
    ) -> ResnetBlock2D<B> {
        ResnetConfig {
            in_channels,
            out_channels,
            resample,
            ..self.resnet
        }
        .init(device)
    }

    /// `layers` residual blocks without resampling; `in_channels(i)` is
    /// block `i`'s input width.
    fn resnets<B: Backend>(
        &self,
        layers: usize,
        in_channels: impl Fn(usize) -> usize,
        out_channels: usize,
        device: &B::Device,
    ) -> Vec<ResnetBlock2D<B>> {
        (0..layers)
            .map(|i| self.resnet(in_channels(i), out_channels, Resample::None, device))
            .collect()
    }

    /// `count` attention layers at `channels`, or none when the block does
    /// not attend.
    fn attentions<B: Backend>(
        &self,
        count: usize,
        channels: usize,
        device: &B::Device,
    ) -> Vec<AddedKvAttention<B>> {
        (0..count)
            .filter_map(|_| self.attention(channels, device))
            .collect()
    }

    fn attention<B: Backend>(
        &self,
        channels: usize,
        device: &B::Device,
    ) -> Option<AddedKvAttention<B>> {
        self.attention.map(|a| {
            AddedKvAttentionConfig {
                channels,
                heads: channels / a.head_dim,
                ..a
            }
            .init(device)
        })
    }
}

/// Text context shared by the attention layers of one forward pass.
#[derive(Debug, Clone)]
pub(crate) struct TextContext<B: Backend> {
    pub states: Tensor<B, 3>,
    pub mask: Option<Tensor<B, 2, Bool>>,
}

impl<B: Backend> TextContext<B> {
    fn attend(&self, attn: &AddedKvAttention<B>, h: Tensor<B, 4>) -> Tensor<B, 4> {
        attn.forward(h, self.states.clone(), self.mask.clone())
    }
}

/// A down block; `attentions` is empty when it does not attend.
///
/// IF layout: residual blocks, each followed by attention when the block
/// attends, then a downsampling residual block; every layer output is a skip.
/// Efficient U-Net (DBlock): a stride-2 convolution first, then the residual
/// blocks, then one attention; only the block output is a skip.
#[derive(Module, Debug)]
pub struct DownBlock<B: Backend> {
    /// DBlock: the stride-2 3x3 convolution that opens the block.
    pub downsample_conv: Option<Conv2d<B>>,
    /// Residual blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// IF: attention after each residual block; DBlock: one after the last.
    pub attentions: Vec<AddedKvAttention<B>>,
    /// The downsampling residual block (`downsamplers.0`), absent at the last level.
    pub downsamplers: Option<ResnetBlock2D<B>>,
    #[module(skip)]
    layout: BlockLayout,
}

impl<B: Backend> DownBlock<B> {
    /// Returns the block output and pushes the skip tensors it adds.
    pub(crate) fn forward(
        &self,
        h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        match self.layout {
            BlockLayout::If => self.forward_if(h, temb, text, skips),
            BlockLayout::Efficient => self.forward_efficient(h, temb, text, skips),
        }
    }
}

/// An up block; `attentions` is empty when it does not attend.
///
/// IF layout: each residual block reads `[h; skip]`, attention after each,
/// then an upsampling residual block. Efficient U-Net (UBlock): the block's
/// one skip is concatenated first, then the residual blocks, one attention,
/// and a nearest-neighbour x2 + 3x3 convolution last.
#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    /// Residual blocks (IF: each on `[h; skip]`; UBlock: the first on `[h; skip]`).
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// IF: attention after each residual block; UBlock: one after the last.
    pub attentions: Vec<AddedKvAttention<B>>,
    /// The upsampling residual block (`upsamplers.0`), absent at the last level.
    pub upsamplers: Option<ResnetBlock2D<B>>,
    /// UBlock: the 3x3 convolution after the nearest-neighbour x2 upsampling.
    pub upsample_conv: Option<Conv2d<B>>,
    #[module(skip)]
    layout: BlockLayout,
}

impl<B: Backend> UpBlock<B> {
    /// Consumes one skip tensor per residual block (UBlock: one in all), from
    /// the end of `skips`.
    pub(crate) fn forward(
        &self,
        h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        match self.layout {
            BlockLayout::If => self.forward_if(h, temb, text, skips),
            BlockLayout::Efficient => self.forward_efficient(h, temb, text, skips),
        }
    }
}
