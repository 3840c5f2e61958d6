//! diffusers' `UNet2DConditionModel` in the DeepFloyd IF layout, and the
//! Efficient U-Net of the Imagen paper built from the same parts.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};

use crate::blocks::{
    BlockSettings, DownBlock, EfficientDown, EfficientUp, IfDown, IfUp, MidBlock, TextContext,
    UpBlock,
};
use crate::norm::{conv2d, group_norm};
use crate::resnet::same_conv;
use crate::{
    Activation, AddedKvAttentionConfig, AttentionSpec, Layout, Resample, ResnetConfig,
    TextTimeEmbedding, TimestepEmbedding, UNetSpec, timestep_embedding,
};

/// The text-conditioned U-Net of DeepFloyd IF (stage I and II), with
/// diffusers' parameter names, or Imagen's Efficient U-Net (DBlock / UBlock
/// block types in [`crate::UNetConfig`]); built by [`UNetSpec::init`].
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Timestep MLP.
    pub time_embedding: TimestepEmbedding<B>,
    /// Noise-level MLP of super-resolution stages (`class_embed_type = "timestep"`).
    pub class_embedding: Option<TimestepEmbedding<B>>,
    /// Pooled-text embedding (`addition_embed_type = "text"`).
    pub add_embedding: Option<TextTimeEmbedding<B>>,
    /// Projection of the text states to the attention width.
    pub encoder_hid_proj: Option<Linear<B>>,
    /// Down path.
    pub down_blocks: Vec<DownBlock<B>>,
    /// Middle block.
    pub mid_block: MidBlock<B>,
    /// Up path.
    pub up_blocks: Vec<UpBlock<B>>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// Output convolution.
    pub conv_out: Conv2d<B>,
    #[module(skip)]
    act: Activation,
    #[module(skip)]
    time_embed_act: Option<Activation>,
    #[module(skip)]
    time_proj_dim: usize,
    #[module(skip)]
    flip_sin_to_cos: bool,
    #[module(skip)]
    freq_shift: f32,
    #[module(skip)]
    layout: Layout,
}

impl UNetSpec {
    /// Builds the U-Net with fresh (lazily allocated) weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> UNet<B> {
        let r = &self.residual;
        let n = self.levels.len();
        let c: Vec<usize> = self.levels.iter().map(|l| l.channels).collect();
        let temb = self.time.embedding_dim;
        let conv = |i, o, k| same_conv(i, o, k, device);
        let resnet = ResnetConfig {
            in_channels: 0,
            out_channels: 0,
            temb_channels: temb,
            groups: r.groups,
            eps: r.eps,
            act: r.act,
            time: r.time,
            resample: Resample::None,
            skip_time_act: r.skip_time_act,
            output_scale_factor: r.output_scale_factor,
        };
        let attention = |a: Option<AttentionSpec>| {
            a.map(|a| AddedKvAttentionConfig {
                channels: 0,
                heads: 0,
                head_dim: a.head_dim,
                text_dim: self.text.attention_dim,
                groups: r.groups,
                eps: r.eps,
                cross_norm: self.text.norm,
                scope: a.scope,
            })
        };
        let settings = |a: Option<AttentionSpec>| BlockSettings {
            resnet,
            attention: attention(a),
        };

        let efficient = matches!(self.layout, Layout::Efficient { .. });
        let down_blocks = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                let s = settings(level.down_attention);
                let in_channels = c[i.saturating_sub(1)];
                let (out_channels, layers) = (level.channels, level.layers);
                if efficient {
                    let sizes = EfficientDown {
                        in_channels,
                        out_channels,
                        layers,
                    };
                    DownBlock::efficient(&s, sizes, device)
                } else {
                    let sizes = IfDown {
                        in_channels,
                        out_channels,
                        layers,
                        downsample: i + 1 < n,
                    };
                    DownBlock::if_layout(&s, sizes, device)
                }
            })
            .collect();
        let mid = BlockSettings {
            resnet: ResnetConfig {
                output_scale_factor: self.mid.output_scale_factor,
                ..resnet
            },
            attention: attention(Some(self.mid.attention)),
        };
        let mut up_blocks = Vec::with_capacity(n);
        let mut out = c[n - 1];
        for (i, level) in self.levels.iter().enumerate().rev() {
            let prev = out;
            out = level.channels;
            let above = c[i.saturating_sub(1)];
            let s = settings(level.up_attention);
            up_blocks.push(if efficient {
                let sizes = EfficientUp {
                    channels: out,
                    out_channels: above,
                    layers: level.layers,
                };
                UpBlock::efficient(&s, sizes, device)
            } else {
                let sizes = IfUp {
                    skip_channels: above,
                    prev_output_channels: prev,
                    out_channels: out,
                    layers: level.layers + 1,
                    upsample: i > 0,
                };
                UpBlock::if_layout(&s, sizes, device)
            });
        }
        let act = r.act;
        let class_embedding = self
            .time
            .noise_level
            .then(|| TimestepEmbedding::new(c[0], temb, act, device));
        let text = &self.text;
        let add_embedding = text
            .pooled_heads
            .map(|heads| TextTimeEmbedding::new(text.input_dim, temb, heads, device));
        let encoder_hid_proj = text
            .projected
            .then(|| LinearConfig::new(text.input_dim, text.attention_dim).init(device));
        let conv_in_skip = matches!(self.layout, Layout::Efficient { conv_in_skip: true });
        // With `conv_in_skip`, the output head also reads conv_in's features.
        let head_channels = if conv_in_skip { 2 * c[0] } else { c[0] };
        UNet {
            conv_in: conv(self.in_channels, c[0], self.conv_in_kernel),
            time_embedding: TimestepEmbedding::new(c[0], temb, act, device),
            class_embedding,
            add_embedding,
            encoder_hid_proj,
            down_blocks,
            mid_block: MidBlock::new(&mid, c[n - 1], device),
            up_blocks,
            conv_norm_out: GroupNormConfig::new(r.groups, head_channels)
                .with_epsilon(r.eps)
                .init(device),
            conv_out: conv(head_channels, self.out_channels, self.conv_out_kernel),
            act,
            time_embed_act: self.time.act,
            time_proj_dim: c[0],
            flip_sin_to_cos: self.time.flip_sin_to_cos,
            freq_shift: self.time.freq_shift as f32,
            layout: self.layout,
        }
    }
}

