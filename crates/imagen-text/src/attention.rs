//! T5 self-attention: no 1/sqrt(d) scaling, an additive bias carrying both the
//! relative positions and the padding mask.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// Multi-head self-attention with bias-free `q`, `k`, `v`, `o` projections
/// (`inner = num_heads * d_kv`, which need not equal `d_model`).
#[derive(Module, Debug)]
pub struct T5Attention<B: Backend> {
    /// Query projection `d_model -> inner`.
    pub q: Linear<B>,
    /// Key projection.
    pub k: Linear<B>,
    /// Value projection.
    pub v: Linear<B>,
    /// Output projection `inner -> d_model`.
    pub o: Linear<B>,
    num_heads: usize,
    d_kv: usize,
}

impl<B: Backend> T5Attention<B> {
    /// Randomly initialised projections.
    pub fn new(d_model: usize, num_heads: usize, d_kv: usize, device: &B::Device) -> Self {
        let inner = num_heads * d_kv;
        let linear = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            q: linear(d_model, inner),
            k: linear(d_model, inner),
            v: linear(d_model, inner),
            o: linear(inner, d_model),
            num_heads,
            d_kv,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`
    /// - `bias`: `[batch, num_heads, seq, seq]`, added to the raw scores
    /// - returns `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let heads = |t: Tensor<B, 3>| {
            t.reshape([batch, seq, self.num_heads, self.d_kv])
                .swap_dims(1, 2)
        };
        let q = heads(self.q.forward(x.clone()));
        let k = heads(self.k.forward(x.clone()));
        let v = heads(self.v.forward(x));
        let options = AttentionModuleOptions {
            scale: Some(1.0),
            softcap: None,
            is_causal: false,
        };
        let out = attention(q, k, v, None, Some(bias), options);
        let out = out
            .swap_dims(1, 2)
            .reshape([batch, seq, self.num_heads * self.d_kv]);
        self.o.forward(out)
    }
}
