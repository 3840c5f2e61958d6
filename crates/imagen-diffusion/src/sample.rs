//! The sampling loop: any [`Denoiser`], any [`Scheduler`], optional
//! classifier-free guidance, seeded noise, progress reports.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::{
    DiffusionError, GuidanceBatch, HighNoiseGuidance, NoiseSource, Scheduler,
    classifier_free_guidance,
};

/// A network that predicts what its scheduler expects (eps, v or x0) from a
/// noisy sample. The U-Net crate implements it; so can a user's own model.
pub trait Denoiser<B: Backend> {
    /// Whatever the network conditions on (text embeddings, low-res image...).
    /// With guidance, it must describe the doubled batch `[uncond; cond]`
    /// (build it with [`GuidanceBatch::guidance_pair`]).
    type Cond;

    /// Predicts for every sample of `x_t` at the integer timestep `t`.
    ///
    /// # Shapes
    /// - `x_t`: `[batch, C, H, W]` → `[batch, C or 2C, H, W]`
    fn predict(&self, x_t: Tensor<B, 4>, t: usize, cond: &Self::Cond) -> Tensor<B, 4>;

    /// The conditional prediction alone, for a `cond` that describes the
    /// doubled batch `[uncond; cond]`: what guidance at scale 1 gives, used
    /// at the steps outside [`SampleOptions::guidance_interval`]. This default
    /// runs [`Denoiser::predict`] on `[x_t; x_t]` and keeps the second half;
    /// override it to run the conditional rows only (half the work).
    ///
    /// # Shapes
    /// - `x_t`: `[batch, C, H, W]` → `[batch, C or 2C, H, W]`
    fn predict_conditional(&self, x_t: Tensor<B, 4>, t: usize, cond: &Self::Cond) -> Tensor<B, 4> {
        let batch = x_t.dims()[0];
        self.predict(x_t.doubled(), t, cond).conditional_rows(batch)
    }
}

/// Where the loop is, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Steps done so far (1-based after a step).
    pub step: usize,
    /// Steps in total.
    pub total: usize,
    /// The timestep just processed.
    pub timestep: usize,
}

/// How [`sample`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    /// Classifier-free guidance scale; `None` runs the network once per step
    /// on the batch as it is.
    pub guidance_scale: Option<f64>,
    /// Guide only at the timesteps `[low, high]` (inclusive), as in
    /// Kynkäänniemi et al. 2024, "Applying guidance in a limited interval";
    /// elsewhere the step takes the conditional prediction alone (scale 1,
    /// through [`Denoiser::predict_conditional`]). `None` guides every step.
    pub guidance_interval: Option<[usize; 2]>,
    /// Another scale at the noisiest timesteps (inside the interval, if one
    /// is set); `None` keeps `guidance_scale` throughout.
    pub high_noise_guidance: Option<HighNoiseGuidance>,
    /// Check every intermediate sample for NaN / inf (one scalar read back
    /// from the device per step, the loop's only host round-trip).
    pub check_finite: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            guidance_scale: None,
            guidance_interval: None,
            high_noise_guidance: None,
            check_finite: true,
        }
    }
}

impl SampleOptions {
    /// The guidance scale at timestep `t`: `None` without guidance, 1 outside
    /// the guidance interval, the high-noise scale from its timestep up.
    pub fn guidance_at(&self, t: usize) -> Option<f64> {
        let scale = self.guidance_scale?;
        Some(match (self.guidance_interval, self.high_noise_guidance) {
            (Some([low, high]), _) if !(low..=high).contains(&t) => 1.0,
            (_, Some(h)) if t >= h.from => h.scale,
            _ => scale,
        })
    }
}

/// Runs the reverse process from `x_t`, the initial noise (or a noised image
/// for image-to-image), through every timestep of `scheduler`.
///
/// With guidance, each step calls the network once on `[x; x]` and combines
/// the two halves with [`classifier_free_guidance`] (outside a guidance
/// interval, once on the conditional half). Deterministic for a
/// given noise source on a given backend.
pub fn sample<B: Backend, D: Denoiser<B>, S: Scheduler<B> + ?Sized>(
    denoiser: &D,
    scheduler: &mut S,
    x_t: Tensor<B, 4>,
    cond: &D::Cond,
    options: SampleOptions,
    noise: &mut dyn NoiseSource<B>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Tensor<B, 4>, DiffusionError> {
    sample_with(
        denoiser,
        scheduler,
        x_t,
        cond,
        options,
        noise,
        &mut |_, x, _| x,
        progress,
    )
}

/// After-step hook of [`sample_with`]: gets the timestep the step went to
/// (`None` after the last step, where the sample is the final output), the new
/// sample and the noise source, and returns the sample to continue from.
pub type StepHook<'a, B> =
    dyn FnMut(Option<usize>, Tensor<B, 4>, &mut dyn NoiseSource<B>) -> Tensor<B, 4> + 'a;

/// [`sample`] with a hook run after every step, e.g. to re-impose the known
/// region of an image when inpainting ([`crate::inpaint_hook`]).
#[allow(clippy::too_many_arguments)]
pub fn sample_with<B: Backend, D: Denoiser<B>, S: Scheduler<B> + ?Sized>(
    denoiser: &D,
    scheduler: &mut S,
    x_t: Tensor<B, 4>,
    cond: &D::Cond,
    options: SampleOptions,
    noise: &mut dyn NoiseSource<B>,
    hook: &mut StepHook<'_, B>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Tensor<B, 4>, DiffusionError> {
    let channels = x_t.dims()[1];
    let timesteps = scheduler.timesteps().to_vec();
    if timesteps.is_empty() {
        return Err(DiffusionError::TimestepsNotSet);
    }
    if let Some([low, high]) = options.guidance_interval
        && low > high
    {
        return Err(DiffusionError::UnsupportedConfig {
            field: "guidance_interval",
            value: format!("[{low}, {high}]"),
            reason: "the low timestep must not exceed the high one".into(),
        });
    }
    let mut x = x_t;
    for (i, &t) in timesteps.iter().enumerate() {
        let output = match options.guidance_at(t) {
            // Scale 1 is the conditional prediction: skip the other half.
            Some(1.0) => denoiser.predict_conditional(x.clone(), t, cond),
            Some(scale) => {
                let doubled = x.clone().doubled();
                classifier_free_guidance(denoiser.predict(doubled, t, cond), scale, channels)
            }
            None => denoiser.predict(x.clone(), t, cond),
        };
        x = scheduler.step(output, t, x, noise)?.prev_sample;
        x = hook(timesteps.get(i + 1).copied(), x, noise);
        if options.check_finite && !all_finite(x.clone()) {
            return Err(DiffusionError::NonFinite {
                step: i,
                timestep: t,
            });
        }
        progress(Progress {
            step: i + 1,
            total: timesteps.len(),
            timestep: t,
        });
    }
    Ok(x)
}

fn all_finite<B: Backend>(x: Tensor<B, 4>) -> bool {
    use burn::tensor::ElementConversion;
    !x.clone()
        .is_nan()
        .bool_or(x.is_inf())
        .any()
        .into_scalar()
        .elem::<bool>()
}
