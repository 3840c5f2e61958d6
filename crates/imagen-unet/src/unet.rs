//! diffusers' `UNet2DConditionModel` in the DeepFloyd IF layout, and the
//! Efficient U-Net of the Imagen paper built from the same parts.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};

use crate::blocks::{BlockSettings, DownBlock, MidBlock, TextContext, UpBlock};
use crate::norm::{conv2d, group_norm};
use crate::resnet::same_conv;
use crate::{
    Activation, AddedKvAttentionConfig, Resample, ResnetConfig, TextTimeEmbedding,
    TimeConditioning, TimestepEmbedding, UNetConfig, UNetError, timestep_embedding,
};

/// The text-conditioned U-Net of DeepFloyd IF (stage I and II), with
/// diffusers' parameter names, or Imagen's Efficient U-Net (DBlock / UBlock
/// block types in [`UNetConfig`]).
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
    efficient: bool,
    #[module(skip)]
    conv_in_skip: bool,
}

impl UNetConfig {
    /// Builds the U-Net with fresh (lazily allocated) weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<UNet<B>, UNetError> {
        self.validate()?;
        let act = Activation::parse("act_fn", &self.act_fn)?;
        let time_embed_act = self
            .time_embedding_act_fn
            .as_deref()
            .map(|a| Activation::parse("time_embedding_act_fn", a))
            .transpose()?;
        let groups = self.norm_num_groups.expect("validated");
        let c = &self.block_out_channels;
        let n = c.len();
        let temb = self.time_embed_dim();
        let conv = |i, o, k| same_conv(i, o, k, device);
        let resnet = ResnetConfig {
            in_channels: 0,
            out_channels: 0,
            temb_channels: temb,
            groups,
            eps: self.norm_eps,
            act,
            time: if self.resnet_time_scale_shift == "scale_shift" {
                TimeConditioning::ScaleShift
            } else {
                TimeConditioning::Add
            },
            resample: Resample::None,
            skip_time_act: self.resnet_skip_time_act,
            output_scale_factor: self.resnet_out_scale_factor,
        };
        let cross_norm_layer = self
            .cross_attention_norm
            .as_deref()
            .map(|n| n == "layer_norm");
        let attention = |i: usize, only_cross: bool| AddedKvAttentionConfig {
            channels: 0,
            heads: 0,
            head_dim: self.attention_head_dim.get(i),
            text_dim: self.cross_attention_dim.get(i),
            groups,
            eps: self.norm_eps,
            cross_norm_layer,
            only_cross_attention: only_cross,
        };
        let settings = |i: usize, attends: bool| BlockSettings {
            resnet,
            attention: attends.then(|| attention(i, self.only_cross_attention.get(i))),
        };

        let efficient = self.is_efficient();
        let mut down_blocks = Vec::with_capacity(n);
        for i in 0..n {
            let settings = settings(i, self.down_block_types[i].attends());
            let cin = if i == 0 { c[0] } else { c[i - 1] };
            let layers = self.layers_per_block.get(i);
            down_blocks.push(if efficient {
                DownBlock::efficient(&settings, cin, c[i], layers, device)
            } else {
                DownBlock::new(&settings, cin, c[i], layers, i + 1 < n, device)
            });
        }
        let mid = BlockSettings {
            resnet: ResnetConfig {
                output_scale_factor: self.mid_block_scale_factor,
                ..resnet
            },
            attention: Some(attention(n - 1, self.mid_only_cross_attention())),
        };
        let mut up_blocks = Vec::with_capacity(n);
        let mut out = c[n - 1];
        for i in 0..n {
            let level = n - 1 - i;
            let prev = out;
            out = c[level];
            let input = c[level.saturating_sub(1)];
            let settings = settings(level, self.up_block_types[i].attends());
            let layers = self.layers_per_block.get(level);
            up_blocks.push(if efficient {
                UpBlock::efficient(&settings, out, input, layers, device)
            } else {
                UpBlock::new(&settings, input, prev, out, layers + 1, i + 1 < n, device)
            });
        }
        let class_embedding = (self.class_embed_type.as_deref() == Some("timestep"))
            .then(|| TimestepEmbedding::new(c[0], temb, act, device));
        let text_dim = self
            .encoder_hid_dim
            .unwrap_or(self.cross_attention_dim.get(0));
        let add_embedding = (self.addition_embed_type.as_deref() == Some("text")).then(|| {
            TextTimeEmbedding::new(text_dim, temb, self.addition_embed_type_num_heads, device)
        });
        let encoder_hid_proj = self
            .encoder_hid_dim
            .map(|d| LinearConfig::new(d, self.cross_attention_dim.get(0)).init(device));
        // With `conv_in_skip`, the output head also reads conv_in's features.
        let head_channels = if self.conv_in_skip { 2 * c[0] } else { c[0] };
        Ok(UNet {
            conv_in: conv(self.in_channels, c[0], self.conv_in_kernel),
            time_embedding: TimestepEmbedding::new(c[0], temb, act, device),
            class_embedding,
            add_embedding,
            encoder_hid_proj,
            down_blocks,
            mid_block: MidBlock::new(&mid, c[n - 1], device),
            up_blocks,
            conv_norm_out: GroupNormConfig::new(groups, head_channels)
                .with_epsilon(self.norm_eps)
                .init(device),
            conv_out: conv(head_channels, self.out_channels, self.conv_out_kernel),
            act,
            time_embed_act,
            time_proj_dim: c[0],
            flip_sin_to_cos: self.flip_sin_to_cos,
            freq_shift: self.freq_shift as f32,
            efficient,
            conv_in_skip: self.conv_in_skip,
        })
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
    ///   [`UNetConfig::downsampling_factor`])
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
        let mut skips = if self.efficient {
            Vec::with_capacity(self.down_blocks.len())
        } else {
            vec![h.clone()]
        };
        let init = self.conv_in_skip.then(|| h.clone());
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
