//! Image editing with a trained sampler: image-to-image (start part-way from
//! a noised image) and inpainting (re-impose the known region every step).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::{
    DiffusionError, DiscreteSchedule, NoiseSource, Scheduler, StepOutput, Thresholding, add_noise,
};

/// The tail of `timesteps` (descending) that image-to-image runs at
/// `strength` in `[0, 1]`: the last `round_down(len * strength)` of them, as
/// diffusers' IF img2img pipelines (`strength = 1` is plain generation).
pub fn img2img_timesteps(timesteps: &[usize], strength: f64) -> &[usize] {
    let n = timesteps.len();
    let keep = ((n as f64 * strength.clamp(0.0, 1.0)) as usize).min(n);
    &timesteps[n - keep..]
}

/// A scheduler that visits only the tail of another's timesteps, for
/// image-to-image: the first timestep it reports is where the noised image
/// enters. Works with every scheduler of this crate (each finds its place in
/// its own list from the timestep).
#[derive(Debug)]
pub struct TailScheduler<'a, S: ?Sized> {
    inner: &'a mut S,
    skip: usize,
}

impl<'a, S: ?Sized> TailScheduler<'a, S> {
    /// Skips the first `skip` timesteps of `inner`.
    pub fn new(inner: &'a mut S, skip: usize) -> Self {
        Self { inner, skip }
    }
}

/// Everything but [`Scheduler::timesteps`] is the inner scheduler's.
impl<B: Backend, S: Scheduler<B> + ?Sized> Scheduler<B> for TailScheduler<'_, S> {
    fn schedule(&self) -> &DiscreteSchedule {
        self.inner.schedule()
    }

    fn thresholding(&self) -> Thresholding {
        self.inner.thresholding()
    }

    fn set_thresholding(&mut self, thresholding: Thresholding) {
        self.inner.set_thresholding(thresholding);
    }

    fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError> {
        self.inner.set_timesteps(n)
    }

    fn set_custom_timesteps(&mut self, timesteps: &[usize]) -> Result<(), DiffusionError> {
        self.inner.set_custom_timesteps(timesteps)
    }

    fn timesteps(&self) -> &[usize] {
        let all = self.inner.timesteps();
        &all[self.skip.min(all.len())..]
    }

    fn step(
        &mut self,
        model_output: Tensor<B, 4>,
        t: usize,
        sample: Tensor<B, 4>,
        noise: &mut dyn NoiseSource<B>,
    ) -> Result<StepOutput<B>, DiffusionError> {
        self.inner.step(model_output, t, sample, noise)
    }
}

/// A [`crate::sample_with`] hook for inpainting: after each step, pixels where
/// `mask` is 0 are replaced by `known` noised to the step's new timestep
/// (exactly `known` after the last step); where `mask` is 1 the sample is
/// kept. `mask` is `[batch or 1, 1, H, W]` in `[0, 1]`.
pub fn inpaint_hook<'a, B: Backend>(
    schedule: &'a DiscreteSchedule,
    known: Tensor<B, 4>,
    mask: Tensor<B, 4>,
) -> impl FnMut(Option<usize>, Tensor<B, 4>, &mut dyn NoiseSource<B>) -> Tensor<B, 4> + 'a {
    move |next, x, noise| {
        let dims = known.dims();
        let target = match next {
            Some(t) => {
                let eps = noise.gaussian(dims, &known.device());
                add_noise(schedule, known.clone(), eps, &vec![t; dims[0]])
            }
            None => known.clone(),
        };
        x * mask.clone() + target * (mask.clone().neg() + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BetaSchedule, SeededNoise};
    use burn::tensor::Distribution;
    use burn_flex::Flex;

    #[test]
    fn strength_keeps_the_last_steps() {
        let t = [750, 500, 250, 0];
        assert_eq!(img2img_timesteps(&t, 1.0), &t);
        assert_eq!(img2img_timesteps(&t, 0.5), &[250, 0]);
        assert_eq!(img2img_timesteps(&t, 0.6), &[250, 0]);
        assert!(img2img_timesteps(&t, 0.0).is_empty());
    }

    #[test]
    fn inpainting_keeps_the_known_region_exactly_at_the_end() {
        let device = Default::default();
        let schedule = DiscreteSchedule::new(BetaSchedule::SquaredCosCapV2, 1000, 0.0, 0.0);
        let known =
            Tensor::<Flex, 4>::random([1, 3, 4, 4], Distribution::Uniform(-1.0, 1.0), &device);
        let mask = Tensor::<Flex, 4>::zeros([1, 1, 4, 4], &device).slice_assign(
            [0..1, 0..1, 0..2, 0..4],
            Tensor::ones([1, 1, 2, 4], &device),
        );
        let mut hook = inpaint_hook(&schedule, known.clone(), mask);
        let mut noise = SeededNoise::new(0);
        let x = Tensor::<Flex, 4>::full([1, 3, 4, 4], 5.0, &device);
        let mid = hook(Some(500), x.clone(), &mut noise);
        let end = hook(None, x, &mut noise);
        // Masked rows (0, 1) keep the sample; the rest is the image.
        let top: Vec<f32> = end
            .clone()
            .slice([0..1, 0..3, 0..2, 0..4])
            .into_data()
            .to_vec()
            .unwrap();
        assert!(top.iter().all(|&v| v == 5.0));
        let bottom = end.slice([0..1, 0..3, 2..4, 0..4]);
        assert_eq!(
            bottom.into_data(),
            known.clone().slice([0..1, 0..3, 2..4, 0..4]).into_data()
        );
        // Mid-way the known region is noised, not the image itself.
        let diff: f32 = (mid.slice([0..1, 0..3, 2..4, 0..4])
            - known.slice([0..1, 0..3, 2..4, 0..4]))
        .abs()
        .max()
        .into_scalar();
        assert!(diff > 0.01);
    }
}
