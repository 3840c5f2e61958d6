//! `TrainConfig`: everything that decides a training run, saved with every
//! checkpoint so that a resume with other settings is refused.

use imagen_diffusion::{PredictionType, SchedulerConfig};
use serde::{Deserialize, Serialize};

use crate::{TimestepSampling, TrainError};

/// Which cascade stage is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageKind {
    /// Text → image at `resolution`.
    Base,
    /// Super-resolution from `lowres` pixels: the input is the target
    /// downsampled, then upsampled back and noised at a random augmentation
    /// level in `0..=max_noise_level` (Imagen's recipe) by
    /// [`imagen_diffusion::lowres_conditioning`], as the cascade does.
    SuperResolution {
        /// Side of the low-resolution input.
        lowres: usize,
        /// Largest augmentation level (a timestep of the noise schedule).
        max_noise_level: usize,
    },
}

/// Learning-rate shape after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// Constant.
    Constant,
    /// Cosine decay to `min_lr` at the last step.
    Cosine {
        /// Final learning rate.
        min_lr: f64,
    },
}

/// A training run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The stage.
    pub stage: StageKind,
    /// Training resolution.
    pub resolution: usize,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimiser step.
    pub grad_accumulation: usize,
    /// Optimiser steps in total.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Schedule after warm-up.
    pub lr_schedule: LrSchedule,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// AdamW beta 1.
    pub beta_1: f64,
    /// AdamW beta 2.
    pub beta_2: f64,
    /// AdamW epsilon.
    pub epsilon: f64,
    /// Clip gradients to this global L2 norm.
    pub grad_clip_norm: Option<f64>,
    /// EMA decay (Imagen: 0.9999).
    pub ema_decay: f64,
    /// Steps before the EMA starts following the weights.
    pub ema_start_step: usize,
    /// Probability of replacing the text by the empty caption's embedding
    /// (classifier-free guidance training; Imagen: 0.1).
    pub cond_drop_prob: f64,
    /// What the network learns to predict (its scheduler's
    /// `prediction_type`); saved as `"eps"`, `"v"` or `"x0"`.
    #[serde(with = "objective_name")]
    pub objective: PredictionType,
    /// Min-SNR-gamma loss weighting (`None`: plain MSE).
    pub min_snr_gamma: Option<f64>,
    /// `lambda` of Improved DDPM's hybrid loss `L_simple + lambda * L_vlb`,
    /// used when the U-Net predicts a learned-range variance (twice the image
    /// channels, as IF's stages do); default 0.001 (Nichol & Dhariwal). The
    /// variational bound trains the variance only: the mean gets no gradient
    /// from it.
    #[serde(default = "default_vlb_weight")]
    pub vlb_weight: f64,
    /// Noise schedule of the forward process (a diffusers scheduler config).
    pub noise_schedule: SchedulerConfig,
    /// How training timesteps are drawn (default uniform).
    #[serde(default)]
    pub timestep_sampling: TimestepSampling,
    /// "Offset noise" (Guttenberg 2023, diffusers' `--noise_offset`): each
    /// example's noise gains this times one Gaussian draw per channel,
    /// constant over the image, so the noise's mean no longer tells the
    /// image's mean and the text must set it (default 0: off).
    #[serde(default)]
    pub noise_offset: f64,
    /// Give the U-Net the text padding mask.
    pub text_mask: bool,
    /// Random horizontal flips.
    pub random_flip: bool,
    /// Seed of data order, noise, timesteps and dropout.
    pub seed: u64,
}

