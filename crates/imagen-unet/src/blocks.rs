//! The down, middle and up blocks of the DeepFloyd IF layout: residual blocks,
//! optionally each followed by added-K/V attention, and a resampling residual
//! block (diffusers' `ResnetDownsampleBlock2D`, `SimpleCrossAttnDownBlock2D`,
//! `UNetMidBlock2DSimpleCrossAttn`, `SimpleCrossAttnUpBlock2D`,
//! `ResnetUpsampleBlock2D`), and the Efficient U-Net's DBlock / UBlock of
//! the Imagen paper (downsample before the residual blocks, upsample after
//! them, one attention and one skip per block).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Bool, Tensor};

use crate::norm::conv2d;
use crate::resnet::same_conv;
use crate::{AddedKvAttention, AddedKvAttentionConfig, Resample, ResnetBlock2D, ResnetConfig};

/// What every block of one U-Net shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSettings {
    pub resnet: ResnetConfig,
    pub attention: Option<AddedKvAttentionConfig>,
}

impl BlockSettings {
    fn resnet(&self, in_channels: usize, out_channels: usize, resample: Resample) -> ResnetConfig {
        ResnetConfig {
            in_channels,
            out_channels,
            resample,
            ..self.resnet
        }
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

/// A down block; `attentions` is empty for `ResnetDownsampleBlock2D`.
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
    efficient: bool,
}

impl<B: Backend> DownBlock<B> {
    pub(crate) fn new(
        s: &BlockSettings,
        in_channels: usize,
        out_channels: usize,
        layers: usize,
        downsample: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            resnets: (0..layers)
                .map(|i| {
                    let cin = if i == 0 { in_channels } else { out_channels };
                    s.resnet(cin, out_channels, Resample::None).init(device)
                })
                .collect(),
            attentions: (0..layers)
                .filter_map(|_| s.attention(out_channels, device))
                .collect(),
            downsamplers: downsample.then(|| {
                s.resnet(out_channels, out_channels, Resample::Down)
                    .init(device)
            }),
            downsample_conv: None,
            efficient: false,
        }
    }

    /// An Efficient U-Net DBlock: halves the resolution while mapping
    /// `in_channels` to `out_channels`, then `layers` residual blocks and
    /// (when the block attends) one attention.
    pub(crate) fn efficient(
        s: &BlockSettings,
        in_channels: usize,
        out_channels: usize,
        layers: usize,
        device: &B::Device,
    ) -> Self {
        let conv = Conv2dConfig::new([in_channels, out_channels], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        Self {
            downsample_conv: Some(conv),
            resnets: (0..layers)
                .map(|_| {
                    s.resnet(out_channels, out_channels, Resample::None)
                        .init(device)
                })
                .collect(),
            attentions: s.attention(out_channels, device).into_iter().collect(),
            downsamplers: None,
            efficient: true,
        }
    }

    /// Returns the block output and the skip tensors it adds.
    pub(crate) fn forward(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        if self.efficient {
            if let Some(conv) = &self.downsample_conv {
                h = conv2d(conv, h);
            }
            for resnet in &self.resnets {
                h = resnet.forward(h, temb.clone());
            }
            for attn in &self.attentions {
                h = attn.forward(h, text.states.clone(), text.mask.clone());
            }
            skips.push(h.clone());
            return h;
        }
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(h, temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(h, text.states.clone(), text.mask.clone());
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

/// The middle block: residual block, then (attention, residual block).
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    /// Two residual blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One attention.
    pub attentions: Vec<AddedKvAttention<B>>,
}

impl<B: Backend> MidBlock<B> {
    pub(crate) fn new(s: &BlockSettings, channels: usize, device: &B::Device) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| s.resnet(channels, channels, Resample::None).init(device))
                .collect(),
            attentions: s.attention(channels, device).into_iter().collect(),
        }
    }

    pub(crate) fn forward(
        &self,
        h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
    ) -> Tensor<B, 4> {
        let mut h = self.resnets[0].forward(h, temb.clone());
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            h = attn.forward(h, text.states.clone(), text.mask.clone());
            h = resnet.forward(h, temb.clone());
        }
        h
    }
}

/// An up block; `attentions` is empty for `ResnetUpsampleBlock2D`.
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
    efficient: bool,
}

impl<B: Backend> UpBlock<B> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        s: &BlockSettings,
        in_channels: usize,
        prev_output_channels: usize,
        out_channels: usize,
        layers: usize,
        upsample: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            resnets: (0..layers)
                .map(|i| {
                    let skip = if i == layers - 1 {
                        in_channels
                    } else {
                        out_channels
                    };
                    let cin = if i == 0 {
                        prev_output_channels
                    } else {
                        out_channels
                    };
                    s.resnet(cin + skip, out_channels, Resample::None)
                        .init(device)
                })
                .collect(),
            attentions: (0..layers)
                .filter_map(|_| s.attention(out_channels, device))
                .collect(),
            upsamplers: upsample.then(|| {
                s.resnet(out_channels, out_channels, Resample::Up)
                    .init(device)
            }),
            upsample_conv: None,
            efficient: false,
        }
    }

    /// An Efficient U-Net UBlock at `channels` (its DBlock's width): `[h; skip]`
    /// (both `channels` wide) through `layers` residual blocks and the optional
    /// attention, then doubles the resolution, mapping to `out_channels`.
    pub(crate) fn efficient(
        s: &BlockSettings,
        channels: usize,
        out_channels: usize,
        layers: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            resnets: (0..layers)
                .map(|i| {
                    let cin = if i == 0 { 2 * channels } else { channels };
                    s.resnet(cin, channels, Resample::None).init(device)
                })
                .collect(),
            attentions: s.attention(channels, device).into_iter().collect(),
            upsamplers: None,
            upsample_conv: Some(same_conv(channels, out_channels, 3, device)),
            efficient: true,
        }
    }

    /// Consumes one skip tensor per residual block (UBlock: one in all), from
    /// the end of `skips`.
    pub(crate) fn forward(
        &self,
        mut h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
        skips: &mut Vec<Tensor<B, 4>>,
    ) -> Tensor<B, 4> {
        if self.efficient {
            let skip = skips.pop().expect("one skip per UBlock");
            h = Tensor::cat(vec![h, skip], 1);
            for resnet in &self.resnets {
                h = resnet.forward(h, temb.clone());
            }
            for attn in &self.attentions {
                h = attn.forward(h, text.states.clone(), text.mask.clone());
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
            return h;
        }
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("one skip per up-block layer");
            h = resnet.forward(Tensor::cat(vec![h, skip], 1), temb.clone());
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(h, text.states.clone(), text.mask.clone());
            }
        }
        match &self.upsamplers {
            Some(up) => up.forward(h, temb.clone()),
            None => h,
        }
    }
}
