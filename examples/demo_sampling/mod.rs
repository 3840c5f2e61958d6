//! Base-stage sampling defaults of the demo cascade (`models/demo`), shared by
//! `demo_cascade`, which writes them into the manifest, and the trainer's
//! preview cascade, so that a change of default is made once.

use imagen::diffusion::{SchedulerConfig, TimestepSpacing};

/// DPM-Solver++ steps.
pub const BASE_STEPS: usize = 25;
/// Classifier-free guidance scale: 3 led 4 on all 220 evaluation prompts at
/// two seeds (`docs/evaluation.md`).
pub const BASE_GUIDANCE: f64 = 3.0;
/// Start at the last training timestep, where the noise really is pure.
pub const TIMESTEP_SPACING: TimestepSpacing = TimestepSpacing::Trailing;
/// Upper bound of the dynamic threshold in the base stage.
pub const BASE_SAMPLE_MAX: f64 = 1.5;
/// Quantile of `|x0|` the dynamic threshold clips to (Imagen, IF: 0.95).
pub const DYNAMIC_RATIO: f64 = 0.95;

/// Imagen's dynamic thresholding of the predicted `x0` with IF's settings:
/// clip to the [`DYNAMIC_RATIO`] quantile of `|x0|`, taken between 1 and `sample_max_value`,
/// and rescale (a bound of 1 is plain clipping to `[-1, 1]`).
pub fn dynamic_thresholding(scheduler: &mut SchedulerConfig, sample_max_value: f64) {
    scheduler.thresholding = true;
    scheduler.dynamic_thresholding_ratio = DYNAMIC_RATIO;
    scheduler.sample_max_value = sample_max_value;
}
