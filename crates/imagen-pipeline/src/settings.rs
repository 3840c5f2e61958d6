//! Per-stage sampling settings: the defaults a cascade ships with, and the
//! per-call overrides of a request.

use imagen_diffusion::Thresholding;
use serde::{Deserialize, Serialize};

/// Which reverse-diffusion sampler a stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SamplerKind {
    /// Ancestral DDPM (DeepFloyd IF's choice).
    Ddpm,
    /// DDIM with stochasticity `eta` (0: deterministic).
    Ddim {
        /// 0 deterministic, 1 DDPM-like.
        eta: f64,
    },
    /// DPM-Solver++ (2M), good in 20-30 steps.
    DpmSolver,
}

/// The settings one stage samples with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageSettings {
    /// Number of sampler steps.
    pub steps: usize,
    /// Classifier-free guidance scale; `<= 1` runs without guidance.
    pub guidance_scale: f64,
    /// The sampler.
    pub sampler: SamplerKind,
    /// Super-resolution stages: the noise-conditioning augmentation level
    /// (a timestep of the noising schedule, IF: 250 of 1000).
    #[serde(default)]
    pub noise_level: Option<usize>,
}

/// Per-call changes to a stage's [`StageSettings`]; `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageOverrides {
    /// Sampler steps.
    pub steps: Option<usize>,
    /// Guidance scale.
    pub guidance_scale: Option<f64>,
    /// Sampler.
    pub sampler: Option<SamplerKind>,
    /// Thresholding instead of the scheduler config's.
    pub thresholding: Option<Thresholding>,
    /// Augmentation level (super-resolution stages).
    pub noise_level: Option<usize>,
    /// Seed of this stage's noise (default: the request's seed + stage index).
    pub seed: Option<u64>,
}

impl StageSettings {
    /// These settings with `o`'s values where it has them.
    pub fn with(self, o: &StageOverrides) -> Self {
        Self {
            steps: o.steps.unwrap_or(self.steps),
            guidance_scale: o.guidance_scale.unwrap_or(self.guidance_scale),
            sampler: o.sampler.unwrap_or(self.sampler),
            noise_level: o.noise_level.or(self.noise_level),
        }
    }
}
