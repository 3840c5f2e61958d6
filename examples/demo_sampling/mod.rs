//! Base-stage sampling defaults of the demo cascade (`models/demo`), shared by
//! `demo_cascade`, which writes them into the manifest, and the trainer's
//! preview cascade, so that a change of default is made once.

use std::fmt::Display;
use std::str::FromStr;

use imagen::diffusion::{HighNoiseGuidance, PredictionType, SchedulerConfig, TimestepSpacing};

/// DPM-Solver++ steps.
pub const BASE_STEPS: usize = 25;
/// Classifier-free guidance scale: 3 led 4 on all 220 evaluation prompts at
/// two seeds (`docs/evaluation.md`).
pub const BASE_GUIDANCE: f64 = 3.0;
/// Guidance 5 from timestep 600 up, where the layout is decided: over 1,760
/// prompt-seed pairs it passes 116 prompts that constant guidance 3 fails and
/// fails 83 it passes (`docs/evaluation.md`).
pub const BASE_HIGH_NOISE_GUIDANCE: HighNoiseGuidance = HighNoiseGuidance {
    from: 600,
    scale: 5.0,
};
/// No guidance below timestep 200, where it changed no prompt of 1,760 in
/// sum (16 won, 16 lost at constant guidance 3): the last 5 of 25 steps run
/// the conditional half alone, a tenth less work.
pub const BASE_GUIDANCE_INTERVAL: [usize; 2] = [200, 999];
/// Where the sampler's timesteps start: a `v`-predicting stage at the last
/// training timestep, where the noise really is pure; a noise-predicting
/// one a stride lower, since its `x0` there divides by `sqrt(alpha_bar)` =
/// 5e-5. Started at the top, the demo's former noise-predicting SR stage
/// darkened and blued every background (gray 128 -> (100, 103, 114)) and
/// lost 33 of the base's 106 passes on the 220 evaluation prompts; started
/// a stride lower it lost 11 (`docs/evaluation.md`).
pub fn timestep_spacing(prediction: PredictionType) -> TimestepSpacing {
    match prediction {
        PredictionType::Epsilon => TimestepSpacing::Leading,
        PredictionType::VPrediction | PredictionType::Sample => TimestepSpacing::Trailing,
    }
}
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

/// `A,B` as two values, for the CLIs; `form` (e.g. `FROM,SCALE`) names
/// them in the error.
fn parse_pair<A: FromStr, B: FromStr>(arg: &str, form: &str) -> Result<(A, B), String>
where
    A::Err: Display,
    B::Err: Display,
{
    let (a, b) = arg
        .split_once(',')
        .ok_or_else(|| format!("`{arg}` is not {form}"))?;
    let a = a.trim().parse().map_err(|e| format!("`{a}`: {e}"))?;
    let b = b.trim().parse().map_err(|e| format!("`{b}`: {e}"))?;
    Ok((a, b))
}

/// `FROM,SCALE` (e.g. `600,5`) as a [`HighNoiseGuidance`], for the CLIs.
pub fn parse_high_noise_guidance(arg: &str) -> Result<HighNoiseGuidance, String> {
    let (from, scale) = parse_pair(arg, "FROM,SCALE")?;
    Ok(HighNoiseGuidance { from, scale })
}

/// `LOW,HIGH` (e.g. `200,999`) as a guidance interval of timesteps.
pub fn parse_guidance_interval(arg: &str) -> Result<[usize; 2], String> {
    let (low, high) = parse_pair(arg, "LOW,HIGH")?;
    Ok([low, high])
}
