//! One T5 encoder block: pre-norm self-attention, then pre-norm feed-forward,
//! each added to the residual stream.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::attention::T5Attention;
use crate::config::FeedForwardKind;
use crate::feed_forward::T5FeedForward;
use crate::norm::T5LayerNorm;
use crate::precision::add_promoted;

/// `layer.0` (attention) and `layer.1` (feed-forward) of a transformers `T5Block`.
#[derive(Module, Debug)]
pub struct T5Block<B: Backend> {
    /// `layer.0.layer_norm`.
    pub attention_norm: T5LayerNorm<B>,
    /// `layer.0.SelfAttention`.
    pub attention: T5Attention<B>,
    /// `layer.1.layer_norm`.
    pub feed_forward_norm: T5LayerNorm<B>,
    /// `layer.1.DenseReluDense`.
    pub feed_forward: T5FeedForward<B>,
}

impl<B: Backend> T5Block<B> {
    /// A randomly initialised block.
    pub fn new(
        d_model: usize,
        num_heads: usize,
        d_kv: usize,
        d_ff: usize,
        kind: FeedForwardKind,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            attention_norm: T5LayerNorm::new(d_model, eps, device),
            attention: T5Attention::new(d_model, num_heads, d_kv, device),
            feed_forward_norm: T5LayerNorm::new(d_model, eps, device),
            feed_forward: T5FeedForward::new(d_model, d_ff, kind, device),
        }
    }

    /// Each sub-layer's output is added to the residual stream with PyTorch's
    /// type promotion: in an f16 T5 whose `wo` is f32, the stream is f16 until
    /// the first feed-forward, f32 after it.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`, `bias`: `[batch, heads, seq, seq]`
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let h = self
            .attention
            .forward(self.attention_norm.forward(x.clone()), bias);
        let x = clamp_f16(add_promoted(x, h));
        let h = self
            .feed_forward
            .forward(self.feed_forward_norm.forward(x.clone()));
        clamp_f16(add_promoted(x, h))
    }
}

/// In f16, T5's residual stream can exceed the format's range (T5 was trained
/// in bf16). Like transformers, when any value has overflowed to infinity the
/// stream is clamped to `±(f16::MAX - 1000)`; otherwise it is left alone.
/// Other dtypes pass through untouched.
fn clamp_f16<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    if x.dtype() != DType::F16 {
        return x;
    }
    const LIMIT: f32 = 65504.0 - 1000.0;
    let any_inf = x.clone().is_inf().any().reshape([1, 1, 1]).expand(x.dims());
    let clamped = x.clone().clamp(-LIMIT, LIMIT);
    x.mask_where(any_inf, clamped)
}
