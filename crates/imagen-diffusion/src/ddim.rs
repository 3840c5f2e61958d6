//! DDIM (Song et al. 2021), as diffusers' `DDIMScheduler`: deterministic at
//! `eta = 0`, DDPM-like noise at `eta = 1`.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::config::unsupported;
use crate::scheduler::impl_scheduler;
use crate::timesteps::spaced_timesteps;
use crate::{
    DiffusionError, DiscreteSchedule, NoiseSource, PredictionType, SchedulerConfig, StepOutput,
    Thresholding,
};

/// diffusers' `DDIMScheduler`.
///
/// ```
/// use imagen_diffusion::{DdimScheduler, SchedulerConfig};
/// let mut s = DdimScheduler::new(&SchedulerConfig::default())?.with_eta(0.0)?;
/// s.set_timesteps(50)?;
/// assert_eq!(s.timesteps().len(), 50);
/// # Ok::<(), imagen_diffusion::DiffusionError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    schedule: DiscreteSchedule,
    prediction: PredictionType,
    thresholding: Thresholding,
    spacing: crate::TimestepSpacing,
    steps_offset: usize,
    final_alpha_cumprod: f32,
    eta: f64,
    clipped_model_output: bool,
    timesteps: Vec<usize>,
    step_ratio: Option<usize>,
}

