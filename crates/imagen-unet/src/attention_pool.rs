//! Pooling the text tokens into one vector added to the time embedding:
//! DeepFloyd IF's `AttentionPooling` inside diffusers' `TextTimeEmbedding`
//! (`addition_embed_type = "text"`), Imagen's pooled text embedding.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::AttentionModuleOptions;

use crate::norm::attention;

/// One query (the mean token plus a learned position embedding) attending
/// over `[query; tokens]`. Ignores any padding mask, as IF does: the mean and
/// the attention run over all tokens.
#[derive(Module, Debug)]
pub struct AttentionPooling<B: Backend> {
    /// Added to the mean token, `[1, width]`.
    pub positional_embedding: Param<Tensor<B, 2>>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    heads: usize,
}

impl<B: Backend> AttentionPooling<B> {
    /// Randomly initialised pooling over `width`-wide tokens with `heads` heads.
    pub fn new(width: usize, heads: usize, device: &B::Device) -> Self {
        let linear = || LinearConfig::new(width, width).init(device);
        Self {
            // Lazy like burn-nn's own parameters: loading a checkpoint
            // replaces it without drawing from the backend's generator.
            positional_embedding: Initializer::Normal {
                mean: 0.0,
                std: 1.0 / (width as f64).sqrt(),
            }
            .init([1, width], device),
            k_proj: linear(),
            q_proj: linear(),
            v_proj: linear(),
            heads,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, L, width]` → `[batch, width]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, _, width] = x.dims();
        let dph = width / self.heads;
        let class_token = x.clone().mean_dim(1) + self.positional_embedding.val().unsqueeze::<3>();
        let x = Tensor::cat(vec![class_token.clone(), x], 1);
        let heads = |t: Tensor<B, 3>| {
            let n = t.dims()[1];
            t.reshape([b, n, self.heads, dph]).swap_dims(1, 2)
        };
        let q = heads(self.q_proj.forward(class_token));
        let k = heads(self.k_proj.forward(x.clone()));
        let v = heads(self.v_proj.forward(x));
        // IF scales q and k each by dph^-1/4: the default 1/sqrt(dph) overall.
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        attention(q, k, v, None, options).reshape([b, width])
    }
}

/// diffusers' `TextTimeEmbedding`: `norm2(proj(pool(norm1(text))))`.
#[derive(Module, Debug)]
pub struct TextTimeEmbedding<B: Backend> {
    /// LayerNorm on the raw text states.
    pub norm1: LayerNorm<B>,
    /// The pooling.
    pub pool: AttentionPooling<B>,
    /// Projection to the time embedding width.
    pub proj: Linear<B>,
    /// LayerNorm on the result.
    pub norm2: LayerNorm<B>,
}

impl<B: Backend> TextTimeEmbedding<B> {
    /// Randomly initialised layers.
    pub fn new(text_dim: usize, time_embed_dim: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            norm1: LayerNormConfig::new(text_dim).init(device),
            pool: AttentionPooling::new(text_dim, heads, device),
            proj: LinearConfig::new(text_dim, time_embed_dim).init(device),
            norm2: LayerNormConfig::new(time_embed_dim).init(device),
        }
    }

    /// # Shapes
    /// - `text`: `[batch, L, text_dim]` → `[batch, time_embed_dim]`
    pub fn forward(&self, text: Tensor<B, 3>) -> Tensor<B, 2> {
        self.norm2.forward(
            self.proj
                .forward(self.pool.forward(self.norm1.forward(text))),
        )
    }
}
