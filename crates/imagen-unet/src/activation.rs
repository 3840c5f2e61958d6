//! The activations diffusers' U-Net configs name (`act_fn`).

use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, mish, silu};
use burn::tensor::backend::Backend;

use crate::UNetError;
use crate::error::unsupported;

/// `silu` / `swish`, `gelu` (exact erf, as PyTorch's `nn.GELU()`), `mish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)`.
    Silu,
    /// Exact GELU.
    Gelu,
    /// `x * tanh(softplus(x))`.
    Mish,
}

impl Activation {
    /// Parses a diffusers activation name; `field` names the config key in errors.
    pub fn parse(field: &'static str, name: &str) -> Result<Self, UNetError> {
        match name {
            "silu" | "swish" => Ok(Self::Silu),
            "gelu" => Ok(Self::Gelu),
            "mish" => Ok(Self::Mish),
            other => Err(unsupported(
                field,
                other,
                "supported: silu, swish, gelu, mish",
            )),
        }
    }

    /// Applies the activation.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Silu => silu(x),
            Self::Gelu => gelu(x),
            Self::Mish => mish(x),
        }
    }
}
