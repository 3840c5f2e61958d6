//! T5's layer norm: RMS normalisation with a learned scale, no mean, no bias.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::precision::to_dtype;

/// `weight * x / sqrt(mean(x^2) + eps)` over the last dimension.
///
/// As transformers does: the mean square and the scaling are computed in f32
/// whatever the input's dtype (in f16 the squares of T5's large activations
/// overflow), then the result is cast to the weight's dtype and scaled. So an
/// f32 residual stream (f16 T5, after its f32 `wo`) comes out in f16.
#[derive(Module, Debug)]
pub struct T5LayerNorm<B: Backend> {
    /// Learned scale, `[d_model]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Added to the mean square.
    pub eps: f64,
}

impl<B: Backend> T5LayerNorm<B> {
    /// A norm of width `d_model` with unit scale.
    pub fn new(d_model: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d_model], device)),
            eps,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`
    /// - returns the weight's dtype
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let weight = self.weight.val();
        let x32 = to_dtype(x, DType::F32);
        let variance = (x32.clone() * x32.clone()).mean_dim(2);
        let normed = x32 * variance.add_scalar(self.eps).sqrt().recip();
        to_dtype(normed, weight.dtype()) * weight.unsqueeze::<3>()
    }
}
