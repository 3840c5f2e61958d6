//! T5's feed-forward layer: `wo(act(wi x))`, or gated `wo(act(wi_0 x) * wi_1 x)` (T5 v1.1).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, relu, silu};
use burn::tensor::backend::Backend;

use crate::config::{Activation, FeedForwardKind};
use crate::precision::to_dtype;

/// The two feed-forward variants; field names follow the checkpoint
/// (`DenseReluDense.wi` or `DenseReluDense.wi_0` / `wi_1`, then `wo`).
#[derive(Module, Debug)]
pub struct T5FeedForward<B: Backend> {
    /// Input projection of the plain variant.
    pub wi: Option<Linear<B>>,
    /// Activated input projection of the gated variant.
    pub wi_0: Option<Linear<B>>,
    /// Linear (gate) input projection of the gated variant.
    pub wi_1: Option<Linear<B>>,
    /// Output projection `d_ff -> d_model`.
    pub wo: Linear<B>,
    #[module(skip)]
    activation: Activation,
}

impl<B: Backend> T5FeedForward<B> {
    /// Randomly initialised weights of the given variant.
    pub fn new(d_model: usize, d_ff: usize, kind: FeedForwardKind, device: &B::Device) -> Self {
        let linear = |i, o| Some(LinearConfig::new(i, o).with_bias(false).init(device));
        let (wi, wi_0, wi_1) = if kind.gated {
            (None, linear(d_model, d_ff), linear(d_model, d_ff))
        } else {
            (linear(d_model, d_ff), None, None)
        };
        Self {
            wi,
            wi_0,
            wi_1,
            wo: LinearConfig::new(d_ff, d_model)
                .with_bias(false)
                .init(device),
            activation: kind.activation,
        }
    }

    fn act(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match self.activation {
            Activation::Relu => relu(x),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_tanh(x),
            Activation::Silu => silu(x),
        }
    }

    /// The hidden activations are cast to the dtype of `wo` before it, as
    /// transformers does: a T5 loaded in f16 keeps `wo` in f32, so its output
    /// (and the residual stream it is added to) is f32.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]` → `[batch, seq, d_model]`, in `wo`'s dtype
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = match (&self.wi, &self.wi_0, &self.wi_1) {
            (Some(wi), _, _) => self.act(wi.forward(x)),
            (None, Some(wi_0), Some(wi_1)) => self.act(wi_0.forward(x.clone())) * wi_1.forward(x),
            _ => unreachable!("T5FeedForward::new sets wi or both wi_0 and wi_1"),
        };
        self.wo
            .forward(to_dtype(hidden, self.wo.weight.val().dtype()))
    }
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, transformers' `gelu_new`.
///
/// Same formula as burn's `gelu_approximate`, rearranged for CPU speed: `x^3`
/// as multiplies instead of `powf`, and `1 + tanh(z) = 2 - 2 / (exp(2z) + 1)`
/// so that the one transcendental is `exp` (libm's `tanhf` and `powf` were a
/// quarter of T5-small's time). Differs from the tanh form by < 1e-7 absolute.
fn gelu_tanh<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    const TWO_SQRT_2_OVER_PI: f64 = 2.0 * 0.797_884_560_802_865_4;
    let cube = x.clone() * x.clone() * x.clone();
    let two_z = (x.clone() + cube * 0.044715) * TWO_SQRT_2_OVER_PI;
    // 0.5 x (1 + tanh z) = x (1 - 1 / (exp(2z) + 1))
    x.clone() - x / (two_z.exp() + 1)
}
