//! DDPM ancestral sampling (Ho et al. 2020), as diffusers' `DDPMScheduler`,
//! with DeepFloyd IF's learned-range variance and dynamic thresholding.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::config::unsupported;
use crate::scheduler::impl_scheduler;
use crate::timesteps::{check_custom, spaced_timesteps};
use crate::{
    DiffusionError, DiscreteSchedule, NoiseSource, PredictionType, SchedulerConfig, StepOutput,
    Thresholding, VarianceType,
};

/// The x0 bound a diffusers config asks for: dynamic thresholding when
/// `thresholding`, else, for schedulers that have `clip_sample` (DDPM, DDIM;
/// diffusers' default true), clipping when it is on.
pub(crate) fn thresholding_of(
    config: &SchedulerConfig,
    has_clip_sample: bool,
) -> Result<Thresholding, DiffusionError> {
    Ok(if config.thresholding {
        // A ratio of 0 takes the smallest |x0| as the threshold, which the
        // clamp to at least 1 turns into plain clipping to [-1, 1]: not the
        // dynamic thresholding the config asks for, so a broken config.
        let ratio = config.dynamic_thresholding_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(unsupported(
                "dynamic_thresholding_ratio",
                &ratio.to_string(),
                "must be in (0, 1]",
            ));
        }
        if config.sample_max_value.is_nan() || config.sample_max_value < 1.0 {
            return Err(unsupported(
                "sample_max_value",
                &config.sample_max_value.to_string(),
                "must be >= 1",
            ));
        }
        Thresholding::Dynamic {
            ratio: config.dynamic_thresholding_ratio,
            max: config.sample_max_value,
        }
    } else if has_clip_sample && config.clip_sample.unwrap_or(true) {
        // A NaN or negative bound would reach a clamp with min > max.
        if config.clip_sample_range.is_nan() || config.clip_sample_range <= 0.0 {
            return Err(unsupported(
                "clip_sample_range",
                &config.clip_sample_range.to_string(),
                "must be > 0",
            ));
        }
        Thresholding::Static {
            range: config.clip_sample_range,
        }
    } else {
        Thresholding::None
    })
}

/// diffusers' `DDPMScheduler`.
///
/// ```
/// use imagen_diffusion::{DdpmScheduler, SchedulerConfig};
/// let mut s = DdpmScheduler::new(&SchedulerConfig::default()).unwrap();
/// s.set_timesteps(25).unwrap();
/// assert_eq!(s.timesteps()[..3], [960, 920, 880]);
/// ```
#[derive(Debug, Clone)]
pub struct DdpmScheduler {
    schedule: DiscreteSchedule,
    prediction: PredictionType,
    variance: VarianceType,
    thresholding: Thresholding,
    spacing: crate::TimestepSpacing,
    steps_offset: usize,
    timesteps: Vec<usize>,
    /// Whether `set_timesteps` has run: the previous timestep then comes from
    /// the list, otherwise it is `t - 1` (full-length ancestral sampling).
    respaced: bool,
}

impl DdpmScheduler {
    /// Builds the scheduler of a diffusers `scheduler_config.json`.
    pub fn new(config: &SchedulerConfig) -> Result<Self, DiffusionError> {
        let thresholding = thresholding_of(config, true)?;
        let variance = config.variance_type.unwrap_or(VarianceType::FixedSmall);
        if variance == VarianceType::Learned {
            return Err(unsupported(
                "variance_type",
                "\"learned\"",
                "supported: fixed_small, fixed_small_log, fixed_large, fixed_large_log, learned_range",
            ));
        }
        Ok(Self {
            schedule: config.schedule()?,
            prediction: config.prediction_type,
            variance,
            thresholding,
            spacing: config.timestep_spacing,
            steps_offset: config.steps_offset,
            timesteps: (0..config.num_train_timesteps).rev().collect(),
            respaced: false,
        })
    }

