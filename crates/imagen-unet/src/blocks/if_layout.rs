//! DeepFloyd IF's down and up blocks (diffusers' `ResnetDownsampleBlock2D`,
//! `SimpleCrossAttnDownBlock2D`, `SimpleCrossAttnUpBlock2D`,
//! `ResnetUpsampleBlock2D`).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{BlockLayout, BlockSettings, DownBlock, TextContext, UpBlock};
use crate::Resample;

/// Sizes of an IF down block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfDown {
    /// Channels entering (the level above's width; `conv_in`'s at level 0).
    pub in_channels: usize,
    /// The level's width.
    pub out_channels: usize,
    /// Residual blocks.
    pub layers: usize,
    /// End with a downsampling residual block (all levels but the last).
    pub downsample: bool,
}

/// Sizes of an IF up block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfUp {
    /// Width of the skip the last residual block reads (the level above's).
    pub skip_channels: usize,
    /// Width of `h` entering (the previous up block's output).
    pub prev_output_channels: usize,
    /// The level's width.
    pub out_channels: usize,
    /// Residual blocks (one more than the down block's).
    pub layers: usize,
    /// End with an upsampling residual block (all up blocks but the last).
    pub upsample: bool,
}

impl<B: Backend> DownBlock<B> {
    /// An IF down block of `sizes`.
    pub(crate) fn if_layout(s: &BlockSettings, sizes: IfDown, device: &B::Device) -> Self {
        let IfDown {
            in_channels,
            out_channels,
            layers,
            downsample,
        } = sizes;
        Self {
            resnets: s.resnets(
                layers,
                |i| if i == 0 { in_channels } else { out_channels },
                out_channels,
                device,
            ),
            attentions: s.attentions(layers, out_channels, device),
            downsamplers: downsample
                .then(|| s.resnet(out_channels, out_channels, Resample::Down, device)),
            downsample_conv: None,
            layout: BlockLayout::If,
        }
    }

    /// Every layer's output is a skip.
    pub(super) fn forward_if(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(h, temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                h = text.attend(attn, h);
            }
            skips.push(h.clone());
        }
        if let Some(down) = &self.downsamplers {
            h = down.forward(h, temb.clone());
            skips.push(h.clone());
        }
        h
    }
}

impl<B: Backend> UpBlock<B> {
    /// An IF up block of `sizes`.
    pub(crate) fn if_layout(s: &BlockSettings, sizes: IfUp, device: &B::Device) -> Self {
        let IfUp {
            skip_channels,
            prev_output_channels,
            out_channels,
            layers,
            upsample,
        } = sizes;
        Self {
            // Block `i` reads `[h; skip]`: `h` from the block before (the
            // previous up block's output first), the last skip from the
            // level above.
            resnets: s.resnets(
                layers,
                |i| {
                    let h = if i == 0 {
                        prev_output_channels
                    } else {
                        out_channels
                    };
                    let skip = if i == layers - 1 {
                        skip_channels
                    } else {
                        out_channels
                    };
                    h + skip
                },
                out_channels,
                device,
            ),
            attentions: s.attentions(layers, out_channels, device),
            upsamplers: upsample
                .then(|| s.resnet(out_channels, out_channels, Resample::Up, device)),
            upsample_conv: None,
            layout: BlockLayout::If,
        }
    }

    /// Each residual block reads `[h; skip]`.
    pub(super) fn forward_if(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("one skip per up-block layer");
            h = resnet.forward(Tensor::cat(vec![h, skip], 1), temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                h = text.attend(attn, h);
            }
        }
        match &self.upsamplers {
            Some(up) => up.forward(h, temb.clone()),
            None => h,
        }
    }
}
