//! The sampler contract: [`Scheduler`], what every reverse-diffusion sampler
//! of this crate offers (diffusers' `set_timesteps`, then `step`), so that a
//! pipeline builds any of them, sets its timesteps and thresholding, and
//! samples with it through one `Box<dyn Scheduler<B>>`.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::{DiffusionError, DiscreteSchedule, NoiseSource, StepOutput, Thresholding};

/// A reverse-diffusion sampler over a discrete training schedule.
///
/// The life of one: build it from a [`crate::SchedulerConfig`], optionally
/// override its [`Thresholding`], set the timesteps to visit (a step count,
/// or an explicit list such as IF's `smart50`), then call
/// [`step`](Self::step) at each timestep in order ([`crate::sample`] does).
///
/// [`DdpmScheduler`](crate::DdpmScheduler),
/// [`DdimScheduler`](crate::DdimScheduler) and
/// [`DpmSolverScheduler`](crate::DpmSolverScheduler) implement it, and also
/// have every method as an inherent one, so calling them on a concrete
/// scheduler needs no import of this trait.
pub trait Scheduler<B: Backend> {
    /// The training tables (betas, `alphas_cumprod`) the sampler steps on.
    fn schedule(&self) -> &DiscreteSchedule;

    /// The rule applied to the predicted `x0` at each step.
    fn thresholding(&self) -> Thresholding;

    /// Overrides the thresholding rule (e.g. dynamic at high guidance).
    fn set_thresholding(&mut self, thresholding: Thresholding);

    /// Visits `n` timesteps, spaced as the config's `timestep_spacing` says.
    fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError>;

    /// Visits an explicit descending list (DeepFloyd IF's `smart50` etc.);
    /// an error for samplers that only step evenly (DDIM).
    fn set_custom_timesteps(&mut self, timesteps: &[usize]) -> Result<(), DiffusionError>;

    /// The timesteps to visit, descending.
    fn timesteps(&self) -> &[usize];

    /// One step from `sample` at timestep `t` to the next listed timestep;
    /// `&mut` because multistep solvers keep history.
    ///
    /// # Shapes
    /// - `model_output`: `[batch, C or 2C, H, W]`, `sample`: `[batch, C, H, W]`
    fn step(
        &mut self,
        model_output: Tensor<B, 4>,
        t: usize,
        sample: Tensor<B, 4>,
        noise: &mut dyn NoiseSource<B>,
    ) -> Result<StepOutput<B>, DiffusionError>;
}

/// Gives one of this crate's schedulers the accessors every scheduler has
/// (over its `schedule`, `thresholding` and `timesteps` fields), as inherent
/// methods, and implements [`Scheduler`] by the inherent methods of the
/// same names. Written once here so that the three schedulers keep only
/// what differs between them: construction, `set_timesteps`,
/// `set_custom_timesteps` and `step`.
///
/// `impl_scheduler!([] DdpmScheduler)`, or with the type's own generics
/// first: `impl_scheduler!([B: Backend] DpmSolverScheduler<B>)`.
macro_rules! impl_scheduler {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> $ty {
            /// The training tables.
            pub fn schedule(&self) -> &$crate::DiscreteSchedule {
                &self.schedule
            }

            /// The thresholding rule applied to the predicted `x0`.
            pub fn thresholding(&self) -> $crate::Thresholding {
                self.thresholding
            }

            /// Overrides the thresholding rule (e.g. dynamic at high guidance).
            pub fn set_thresholding(&mut self, thresholding: $crate::Thresholding) {
                self.thresholding = thresholding;
            }

            /// The timesteps to visit, descending; empty before the
            /// timesteps are set, unless the scheduler starts from its full
            /// training list (DDPM).
            pub fn timesteps(&self) -> &[usize] {
                &self.timesteps
            }
        }

        impl<B: burn::tensor::backend::Backend> $crate::Scheduler<B> for $ty {
            fn schedule(&self) -> &$crate::DiscreteSchedule {
                <$ty>::schedule(self)
            }

            fn thresholding(&self) -> $crate::Thresholding {
                <$ty>::thresholding(self)
            }

            fn set_thresholding(&mut self, thresholding: $crate::Thresholding) {
                <$ty>::set_thresholding(self, thresholding)
            }

            fn set_timesteps(&mut self, n: usize) -> Result<(), $crate::DiffusionError> {
                <$ty>::set_timesteps(self, n)
            }

            fn set_custom_timesteps(
                &mut self,
                timesteps: &[usize],
            ) -> Result<(), $crate::DiffusionError> {
                <$ty>::set_custom_timesteps(self, timesteps)
            }

            fn timesteps(&self) -> &[usize] {
                <$ty>::timesteps(self)
            }

            fn step(
                &mut self,
                model_output: burn::tensor::Tensor<B, 4>,
                t: usize,
                sample: burn::tensor::Tensor<B, 4>,
                noise: &mut dyn $crate::NoiseSource<B>,
            ) -> Result<$crate::StepOutput<B>, $crate::DiffusionError> {
                <$ty>::step(self, model_output, t, sample, noise)
            }
        }
    };
}

pub(crate) use impl_scheduler;
