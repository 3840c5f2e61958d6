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
//! - [`DdpmScheduler`]: `set_timesteps`, `set_custom_timesteps`
//!   ([`if_timesteps`]), `step`.
//! - [`Thresholding`]: static clipping and Imagen's dynamic thresholding.
#![warn(missing_docs)]

mod config;
mod ddpm;
mod error;
mod if_timesteps;
mod noise;
mod schedule;
mod thresholding;
mod timesteps;

pub use config::{PredictionType, SchedulerConfig, TimestepSpacing, VarianceType};
pub use ddpm::DdpmScheduler;
pub use error::DiffusionError;
pub use if_timesteps::{
    FAST27, SMART27, SMART50, SMART100, SMART185, SUPER27, SUPER40, SUPER100, if_timesteps,
};
pub use noise::{NoiseSource, SeededNoise};
pub use schedule::{BetaSchedule, ContinuousSchedule, DiscreteSchedule, Schedule};
pub use thresholding::{Thresholding, dynamic_threshold, threshold_scale};
pub use timesteps::spaced_timesteps;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// What a sampler step returns (diffusers' `prev_sample`, `pred_original_sample`).
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// The sample at the previous (less noisy) timestep.
    pub prev_sample: Tensor<B, 4>,
    /// The predicted clean sample after thresholding.
    pub pred_original_sample: Tensor<B, 4>,
}
