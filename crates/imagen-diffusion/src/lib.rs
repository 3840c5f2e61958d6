//! Noise schedules and samplers for Imagen-style pixel-space diffusion on burn.
//!
//! Imagen (Saharia et al. 2022, <https://arxiv.org/abs/2205.11487>) samples
//! each cascade stage with classifier-free guidance and dynamic thresholding;
//! DeepFloyd IF uses diffusers' DDPM scheduler with a cosine schedule,
//! learned-range variance and hand-tuned timestep lists. This crate mirrors
//! diffusers' schedulers numerically (traces replayed in `tests/`) and knows
//! nothing about network architectures.
//!
//! - [`SchedulerConfig`]: a diffusers `scheduler_config.json` as it is.
//! - [`DiscreteSchedule`] (bit-exact f32 tables), [`ContinuousSchedule`]
//!   (Imagen's log-SNR schedules), both [`Schedule`]s.
//! - Samplers, all [`Scheduler`]s (`set_timesteps`, `set_custom_timesteps`
//!   with [`if_timesteps`], `set_thresholding`, `step`): [`DdpmScheduler`],
//!   [`DdimScheduler`], [`DpmSolverScheduler`] (DPM-Solver++ multistep,
//!   orders 1-2; `step` takes `&mut self`).
//! - [`Thresholding`]: static clipping and Imagen's dynamic thresholding;
//!   [`classifier_free_guidance`] on one batched forward pass, whose
//!   `[uncond; cond]` rows [`GuidanceBatch`] builds and cuts.
//! - Super-resolution conditioning: [`lowres_conditioning`] upsamples the
//!   low-resolution image and noise-augments it at integer levels (IF's
//!   `noise_level`), for the cascade and for training alike;
//!   [`imagen_noise_augment`] at a continuous level.
//! - Training: [`NoiseLevels`] (`q_sample`, eps / x0 / v conversions, losses
//!   with [`LossWeighting`] min-SNR-gamma or P2) for each [`PredictionType`].
//! - [`sample`]: the loop over a [`Denoiser`] and a [`Scheduler`], with
//!   seeded noise ([`SeededNoise`]), progress callback and NaN detection.
//!
//! # Host round-trips
//! Tensor work stays on the device. Per step the host computes the scalar
//! coefficients from the f32 tables (no read-back), uploads the step's
//! Gaussian noise when the sampler draws any ([`SeededNoise`] draws on the
//! host so that one seed gives the same noise on every backend; implement
//! [`NoiseSource`] to draw on the device instead), and [`sample`] reads back
//! one bool to detect NaN / inf ([`SampleOptions::check_finite`]), so that a
//! failure names its step. Dynamic thresholding's percentile is a device-side
//! sort.
#![warn(missing_docs)]

mod config;
mod ddim;
mod ddpm;
mod dpm_solver;
mod editing;
mod error;
mod guidance;
mod if_timesteps;
mod noise;
mod noise_aug;
mod objective;
mod sample;
mod schedule;
mod scheduler;
mod thresholding;
mod timesteps;
mod vlb;

pub use config::{
    MAX_TRAIN_TIMESTEPS, PredictionType, SchedulerConfig, TimestepSpacing, VarianceType,
};
pub use ddim::DdimScheduler;
pub use ddpm::{DdpmScheduler, learned_range_log_variance};
pub use dpm_solver::DpmSolverScheduler;
pub use editing::{TailScheduler, img2img_timesteps, inpaint_hook};
pub use error::DiffusionError;
pub use guidance::{GuidanceBatch, HighNoiseGuidance, classifier_free_guidance};
pub use if_timesteps::{
    FAST27, SMART27, SMART50, SMART100, SMART185, SUPER27, SUPER40, SUPER100, if_timesteps,
};
pub use noise::{NoiseSource, SeededNoise};
pub use noise_aug::{
    LowResConditioning, add_noise, if_noise_augment, imagen_noise_augment, lowres_conditioning,
    upsample,
};
pub use objective::{LossWeighting, NoiseLevels};
pub use sample::{Denoiser, Progress, SampleOptions, StepHook, sample, sample_with};
pub use schedule::{BetaSchedule, ContinuousSchedule, DiscreteSchedule, Schedule};
pub use scheduler::Scheduler;
pub use thresholding::{Thresholding, dynamic_threshold, threshold_scale};
pub use timesteps::spaced_timesteps;
pub use vlb::vlb_per_sample;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The training objective, now [`PredictionType`]: `Eps` is
/// `PredictionType::Epsilon`, `X0` is `Sample`, `V` is `VPrediction`.
#[deprecated(
    since = "0.1.0",
    note = "use PredictionType (Eps -> Epsilon, X0 -> Sample, V -> VPrediction)"
)]
pub type Objective = PredictionType;

/// What a sampler step returns (diffusers' `prev_sample`, `pred_original_sample`).
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// The sample at the previous (less noisy) timestep.
    pub prev_sample: Tensor<B, 4>,
    /// The predicted clean sample after thresholding.
    pub pred_original_sample: Tensor<B, 4>,
}
