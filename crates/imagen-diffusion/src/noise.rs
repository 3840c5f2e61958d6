//! Where samplers get their Gaussian noise.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// A source of standard normal noise for stochastic sampler steps.
///
/// The samplers never draw from the backend's global RNG, so a seed fixes a
/// run; tests plug in recorded noise to replay diffusers' traces.
pub trait NoiseSource<B: Backend> {
    /// A tensor of i.i.d. `N(0, 1)` values.
    fn gaussian(&mut self, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4>;
}

/// Noise from a seeded `StdRng`, drawn on the host: the same seed gives the
/// same noise on every backend.
#[derive(Debug)]
pub struct SeededNoise {
    rng: StdRng,
}

impl SeededNoise {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl<B: Backend> NoiseSource<B> for SeededNoise {
    fn gaussian(&mut self, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
        let data =
            TensorData::random::<f32, _, _>(shape, Distribution::Normal(0.0, 1.0), &mut self.rng);
        Tensor::from_data(data, device)
    }
}
