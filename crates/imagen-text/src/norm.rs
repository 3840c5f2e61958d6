//! T5's layer norm: RMS normalisation with a learned scale, no mean, no bias.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// `weight * x / sqrt(mean(x^2) + eps)` over the last dimension.
///
/// The mean square is taken in f32 whatever the backend's float type, as
/// transformers does: in f16 the squares of T5's large activations overflow.
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
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        let x32 = if dtype == DType::F32 {
            x
        } else {
            x.cast(DType::F32)
        };
        let variance = (x32.clone() * x32.clone()).mean_dim(2);
        let normed = x32 * variance.add_scalar(self.eps).sqrt().recip();
        let normed = if dtype == DType::F32 {
            normed
        } else {
            normed.cast(dtype)
        };
        normed * self.weight.val().unsqueeze::<3>()
    }
}
