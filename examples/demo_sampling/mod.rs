//! The demo cascade's sampling defaults, read from where they live: the
//! shipped `models/demo` (`manifest.json` for each stage's steps, guidance,
//! sampler and augmentation level; each stage's `scheduler_config.json` for
//! its thresholding and timestep spacing). `demo_cascade` writes them back
//! when it reassembles the cascade, the trainer's preview samples with the
//! base stage's, and `evaluate` borrows the base stage's dynamic
//! thresholding; none of them repeats a value. Why the values are what they
//! are: `docs/evaluation.md`.

use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use imagen::diffusion::{HighNoiseGuidance, PredictionType, SchedulerConfig, TimestepSpacing};
use imagen::pipeline::{Manifest, StageSettings};

/// One stage of the shipped demo cascade: its sampling defaults and its
/// sampler's scheduler config.
pub struct DemoStage {
    /// `defaults` of the stage in `manifest.json`.
    pub defaults: StageSettings,
    /// The stage's `scheduler_config.json`.
    pub scheduler: SchedulerConfig,
    /// Super-resolution: the `noising_scheduler` config.
    pub noising: Option<SchedulerConfig>,
}

/// The shipped demo cascade's stages, base first (`models/demo`).
pub fn demo_stages() -> std::io::Result<Vec<DemoStage>> {
    let dir = imagen::demo_model_dir();
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json"))?)?;
    let config = |relative: &str| {
        SchedulerConfig::from_file(dir.join(Path::new(relative))).map_err(std::io::Error::other)
    };
    manifest
        .stages
        .iter()
        .map(|stage| {
            Ok(DemoStage {
                defaults: stage.defaults,
                scheduler: config(&stage.scheduler)?,
                noising: stage.noising_scheduler.as_deref().map(config).transpose()?,
            })
        })
        .collect()
}

/// Where the sampler's timesteps start: a `v`-predicting stage at the last
/// training timestep, where the noise really is pure; a noise-predicting
/// one a stride lower, since its `x0` there divides by `sqrt(alpha_bar)` =
/// 5e-5. Started at the top, the demo's former noise-predicting SR stage
/// darkened and blued every background (gray 128 -> (100, 103, 114)) and
/// lost 33 of the base's 106 passes on the 220 evaluation prompts; started
/// a stride lower it lost 11 (`docs/evaluation.md`). A rule rather than a
/// value: the manifest holds one prediction type per stage, the trainer's
/// preview and `demo_cascade` may use the other.
pub fn timestep_spacing(prediction: PredictionType) -> TimestepSpacing {
    match prediction {
        PredictionType::Epsilon => TimestepSpacing::Leading,
        PredictionType::VPrediction | PredictionType::Sample => TimestepSpacing::Trailing,
    }
}

/// Gives `scheduler` the thresholding of `from` (a demo stage's config):
/// Imagen's dynamic thresholding with IF's quantile, and the stage's bound.
pub fn copy_thresholding(from: &SchedulerConfig, scheduler: &mut SchedulerConfig) {
    scheduler.thresholding = from.thresholding;
    scheduler.dynamic_thresholding_ratio = from.dynamic_thresholding_ratio;
    scheduler.sample_max_value = from.sample_max_value;
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