    /// Visits `n` timesteps spaced by the config's `timestep_spacing`.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError> {
        self.timesteps = spaced_timesteps(self.spacing, self.schedule.len(), n, self.steps_offset)?;
        self.respaced = true;
        Ok(())
    }

    /// Visits an explicit descending list (DeepFloyd IF's `smart50` etc.).
    pub fn set_custom_timesteps(&mut self, timesteps: &[usize]) -> Result<(), DiffusionError> {
        check_custom(timesteps, self.schedule.len())?;
        self.timesteps = timesteps.to_vec();
        self.respaced = true;
        Ok(())
    }

    /// The timestep after `t` in the list, `None` after the last one.
    fn previous_timestep(&self, t: usize) -> Result<Option<usize>, DiffusionError> {
        if !self.respaced {
            return Ok(t.checked_sub(1));
        }
        let i = self
            .timesteps
            .iter()
            .position(|&s| s == t)
            .ok_or(DiffusionError::UnknownTimestep(t))?;
        Ok(self.timesteps.get(i + 1).copied())
    }

    /// One reverse step from `sample` at timestep `t` to the previous timestep.
    ///
    /// `model_output` has the sample's channels, or twice as many when the
    /// variance is `learned_range` (the second half is the variance).
    /// Noise is drawn from `noise` only when `t > 0`.
    ///
    /// # Shapes
    /// - `model_output`: `[batch, C or 2C, H, W]`, `sample`: `[batch, C, H, W]`
    pub fn step<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        t: usize,
        sample: Tensor<B, 4>,
        noise: &mut dyn NoiseSource<B>,
    ) -> Result<StepOutput<B>, DiffusionError> {
        let [b, c, h, w] = sample.dims();
        let out_dims = model_output.dims();
        let learned = self.variance == VarianceType::LearnedRange;
        let expected_c = if learned { 2 * c } else { c };
        if out_dims != [b, expected_c, h, w] {
            return Err(DiffusionError::ShapeMismatch {
                model_output: out_dims.to_vec(),
                sample: vec![b, c, h, w],
                reason: format!(
                    "expected {expected_c} channels ({:?} variance)",
                    self.variance
                ),
            });
        }
        if t >= self.schedule.len() {
            return Err(DiffusionError::UnknownTimestep(t));
        }
        let prev = self.previous_timestep(t)?;
        let (model_output, predicted_variance) = if learned {
            let mut halves = model_output.split(c, 1).into_iter();
            (halves.next().expect("two halves"), halves.next())
        } else {
            (model_output, None)
        };

        // Scalars in f32, in diffusers' order of operations.
        let ac = &self.schedule.alphas_cumprod;
        let alpha_prod_t = ac[t];
        let alpha_prod_t_prev = prev.map_or(1.0, |p| ac[p]);
        let beta_prod_t = 1.0 - alpha_prod_t;
        let beta_prod_t_prev = 1.0 - alpha_prod_t_prev;
        let current_alpha_t = alpha_prod_t / alpha_prod_t_prev;
        let current_beta_t = 1.0 - current_alpha_t;

        let x0 = match self.prediction {
            PredictionType::Epsilon => {
                (sample.clone() - model_output * f64::from(beta_prod_t.sqrt()))
                    / f64::from(alpha_prod_t.sqrt())
            }
            PredictionType::Sample => model_output,
            PredictionType::VPrediction => {
                sample.clone() * f64::from(alpha_prod_t.sqrt())
                    - model_output * f64::from(beta_prod_t.sqrt())
            }
        };
        let x0 = self.thresholding.apply(x0);

        let x0_coeff = alpha_prod_t_prev.sqrt() * current_beta_t / beta_prod_t;
        let sample_coeff = current_alpha_t.sqrt() * beta_prod_t_prev / beta_prod_t;
        let mut prev_sample = x0.clone() * f64::from(x0_coeff) + sample * f64::from(sample_coeff);

        if t > 0 {
            let device = prev_sample.device();
            let z = noise.gaussian([b, c, h, w], &device);
            let beta_tilde = (beta_prod_t_prev / beta_prod_t * current_beta_t).max(1e-20);
            let scaled = match self.variance {
                VarianceType::FixedSmall => z * f64::from(beta_tilde.sqrt()),
                VarianceType::FixedSmallLog => z * f64::from((0.5 * beta_tilde.ln()).exp()),
                VarianceType::FixedLarge => z * f64::from(current_beta_t.sqrt()),
                VarianceType::FixedLargeLog => z * f64::from((0.5 * current_beta_t.ln()).exp()),
                VarianceType::LearnedRange => {
                    let v = predicted_variance.expect("split above");
                    let log_var =
                        learned_range_log_variance(v, beta_tilde.ln(), current_beta_t.ln());
                    (log_var * 0.5).exp() * z
                }
                VarianceType::Learned => unreachable!("rejected in new"),
            };
            prev_sample = prev_sample + scaled;
        }
        Ok(StepOutput {
            prev_sample,
            pred_original_sample: x0,
        })
    }
}

impl_scheduler!([] DdpmScheduler);

/// Improved DDPM's learned-range variance (Nichol & Dhariwal 2021), as IF
/// stage I/II predict it in their second half of output channels: the network
/// output `v` in `[-1, 1]` interpolates the log variance between the posterior
/// `log beta_tilde` (`min_log`) and `log beta` (`max_log`).
pub fn learned_range_log_variance<B: Backend>(
    v: Tensor<B, 4>,
    min_log: f32,
    max_log: f32,
) -> Tensor<B, 4> {
    let frac = (v + 1.0) / 2.0;
    frac.clone() * f64::from(max_log) + (frac.neg() + 1.0) * f64::from(min_log)
}