impl TrainConfig {
    /// Sensible defaults for `stage` at `resolution`: batch 8, AdamW 1e-4
    /// with 1000 warm-up steps, EMA 0.9999, drop 0.1, eps, cosine schedule.
    pub fn new(stage: StageKind, resolution: usize) -> Self {
        Self {
            stage,
            resolution,
            batch_size: 8,
            grad_accumulation: 1,
            steps: 10_000,
            lr: 1e-4,
            warmup_steps: 1000,
            lr_schedule: LrSchedule::Constant,
            weight_decay: 0.0,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            grad_clip_norm: Some(1.0),
            ema_decay: 0.9999,
            ema_start_step: 0,
            cond_drop_prob: 0.1,
            objective: PredictionType::Epsilon,
            min_snr_gamma: None,
            vlb_weight: default_vlb_weight(),
            noise_schedule: serde_json::from_str(r#"{"beta_schedule": "squaredcos_cap_v2"}"#)
                .expect("valid"),
            timestep_sampling: TimestepSampling::Uniform,
            noise_offset: 0.0,
            text_mask: true,
            random_flip: false,
            seed: 0,
        }
    }

    /// Checks values a run cannot start with.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.batch_size == 0 || self.grad_accumulation == 0 {
            return bad("batch_size and grad_accumulation must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.cond_drop_prob) {
            return bad(format!(
                "cond_drop_prob {} is not in [0, 1]",
                self.cond_drop_prob
            ));
        }
        if !(self.vlb_weight >= 0.0 && self.vlb_weight.is_finite()) {
            return bad(format!(
                "vlb_weight {} is not a finite number >= 0",
                self.vlb_weight
            ));
        }
        if !(self.noise_offset >= 0.0 && self.noise_offset.is_finite()) {
            return bad(format!(
                "noise_offset {} is not a finite number >= 0",
                self.noise_offset
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!("ema_decay {} is not in [0, 1)", self.ema_decay));
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            return bad(format!("lr {} must be positive", self.lr));
        }
        self.timestep_sampling
            .validate(self.noise_schedule.num_train_timesteps)?;
        if let StageKind::SuperResolution {
            lowres,
            max_noise_level,
        } = self.stage
        {
            if lowres == 0 || lowres >= self.resolution {
                return bad(format!(
                    "lowres {lowres} must be in 1..{} (the resolution)",
                    self.resolution
                ));
            }
            if max_noise_level >= self.noise_schedule.num_train_timesteps {
                return bad(format!(
                    "max_noise_level {max_noise_level} is outside the schedule's {} steps",
                    self.noise_schedule.num_train_timesteps
                ));
            }
        }
        Ok(())
    }

    /// The learning rate at optimiser step `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.lr_schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine { min_lr } => {
                let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
                min_lr + 0.5 * (self.lr - min_lr) * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }
}

fn default_vlb_weight() -> f64 {
    0.001
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let mut c = TrainConfig::new(StageKind::Base, 64);
        c.steps = 110;
        c.warmup_steps = 10;
        c.lr_schedule = LrSchedule::Cosine { min_lr: 0.0 };
        assert!((c.lr_at(0) - 1e-5).abs() < 1e-12);
        assert!((c.lr_at(9) - 1e-4).abs() < 1e-12);
        assert!((c.lr_at(60) - 5e-5).abs() < 1e-9);
        assert!(c.lr_at(110) < 1e-12);
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = TrainConfig::new(
            StageKind::SuperResolution {
                lowres: 64,
                max_noise_level: 250,
            },
            64,
        );
        assert!(c.validate().unwrap_err().to_string().contains("lowres"));
        c.stage = StageKind::Base;
        c.cond_drop_prob = 2.0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("cond_drop_prob")
        );
    }
}

/// The training objective's names in a saved config: `"eps"`, `"v"`,
/// `"x0"` (as before the objective became [`PredictionType`]); diffusers'
/// `"epsilon"`, `"v_prediction"` and `"sample"` are read too.
mod objective_name {
    use imagen_diffusion::PredictionType;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(p: &PredictionType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match p {
            PredictionType::Epsilon => "eps",
            PredictionType::VPrediction => "v",
            PredictionType::Sample => "x0",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PredictionType, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "eps" | "epsilon" => Ok(PredictionType::Epsilon),
            "v" | "v_prediction" => Ok(PredictionType::VPrediction),
            "x0" | "sample" => Ok(PredictionType::Sample),
            other => Err(D::Error::unknown_variant(
                other,
                &["eps", "v", "x0", "epsilon", "v_prediction", "sample"],
            )),
        }
    }
}