/// `x` in `dtype` (no copy when it already is).
fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(dtype) }
}

impl<B: Backend> UNet<B> {
    /// The compute dtype: the dtype the weights were loaded in (see
    /// [`UNet::load_with`]).
    pub fn dtype(&self) -> DType {
        self.conv_in.weight.val().dtype()
    }

    /// The sinusoidal embedding of `t`, computed in f32 as diffusers does and
    /// then cast to the compute dtype (`t_emb.to(dtype=sample.dtype)`).
    fn time_proj(&self, t: &[f32], device: &B::Device) -> Tensor<B, 2> {
        let emb = timestep_embedding(
            t,
            self.time_proj_dim,
            self.flip_sin_to_cos,
            self.freq_shift,
            device,
        );
        to_dtype(emb, self.dtype())
    }

    /// The embedding every residual block receives: timestep MLP, plus the
    /// noise-level MLP (super-resolution stages), plus the pooled raw text.
    /// Computed in [`UNet::dtype`], returned in `text`'s dtype.
    ///
    /// # Shapes
    /// - `text`: `[batch, L, encoder_hid_dim]`; returns `[batch, time_embed_dim]`
    pub fn embedding(
        &self,
        timesteps: &[f32],
        class_labels: Option<&[f32]>,
        text: &Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let text_in = to_dtype(text.clone(), self.dtype());
        let emb = self.embedding_in_dtype(timesteps, class_labels, &text_in);
        to_dtype(emb, text.dtype())
    }

    /// [`UNet::embedding`] of text already in the compute dtype, in it.
    fn embedding_in_dtype(
        &self,
        timesteps: &[f32],
        class_labels: Option<&[f32]>,
        text: &Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let device = text.device();
        let mut emb = self
            .time_embedding
            .forward(self.time_proj(timesteps, &device));
        if let (Some(class), Some(labels)) = (&self.class_embedding, class_labels) {
            emb = emb + class.forward(self.time_proj(labels, &device));
        }
        if let Some(add) = &self.add_embedding {
            emb = emb + add.forward(text.clone());
        }
        match self.time_embed_act {
            Some(act) => act.forward(emb),
            None => emb,
        }
    }

    /// Predicts from a noisy batch.
    ///
    /// The inputs may be in any float dtype (usually the backend's default,
    /// f32, from the noise and the scheduler): `sample` and `text` are cast to
    /// [`UNet::dtype`] on entry and the prediction is cast back to `sample`'s
    /// dtype, so a U-Net loaded in bf16 or f16 slots into an f32 sampler.
    ///
    /// # Shapes
    /// - `sample`: `[batch, in_channels, H, W]` (H, W divisible by
    ///   [`UNetSpec::downsampling_factor`])
    /// - `timesteps`, `class_labels`: one per sample
    /// - `text`: raw text states `[batch, L, encoder_hid_dim]`
    /// - `text_mask`: `[batch, L]`, `true` for real tokens (IF's pipelines pass none)
    /// - returns `[batch, out_channels, H, W]`
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: &[f32],
        text: Tensor<B, 3>,
        text_mask: Option<Tensor<B, 2, Bool>>,
        class_labels: Option<&[f32]>,
    ) -> Tensor<B, 4> {
        let (io_dtype, dtype) = (sample.dtype(), self.dtype());
        let (sample, text) = (to_dtype(sample, dtype), to_dtype(text, dtype));
        let emb = self.embedding_in_dtype(timesteps, class_labels, &text);
        let states = match &self.encoder_hid_proj {
            Some(proj) => proj.forward(text),
            None => text,
        };
        let ctx = TextContext {
            states,
            mask: text_mask,
        };
        let mut h = conv2d(&self.conv_in, sample);
        // The IF layout also skips from the input convolution; DBlocks do not.
        let (mut skips, init) = match self.layout {
            Layout::If => (vec![h.clone()], None),
            Layout::Efficient { conv_in_skip } => (
                Vec::with_capacity(self.down_blocks.len()),
                conv_in_skip.then(|| h.clone()),
            ),
        };
        for block in &self.down_blocks {
            h = block.forward(h, &emb, &ctx, &mut skips);
        }
        h = self.mid_block.forward(h, &emb, &ctx);
        for block in &self.up_blocks {
            h = block.forward(h, &emb, &ctx, &mut skips);
        }
        if let Some(init) = init {
            h = Tensor::cat(vec![h, init], 1);
        }
        let out = conv2d(
            &self.conv_out,
            self.act.forward(group_norm(&self.conv_norm_out, h)),
        );
        to_dtype(out, io_dtype)
    }
}
