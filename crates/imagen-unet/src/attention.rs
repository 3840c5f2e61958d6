//! DeepFloyd IF's "simple cross attention": self-attention over pixels with
//! the text's keys and values concatenated in front of the pixels' own
//! (diffusers' `Attention` with `added_kv_proj_dim`, `AttnAddedKVProcessor`).

use burn::module::Module;
use burn::nn::{GroupNorm, GroupNormConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use crate::norm::{attention, group_norm};
use crate::{AttentionScope, TextNorm};

/// The norm applied to text states before their key/value projections
/// (`cross_attention_norm`).
#[derive(Module, Debug)]
pub enum CrossNorm<B: Backend> {
    /// GroupNorm with 32 groups over the text channels (diffusers hard-codes 32).
    Group(GroupNorm<B>),
    /// LayerNorm over the text channels.
    Layer(LayerNorm<B>),
}

/// Settings of an [`AddedKvAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddedKvAttentionConfig {
    /// Pixel channels (query and output width).
    pub channels: usize,
    /// Heads; each `head_dim` wide.
    pub heads: usize,
    /// Width per head.
    pub head_dim: usize,
    /// Width of the text states.
    pub text_dim: usize,
    /// GroupNorm groups of the pixel norm.
    pub groups: usize,
    /// GroupNorm / LayerNorm epsilon.
    pub eps: f64,
    /// Norm on the text states before their key/value projections.
    pub cross_norm: Option<TextNorm>,
    /// Pixels and text, or the text only (no pixel keys / values).
    pub scope: AttentionScope,
}

impl AddedKvAttentionConfig {
    /// Builds a randomly initialised layer.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AddedKvAttention<B> {
        let inner = self.heads * self.head_dim;
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let self_kv = self.scope == AttentionScope::SelfAndText;
        AddedKvAttention {
            group_norm: GroupNormConfig::new(self.groups, self.channels)
                .with_epsilon(self.eps)
                .init(device),
            norm_cross: self.cross_norm.map(|norm| match norm {
                TextNorm::Layer => {
                    CrossNorm::Layer(LayerNormConfig::new(self.text_dim).init(device))
                }
                TextNorm::Group => CrossNorm::Group(
                    GroupNormConfig::new(32, self.text_dim)
                        .with_epsilon(1e-5)
                        .init(device),
                ),
            }),
            to_q: linear(self.channels, inner),
            to_k: self_kv.then(|| linear(self.channels, inner)),
            to_v: self_kv.then(|| linear(self.channels, inner)),
            add_k_proj: linear(self.text_dim, inner),
            add_v_proj: linear(self.text_dim, inner),
            to_out: linear(inner, self.channels),
            heads: self.heads,
            head_dim: self.head_dim,
        }
    }
}

/// Pixel self-attention with text keys/values prepended; residual included.
/// Field names follow diffusers' checkpoint keys (`to_out.0` is `to_out`).
#[derive(Module, Debug)]
pub struct AddedKvAttention<B: Backend> {
    /// Pixel GroupNorm.
    pub group_norm: GroupNorm<B>,
    /// Text norm.
    pub norm_cross: Option<CrossNorm<B>>,
    /// Query projection.
    pub to_q: Linear<B>,
    /// Pixel key projection (absent for [`AttentionScope::TextOnly`]).
    pub to_k: Option<Linear<B>>,
    /// Pixel value projection (absent for [`AttentionScope::TextOnly`]).
    pub to_v: Option<Linear<B>>,
    /// Text key projection.
    pub add_k_proj: Linear<B>,
    /// Text value projection.
    pub add_v_proj: Linear<B>,
    /// Output projection.
    pub to_out: Linear<B>,
    heads: usize,
    head_dim: usize,
}

impl<B: Backend> AddedKvAttention<B> {
    fn split_heads(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, n, _] = x.dims();
        x.reshape([b, n, self.heads, self.head_dim]).swap_dims(1, 2)
    }

    /// # Shapes
    /// - `x`: `[batch, channels, H, W]`
    /// - `text`: `[batch, L, text_dim]`
    /// - `text_mask`: `[batch, L]`, `true` for real tokens; masked tokens get
    ///   diffusers' additive bias of -10000 (not -inf). DeepFloyd IF's
    ///   pipelines pass no mask.
    /// - returns `[batch, channels, H, W]`
    ///
    /// In f16 / bf16, diffusers builds IF's attention with
    /// `upcast_softmax=True` (scores in the module dtype, softmax in f32);
    /// we compute the whole attention of half-precision tensors in f32 and
    /// round its output once, on every backend (burn-cubecl's fallback
    /// attention would take the softmax in f16). The GroupNorms take their
    /// statistics in f32, as PyTorch's do.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        text: Tensor<B, 3>,
        text_mask: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let [_, l, _] = text.dims();
        let text = match &self.norm_cross {
            None => text,
            Some(CrossNorm::Group(norm)) => group_norm(norm, text.swap_dims(1, 2)).swap_dims(1, 2),
            Some(CrossNorm::Layer(norm)) => norm.forward(text),
        };
        let pixels = group_norm(&self.group_norm, x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let q = self.split_heads(self.to_q.forward(pixels.clone()));
        let text_k = self.split_heads(self.add_k_proj.forward(text.clone()));
        let text_v = self.split_heads(self.add_v_proj.forward(text));
        let (k, v) = match (&self.to_k, &self.to_v) {
            (Some(to_k), Some(to_v)) => (
                Tensor::cat(
                    vec![text_k, self.split_heads(to_k.forward(pixels.clone()))],
                    2,
                ),
                Tensor::cat(vec![text_v, self.split_heads(to_v.forward(pixels))], 2),
            ),
            _ => (text_k, text_v),
        };
        let keys = k.dims()[2];
        let bias = text_mask.map(|mask| {
            let text_bias = Tensor::<B, 2>::zeros([b, l], (&x.device(), x.dtype()))
                .mask_fill(mask.bool_not(), -10000.0);
            let full = if keys > l {
                Tensor::cat(
                    vec![
                        text_bias,
                        Tensor::zeros([b, keys - l], (&x.device(), x.dtype())),
                    ],
                    1,
                )
            } else {
                text_bias
            };
            full.reshape([b, 1, 1, keys])
                .expand([b, self.heads, h * w, keys])
        });
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let out = attention(q, k, v, bias, options).swap_dims(1, 2).reshape([
            b,
            h * w,
            self.heads * self.head_dim,
        ]);
        let out = self
            .to_out
            .forward(out)
            .swap_dims(1, 2)
            .reshape([b, c, h, w]);
        out + x
    }
}
