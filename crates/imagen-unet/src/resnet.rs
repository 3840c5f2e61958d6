//! diffusers' `ResnetBlock2D` as the IF layout uses it: GroupNorm, optional
//! up/down resampling inside the block, time conditioning by scale-shift (or
//! addition), optional 1x1 shortcut, output divided by a scale factor.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::Activation;
use crate::norm::{conv2d, group_norm};

/// Resampling inside a residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// Same resolution.
    None,
    /// Nearest-neighbour x2 (diffusers `up=True`).
    Up,
    /// 2x2 average pooling (diffusers `down=True`).
    Down,
}

/// How the time embedding enters the block (`resnet_time_scale_shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeConditioning {
    /// `h + proj(t)` before `norm2` (`"default"`).
    Add,
    /// `norm2(h) * (1 + scale) + shift` (`"scale_shift"`, IF).
    ScaleShift,
}

/// Settings of a [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResnetConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Width of the time embedding.
    pub temb_channels: usize,
    /// GroupNorm groups.
    pub groups: usize,
    /// GroupNorm epsilon.
    pub eps: f64,
    /// Activation.
    pub act: Activation,
    /// Time conditioning.
    pub time: TimeConditioning,
    /// Resampling.
    pub resample: Resample,
    /// Feed the time embedding to its projection without the activation.
    pub skip_time_act: bool,
    /// Divisor of the output.
    pub output_scale_factor: f64,
}

impl ResnetConfig {
    /// Builds a randomly initialised block.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResnetBlock2D<B> {
        let conv = |i, o, k| same_conv(i, o, k, device);
        let time_out = match self.time {
            TimeConditioning::Add => self.out_channels,
            TimeConditioning::ScaleShift => 2 * self.out_channels,
        };
        ResnetBlock2D {
            norm1: GroupNormConfig::new(self.groups, self.in_channels)
                .with_epsilon(self.eps)
                .init(device),
            conv1: conv(self.in_channels, self.out_channels, 3),
            time_emb_proj: LinearConfig::new(self.temb_channels, time_out).init(device),
            norm2: GroupNormConfig::new(self.groups, self.out_channels)
                .with_epsilon(self.eps)
                .init(device),
            conv2: conv(self.out_channels, self.out_channels, 3),
            conv_shortcut: (self.in_channels != self.out_channels)
                .then(|| conv(self.in_channels, self.out_channels, 1)),
            config: *self,
        }
    }
}

/// A `k x k` convolution with bias and "same" padding, as diffusers builds them.
pub(crate) fn same_conv<B: Backend>(i: usize, o: usize, k: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([i, o], [k, k])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

/// diffusers' `ResnetBlock2D`; field names follow its checkpoint keys.
#[derive(Module, Debug)]
pub struct ResnetBlock2D<B: Backend> {
    /// First norm (input channels).
    pub norm1: GroupNorm<B>,
    /// First 3x3 convolution.
    pub conv1: Conv2d<B>,
    /// Time embedding projection.
    pub time_emb_proj: Linear<B>,
    /// Second norm.
    pub norm2: GroupNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// 1x1 projection of the input when the channel count changes.
    pub conv_shortcut: Option<Conv2d<B>>,
    #[module(skip)]
    config: ResnetConfig,
}

impl<B: Backend> ResnetBlock2D<B> {
    fn resample(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self.config.resample {
            Resample::None => x,
            Resample::Up => {
                let [_, _, h, w] = x.dims();
                interpolate(
                    x,
                    [2 * h, 2 * w],
                    InterpolateOptions::new(InterpolateMode::Nearest),
                )
            }
            Resample::Down => avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, in, H, W]`, `temb`: `[batch, temb_channels]`
    /// - returns `[batch, out, H', W']` (H' = 2H up, H/2 down)
    pub fn forward(&self, x: Tensor<B, 4>, temb: Tensor<B, 2>) -> Tensor<B, 4> {
        let act = self.config.act;
        let h = act.forward(group_norm(&self.norm1, x.clone()));
        let (x, h) = (self.resample(x), self.resample(h));
        let h = conv2d(&self.conv1, h);
        let temb = if self.config.skip_time_act {
            temb
        } else {
            act.forward(temb)
        };
        let t: Tensor<B, 4> = self.time_emb_proj.forward(temb).unsqueeze_dims(&[2, 3]);
        let h = match self.config.time {
            TimeConditioning::Add => group_norm(&self.norm2, h + t),
            TimeConditioning::ScaleShift => {
                let mut halves = t.chunk(2, 1).into_iter();
                let (scale, shift) = (halves.next().expect("2"), halves.next().expect("2"));
                group_norm(&self.norm2, h) * (scale + 1.0) + shift
            }
        };
        let h = conv2d(&self.conv2, act.forward(h));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        (shortcut + h) / self.config.output_scale_factor
    }
}
