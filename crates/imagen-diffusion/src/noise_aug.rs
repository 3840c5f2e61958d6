//! Noise-conditioning augmentation of the low-resolution image fed to a
//! super-resolution stage (Imagen section 2.4; DeepFloyd IF stage II).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::{DiscreteSchedule, Schedule};

/// `sqrt(ac[t]) x + sqrt(1 - ac[t]) noise` per sample, diffusers' `add_noise`.
///
/// # Shapes
/// - `original`, `noise`: `[batch, C, H, W]`; `timesteps`: one per sample
pub fn add_noise<B: Backend>(
    schedule: &DiscreteSchedule,
    original: Tensor<B, 4>,
    noise: Tensor<B, 4>,
    timesteps: &[usize],
) -> Tensor<B, 4> {
    let device = original.device();
    let ac = |t: usize| schedule.alphas_cumprod[t];
    let coeff = |f: &dyn Fn(f32) -> f32| {
        let v: Vec<f32> = timesteps.iter().map(|&t| f(ac(t))).collect();
        Tensor::<B, 4>::from_data(TensorData::new(v, [timesteps.len(), 1, 1, 1]), &device)
    };
    let sqrt_alpha = coeff(&|a| a.sqrt());
    let sqrt_one_minus = coeff(&|a| (1.0 - a).sqrt());
    original * sqrt_alpha + noise * sqrt_one_minus
}

/// DeepFloyd IF stage II: noises the upscaled stage-I image at the integer
/// `noise_level` (0..1000) of its own noising scheduler (a DDPM cosine
/// schedule, diffusers' `image_noising_scheduler`), and returns it with the
/// level the network is told (`class_labels`).
pub fn if_noise_augment<B: Backend>(
    noising: &DiscreteSchedule,
    image: Tensor<B, 4>,
    noise: Tensor<B, 4>,
    noise_level: usize,
) -> (Tensor<B, 4>, usize) {
    let batch = image.dims()[0];
    (
        add_noise(noising, image, noise, &vec![noise_level; batch]),
        noise_level,
    )
}

/// Imagen / imagen-pytorch: noises the low-resolution image at continuous
/// augmentation level `level` in `[0, 1]` of `schedule`,
/// `alpha(level) x + sigma(level) noise`, and returns it with the level.
pub fn imagen_noise_augment<B: Backend, S: Schedule>(
    schedule: &S,
    image: Tensor<B, 4>,
    noise: Tensor<B, 4>,
    level: f64,
) -> (Tensor<B, 4>, f64) {
    let (alpha, sigma) = schedule.alpha_sigma(level);
    (image * alpha + noise * sigma, level)
}