impl DdimScheduler {
    /// Builds the scheduler of a diffusers `scheduler_config.json`; `eta` is 0
    /// and the clipped model output is off, as in diffusers.
    pub fn new(config: &SchedulerConfig) -> Result<Self, DiffusionError> {
        let schedule = config.schedule()?;
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            schedule.alphas_cumprod[0]
        };
        Ok(Self {
            prediction: config.prediction_type,
            thresholding: crate::ddpm::thresholding_of(config, true)?,
            spacing: config.timestep_spacing,
            steps_offset: config.steps_offset,
            final_alpha_cumprod,
            eta: 0.0,
            clipped_model_output: false,
            timesteps: Vec::new(),
            step_ratio: None,
            schedule,
        })
    }

    /// Sets `eta`: 0 is the deterministic DDIM, 1 matches DDPM's variance.
    /// Negative or non-finite values are an error.
    pub fn with_eta(mut self, eta: f64) -> Result<Self, DiffusionError> {
        check_eta(eta)?;
        self.eta = eta;
        Ok(self)
    }

    /// Re-derives the noise from the thresholded (or clipped) x0 before the
    /// step, as GLIDE does: diffusers' `use_clipped_model_output=True`.
    ///
    /// By default (`false`, diffusers' default) the step combines the
    /// thresholded x0 with the noise of the raw model output, so whatever
    /// thresholding takes off x0 is dropped from the sample at every step;
    /// with guidance and dynamic thresholding, objects shrink and fade (the
    /// demo base: 60/220 prompts at 25 steps, 34 at 50, against 102 and 105
    /// re-derived; `docs/evaluation.md`).
    ///
    /// ```
    /// use imagen_diffusion::{DdimScheduler, SchedulerConfig};
    /// let s = DdimScheduler::new(&SchedulerConfig::default())?.with_clipped_model_output(true);
    /// assert!(s.clipped_model_output());
    /// # Ok::<(), imagen_diffusion::DiffusionError>(())
    /// ```
    pub fn with_clipped_model_output(mut self, clipped: bool) -> Self {
        self.clipped_model_output = clipped;
        self
    }

    /// Whether the step re-derives the noise from the thresholded x0.
    pub fn clipped_model_output(&self) -> bool {
        self.clipped_model_output
    }

    /// Visits `n` timesteps spaced by the config's `timestep_spacing`.
    ///
    /// As in diffusers, the step goes from `t` to `t - T / n` whatever the
    /// spacing, so only `leading` lands exactly on the next listed timestep.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError> {
        self.timesteps = spaced_timesteps(self.spacing, self.schedule.len(), n, self.steps_offset)?;
        self.step_ratio = Some(self.schedule.len() / n);
        Ok(())
    }

    /// DDIM steps from `t` to `t - T / n` and takes no timestep list (nor
    /// does diffusers' `DDIMScheduler`): always an error; DDPM and
    /// DPM-Solver++ take one.
    pub fn set_custom_timesteps(&mut self, _timesteps: &[usize]) -> Result<(), DiffusionError> {
        Err(unsupported(
            "timesteps",
            "a custom list",
            "DDIM samples evenly spaced steps; use DDPM or DPM-Solver++",
        ))
    }

    /// One DDIM step from `sample` at timestep `t`.
    ///
    /// # Shapes
    /// - `model_output`, `sample`: `[batch, C, H, W]`
    pub fn step<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        t: usize,
        sample: Tensor<B, 4>,
        noise: &mut dyn NoiseSource<B>,
    ) -> Result<StepOutput<B>, DiffusionError> {
        let ratio = self.step_ratio.ok_or(DiffusionError::TimestepsNotSet)?;
        let dims = sample.dims();
        if model_output.dims() != dims {
            return Err(DiffusionError::ShapeMismatch {
                model_output: model_output.dims().to_vec(),
                sample: dims.to_vec(),
                reason: "DDIM expects the sample's shape".into(),
            });
        }
        if t >= self.schedule.len() {
            return Err(DiffusionError::UnknownTimestep(t));
        }
        let ac = &self.schedule.alphas_cumprod;
        let alpha_prod_t = ac[t];
        let alpha_prod_t_prev = t
            .checked_sub(ratio)
            .map_or(self.final_alpha_cumprod, |p| ac[p]);
        let beta_prod_t = 1.0 - alpha_prod_t;
        let (sa, sb) = (
            f64::from(alpha_prod_t.sqrt()),
            f64::from(beta_prod_t.sqrt()),
        );

        let (x0, eps) = match self.prediction {
            PredictionType::Epsilon => (
                (sample.clone() - model_output.clone() * sb) / sa,
                model_output,
            ),
            PredictionType::Sample => {
                let eps = (sample.clone() - model_output.clone() * sa) / sb;
                (model_output, eps)
            }
            PredictionType::VPrediction => (
                sample.clone() * sa - model_output.clone() * sb,
                model_output * sa + sample.clone() * sb,
            ),
        };
        let x0 = self.thresholding.apply(x0);
        let eps = if self.clipped_model_output {
            (sample - x0.clone() * sa) / sb
        } else {
            eps
        };

        let beta_prod_t_prev = 1.0 - alpha_prod_t_prev;
        let variance = (beta_prod_t_prev / beta_prod_t) * (1.0 - alpha_prod_t / alpha_prod_t_prev);
        let std_dev_t = (self.eta as f32) * variance.sqrt();
        // (1 - ᾱ_prev - σ²) is >= 0 in exact arithmetic but can round below
        // 0 in f32 at eta = 1 where ᾱ_t is tiny (diffusers then gives NaN);
        // clamping changes nothing where it is >= 0.
        let direction_scale = (1.0 - alpha_prod_t_prev - std_dev_t * std_dev_t).max(0.0);
        let direction = eps * f64::from(direction_scale.sqrt());
        let mut prev_sample = x0.clone() * f64::from(alpha_prod_t_prev.sqrt()) + direction;
        if self.eta > 0.0 {
            let z = noise.gaussian(dims, &prev_sample.device());
            prev_sample = prev_sample + z * f64::from(std_dev_t);
        }
        Ok(StepOutput {
            prev_sample,
            pred_original_sample: x0,
        })
    }
}

impl_scheduler!([] DdimScheduler);

/// `eta` must be a finite non-negative number.
fn check_eta(eta: f64) -> Result<(), DiffusionError> {
    if eta.is_finite() && eta >= 0.0 {
        Ok(())
    } else {
        Err(unsupported(
            "eta",
            &eta.to_string(),
            "must be finite and >= 0",
        ))
    }
}
