//! Per-stage sampling settings: the defaults a cascade ships with, and the
//! per-call overrides of a request.

use imagen_diffusion::{HighNoiseGuidance, Thresholding};
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
        /// Re-derive the noise from the thresholded x0 (diffusers'
        /// `use_clipped_model_output`); see
        /// [`imagen_diffusion::DdimScheduler::with_clipped_model_output`].
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        clipped_model_output: bool,
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
    /// Guide only at timesteps `[low, high]`, the conditional prediction
    /// alone elsewhere (see [`imagen_diffusion::SampleOptions`]); `None`
    /// guides every step.
    #[serde(default)]
    pub guidance_interval: Option<[usize; 2]>,
    /// Another guidance scale at the noisiest timesteps (see
    /// [`HighNoiseGuidance`]); `None` keeps `guidance_scale` throughout.
    #[serde(default)]
    pub high_noise_guidance: Option<HighNoiseGuidance>,
}

/// Per-call changes to a stage's [`StageSettings`]; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageOverrides {
    /// Sampler steps.
    pub steps: Option<usize>,
    /// Guidance scale, constant over every step: it also drops the default's
    /// guidance interval and high-noise guidance, unless those are given too.
    pub guidance_scale: Option<f64>,
    /// Sampler.
    pub sampler: Option<SamplerKind>,
    /// Thresholding instead of the scheduler config's.
    pub thresholding: Option<Thresholding>,
    /// Augmentation level (super-resolution stages).
    pub noise_level: Option<usize>,
    /// Guidance interval instead of the default's.
    pub guidance_interval: Option<[usize; 2]>,
    /// High-noise guidance instead of the default's.
    pub high_noise_guidance: Option<HighNoiseGuidance>,
    /// Seed of this stage's noise (default: the request's seed + stage index).
    pub seed: Option<u64>,
    /// An explicit timestep list instead of `steps` evenly spaced ones, e.g.
    /// DeepFloyd IF's `smart50` ([`imagen_diffusion::if_timesteps`]); DDPM and
    /// DPM-Solver++ take one, DDIM does not.
    pub timesteps: Option<Vec<usize>>,
}

impl StageSettings {
    /// Whether the stage runs classifier-free guidance at any step.
    pub fn guided(&self) -> bool {
        self.guidance_scale > 1.0 || self.high_noise_guidance.is_some_and(|h| h.scale > 1.0)
    }

    /// These settings with `o`'s values where it has them.
    pub fn with(self, o: &StageOverrides) -> Self {
        // A per-call scale is constant: the default's schedule goes with it.
        let keep = o.guidance_scale.is_none();
        Self {
            steps: o.steps.unwrap_or(self.steps),
            guidance_scale: o.guidance_scale.unwrap_or(self.guidance_scale),
            sampler: o.sampler.unwrap_or(self.sampler),
            noise_level: o.noise_level.or(self.noise_level),
            guidance_interval: o
                .guidance_interval
                .or(self.guidance_interval.filter(|_| keep)),
            high_noise_guidance: o
                .high_noise_guidance
                .or(self.high_noise_guidance.filter(|_| keep)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StageSettings {
        StageSettings {
            steps: 25,
            guidance_scale: 1.0,
            sampler: SamplerKind::DpmSolver,
            noise_level: None,
            guidance_interval: None,
            high_noise_guidance: None,
        }
    }

    #[test]
    fn high_noise_guidance_alone_makes_a_stage_guided() {
        assert!(!base().guided());
        let high = HighNoiseGuidance {
            from: 600,
            scale: 5.0,
        };
        let o = StageOverrides {
            high_noise_guidance: Some(high),
            guidance_interval: Some([200, 999]),
            ..Default::default()
        };
        let s = base().with(&o);
        assert!(s.guided());
        assert_eq!(s.high_noise_guidance, Some(high));
        assert_eq!(s.guidance_interval, Some([200, 999]));

        // A scale alone means that scale at every step.
        let constant = StageOverrides {
            guidance_scale: Some(4.0),
            ..Default::default()
        };
        assert_eq!(s.with(&constant).high_noise_guidance, None);
        assert_eq!(s.with(&constant).guidance_interval, None);
        assert_eq!(s.with(&StageOverrides::default()), s);
    }

    #[test]
    fn manifests_without_the_guidance_schedule_fields_still_load() {
        let s: StageSettings = serde_json::from_str(
            r#"{"steps": 25, "guidance_scale": 3.0, "sampler": {"kind": "dpm_solver"}}"#,
        )
        .unwrap();
        assert_eq!(s.guidance_interval, None);
        assert_eq!(s.high_noise_guidance, None);
    }

    #[test]
    fn ddim_without_clipped_model_output_loads_and_saves_as_before() {
        let old = r#"{"kind":"ddim","eta":0.0}"#;
        let k: SamplerKind = serde_json::from_str(old).unwrap();
        let plain = SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: false,
        };
        assert_eq!(k, plain);
        assert_eq!(serde_json::to_string(&plain).unwrap(), old);
        let clipped = SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: true,
        };
        let json = serde_json::to_string(&clipped).unwrap();
        assert_eq!(serde_json::from_str::<SamplerKind>(&json).unwrap(), clipped);
    }
}
