//! Timestep embeddings: diffusers' sinusoidal `Timesteps` and the
//! `TimestepEmbedding` MLP.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::activation::Activation;

/// diffusers' `get_timestep_embedding`: `dim` sinusoids of each timestep with
/// frequencies `exp(-ln(10000) k / (dim/2 - shift))`, `[cos, sin]` when
/// `flip_sin_to_cos`, else `[sin, cos]` (zero-padded when `dim` is odd).
/// Computed in f32 as diffusers does, on the host (a few hundred values);
/// frequencies are correctly rounded `exp` values, which torch's vectorised
/// `exp` matches but for an occasional last-bit difference.
///
/// # Shapes
/// - returns `[timesteps.len(), dim]`
pub fn timestep_embedding<B: Backend>(
    timesteps: &[f32],
    dim: usize,
    flip_sin_to_cos: bool,
    downscale_freq_shift: f32,
    device: &B::Device,
) -> Tensor<B, 2> {
    let half = dim / 2;
    let max_period_ln = 10000f64.ln() as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|k| {
            (f64::from((-max_period_ln * k as f32) / (half as f32 - downscale_freq_shift)).exp())
                as f32
        })
        .collect();
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let args: Vec<f32> = freqs.iter().map(|f| t * f).collect();
        let (sin, cos): (Vec<f32>, Vec<f32>) = args.iter().map(|a| (a.sin(), a.cos())).unzip();
        if flip_sin_to_cos {
            out.extend(cos);
            out.extend(sin);
        } else {
            out.extend(sin);
            out.extend(cos);
        }
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    Tensor::from_data(TensorData::new(out, [timesteps.len(), dim]), device)
}

/// `linear_2(act(linear_1(x)))`: diffusers' `TimestepEmbedding`.
#[derive(Module, Debug)]
pub struct TimestepEmbedding<B: Backend> {
    /// `in -> time_embed_dim`.
    pub linear_1: Linear<B>,
    /// `time_embed_dim -> time_embed_dim`.
    pub linear_2: Linear<B>,
    #[module(skip)]
    act: Activation,
}

impl<B: Backend> TimestepEmbedding<B> {
    /// Randomly initialised layers.
    pub fn new(in_dim: usize, out_dim: usize, act: Activation, device: &B::Device) -> Self {
        Self {
            linear_1: LinearConfig::new(in_dim, out_dim).init(device),
            linear_2: LinearConfig::new(out_dim, out_dim).init(device),
            act,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, in]` → `[batch, out]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.linear_2
            .forward(self.act.forward(self.linear_1.forward(x)))
    }
}
