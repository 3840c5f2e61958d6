//! The Efficient U-Net's DBlock and UBlock (Imagen paper, appendix F):
//! downsample before the residual blocks, upsample after them, one
//! attention and one skip per block.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::{BlockLayout, BlockSettings, DownBlock, TextContext, UpBlock};
use crate::norm::conv2d;
use crate::resnet::same_conv;

/// Sizes of a DBlock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EfficientDown {
    /// Channels entering (the level above's width).
    pub in_channels: usize,
    /// The level's width.
    pub out_channels: usize,
    /// Residual blocks.
    pub layers: usize,
}

/// Sizes of a UBlock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EfficientUp {
    /// The level's width: of `h`, of the skip and of the residual blocks.
    pub channels: usize,
    /// Width after the upsampling convolution (the level above's).
    pub out_channels: usize,
    /// Residual blocks.
    pub layers: usize,
}

impl<B: Backend> DownBlock<B> {
    /// A DBlock: halves the resolution while mapping `in_channels` to
    /// `out_channels`, then `layers` residual blocks and (when the block
    /// attends) one attention.
    pub(crate) fn efficient(s: &BlockSettings, sizes: EfficientDown, device: &B::Device) -> Self {
        let EfficientDown {
            in_channels,
            out_channels,
            layers,
        } = sizes;
        let conv = Conv2dConfig::new([in_channels, out_channels], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        Self {
            downsample_conv: Some(conv),
            resnets: s.resnets(layers, |_| out_channels, out_channels, device),
            attentions: s.attentions(1, out_channels, device),
            downsamplers: None,
            layout: BlockLayout::Efficient,
        }
    }

    /// Only the block's output is a skip.
    pub(super) fn forward_efficient(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        if let Some(conv) = &self.downsample_conv {
            h = conv2d(conv, h);
        }
        for resnet in &self.resnets {
            h = resnet.forward(h, temb.clone());
        }
        for attn in &self.attentions {
            h = text.attend(attn, h);
        }
        skips.push(h.clone());
        h
    }
}

impl<B: Backend> UpBlock<B> {
    /// A UBlock: `[h; skip]` (both `channels` wide) through `layers`
    /// residual blocks and the optional attention, then doubles the
    /// resolution, mapping to `out_channels`.
    pub(crate) fn efficient(s: &BlockSettings, sizes: EfficientUp, device: &B::Device) -> Self {
        let EfficientUp {
            channels,
            out_channels,
            layers,
        } = sizes;
        Self {
            // The first block reads `[h; skip]`.
            resnets: s.resnets(
                layers,
                |i| if i == 0 { 2 * channels } else { channels },
                channels,
                device,
            ),
            attentions: s.attentions(1, channels, device),
            upsamplers: None,
            upsample_conv: Some(same_conv(channels, out_channels, 3, device)),
            layout: BlockLayout::Efficient,
        }
    }

    /// Consumes the block's one skip.
    pub(super) fn forward_efficient(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        let skip = skips.pop().expect("one skip per UBlock");
        h = Tensor::cat(vec![h, skip], 1);
        for resnet in &self.resnets {
            h = resnet.forward(h, temb.clone());
        }
        for attn in &self.attentions {
            h = text.attend(attn, h);
        }
        if let Some(conv) = &self.upsample_conv {
            let [_, _, height, width] = h.dims();
            h = conv2d(
                conv,
                interpolate(
                    h,
                    [2 * height, 2 * width],
                    InterpolateOptions::new(InterpolateMode::Nearest),
                ),
            );
        }
        h
    }
}
