//! Super-resolution conditioning: the low-resolution image a
//! super-resolution stage reads beside its sample, upsampled to the stage's
//! size and noise-augmented (Imagen section 2.4; DeepFloyd IF stage II).
//! [`lowres_conditioning`] is the one place this happens, for sampling (the
//! cascade, on the previous stage's output) and for training (on the
//! downsampled target).

use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
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

/// A super-resolution stage's low-resolution input, ready for the network:
/// the noised image and the augmentation level each row is told (IF's
/// `noise_level`, its `class_labels`).
#[derive(Debug, Clone)]
pub struct LowResConditioning<B: Backend> {
    /// The upsampled, noise-augmented image, `[batch, C, H, W]`.
    pub image: Tensor<B, 4>,
    /// The augmentation level of each row, as the network reads it.
    pub noise_level: Vec<f32>,
}

/// Resizes `[batch, C, h, w]` to `height x width` by bilinear interpolation
/// with `align_corners = true` and no antialiasing: what diffusers'
/// `IFSuperResolutionPipeline` does to the previous stage's output. The
/// identity when the size already matches.
pub fn upsample<B: Backend>(x: Tensor<B, 4>, height: usize, width: usize) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    if h == height && w == width {
        return x;
    }
    interpolate(
        x,
        [height, width],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(true),
    )
}

/// Super-resolution conditioning: `lowres` upsampled to `(height, width)`
/// ([`upsample`]), then noised with `noise` to each row's integer level of
/// the `noising` schedule (IF: diffusers' `image_noising_scheduler`, levels
/// 0..1000; Imagen trains on random levels and samples at a fixed one).
///
/// # Shapes
/// - `lowres`: `[batch, C, h, w]`; `noise`: `[batch, C, height, width]`;
///   `levels`: one per row
pub fn lowres_conditioning<B: Backend>(
    noising: &DiscreteSchedule,
    lowres: Tensor<B, 4>,
    (height, width): (usize, usize),
    noise: Tensor<B, 4>,
    levels: &[usize],
) -> LowResConditioning<B> {
    let upsampled = upsample(lowres, height, width);
    LowResConditioning {
        image: add_noise(noising, upsampled, noise, levels),
        noise_level: levels.iter().map(|&l| l as f32).collect(),
    }
}

/// DeepFloyd IF stage II at one `noise_level` for every row:
/// [`lowres_conditioning`] of an image already at the stage's size, with
/// the level the network is told.
pub fn if_noise_augment<B: Backend>(
    noising: &DiscreteSchedule,
    image: Tensor<B, 4>,
    noise: Tensor<B, 4>,
    noise_level: usize,
) -> (Tensor<B, 4>, usize) {
    let [batch, _, h, w] = image.dims();
    let c = lowres_conditioning(noising, image, (h, w), noise, &vec![noise_level; batch]);
    (c.image, noise_level)
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
