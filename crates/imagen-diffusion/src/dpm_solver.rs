//! DPM-Solver++ multistep sampling (Lu et al. 2022,
//! <https://arxiv.org/abs/2211.01095>), as diffusers'
//! `DPMSolverMultistepScheduler` with `algorithm_type = "dpmsolver++"`:
//! first or second order (`midpoint` or `heun`), `final_sigmas_type = "zero"`,
//! optional dynamic thresholding of the predicted `x0`. Deterministic: no
//! noise is drawn.
//!
//! Scalars (sigmas, alphas, log-SNRs, step coefficients) are computed in f32
//! on the host in diffusers' order of operations; tensor work goes through
//! burn. Logs and exponentials are the correctly rounded f32 values (via
//! f64), which torch's scalar `log` matches; its scalar `exp` is off by one
//! ulp in about 1% of arguments.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::config::unsupported;
use crate::scheduler::impl_scheduler;
use crate::timesteps::{check_custom, numpy_arange};
use crate::{
    DiffusionError, DiscreteSchedule, NoiseSource, PredictionType, SchedulerConfig, StepOutput,
    Thresholding, TimestepSpacing, VarianceType,
};

/// diffusers' `solver_type`: the second-order update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SolverType {
    Midpoint,
    Heun,
}

/// diffusers' `DPMSolverMultistepScheduler` (DPM-Solver++, "2M" by default).
///
/// Unlike [`DdpmScheduler`](crate::DdpmScheduler), [`step`](Self::step)
/// takes `&mut self`: a multistep solver remembers the `x0` predictions of
/// the previous steps (as diffusers' `model_outputs`), so the struct holds
/// tensors and is generic over the backend.
///
/// A run visits [`timesteps`](Self::timesteps) in order. It may start at any
/// of them (image-to-image) when no run is in progress; a step at the first
/// timestep always starts a new run; after the last step the history is
/// cleared. `set_timesteps` / `set_custom_timesteps` also clear it.
///
/// ```
/// use imagen_diffusion::{DpmSolverScheduler, SchedulerConfig, TimestepSpacing};
/// let config = SchedulerConfig {
///     timestep_spacing: TimestepSpacing::Linspace, // diffusers' DPM default
///     ..SchedulerConfig::default()
/// };
/// let mut s = DpmSolverScheduler::<burn_flex::Flex>::new(&config).unwrap();
/// s.set_timesteps(25).unwrap();
/// assert_eq!(s.timesteps()[..3], [999, 959, 919]);
/// assert_eq!(s.sigmas().len(), 26);
/// ```
#[derive(Debug, Clone)]
pub struct DpmSolverScheduler<B: Backend> {
    schedule: DiscreteSchedule,
    /// `sqrt((1 - ᾱ) / ᾱ)` per training timestep, f32 as torch computes it.
    sigma_table: Vec<f32>,
    prediction: PredictionType,
    /// `variance_type` is learned / learned_range: the model output carries
    /// a variance half that DPM-Solver ignores.
    learned_variance: bool,
    thresholding: Thresholding,
    order: usize,
    solver: SolverType,
    spacing: TimestepSpacing,
    steps_offset: usize,
    lambda_min_clipped: f64,
    timesteps: Vec<usize>,
    /// The sigma of each timestep, then the final sigma 0.
    sigmas: Vec<f32>,
    /// The thresholded `x0` of the last `order` steps of this run, oldest first.
    model_outputs: Vec<Tensor<B, 4>>,
    /// How many steps of this run could feed a higher-order update (capped at `order`).
    lower_order_nums: usize,
    /// Index into `timesteps` of the next step; `None` when no run is in progress.
    step_index: Option<usize>,
}

impl<B: Backend> DpmSolverScheduler<B> {
    /// Builds the scheduler of a diffusers `scheduler_config.json`.
    ///
    /// Supported: `algorithm_type` `"dpmsolver++"` (diffusers' alias `"deis"`
    /// too), `solver_order` 1 or 2, `solver_type` `"midpoint"` or `"heun"`
    /// (diffusers' aliases `"logrho"`, `"bh1"`, `"bh2"` mean midpoint),
    /// `final_sigmas_type` `"zero"`, no Karras sigmas, every prediction type,
    /// every timestep spacing, `lambda_min_clipped`, dynamic thresholding.
    /// Anything else is an [`DiffusionError::UnsupportedConfig`] naming the
    /// field.
    pub fn new(config: &SchedulerConfig) -> Result<Self, DiffusionError> {
        match config.algorithm_type.as_str() {
            // diffusers registers "deis" as "dpmsolver++".
            "dpmsolver++" | "deis" => {}
            other => {
                return Err(unsupported(
                    "algorithm_type",
                    &format!("{other:?}"),
                    "only \"dpmsolver++\" is supported",
                ));
            }
        }
        if !(1..=2).contains(&config.solver_order) {
            return Err(unsupported(
                "solver_order",
                &config.solver_order.to_string(),
                "supported: 1, 2 (third order is not implemented)",
            ));
        }
        let solver = match config.solver_type.as_str() {
            // diffusers maps the DEIS / UniPC solver types to midpoint.
            "midpoint" | "logrho" | "bh1" | "bh2" => SolverType::Midpoint,
            "heun" => SolverType::Heun,
            other => {
                return Err(unsupported(
                    "solver_type",
                    &format!("{other:?}"),
                    "supported: \"midpoint\", \"heun\"",
                ));
            }
        };
        if config.final_sigmas_type != "zero" {
            return Err(unsupported(
                "final_sigmas_type",
                &format!("{:?}", config.final_sigmas_type),
                "only \"zero\" is supported",
            ));
        }
        let sigma_options = [
            ("use_karras_sigmas", config.use_karras_sigmas),
            ("use_exponential_sigmas", config.use_exponential_sigmas),
            ("use_beta_sigmas", config.use_beta_sigmas),
            ("use_lu_lambdas", config.use_lu_lambdas),
            ("use_flow_sigmas", config.use_flow_sigmas),
            ("use_dynamic_shifting", config.use_dynamic_shifting),
            ("euler_at_final", config.euler_at_final),
        ];
        if let Some((field, _)) = sigma_options.iter().find(|(_, on)| *on) {
            return Err(unsupported(field, "true", "only false is supported"));
        }
        let lambda_min_clipped = config.lambda_min_clipped.unwrap_or(f64::NEG_INFINITY);
        if lambda_min_clipped.is_nan() {
            return Err(unsupported(
                "lambda_min_clipped",
                "NaN",
                "must be a number or -inf",
            ));
        }
        // DPM-Solver has no `clip_sample`.
        let thresholding = crate::ddpm::thresholding_of(config, false)?;
        let schedule = config.schedule()?;
        // diffusers: ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in f32
        // (torch's pow by 0.5 is sqrt).
        let sigma_table = schedule
            .alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect();
        Ok(Self {
            schedule,
            sigma_table,
            prediction: config.prediction_type,
            learned_variance: matches!(
                config.variance_type,
                Some(VarianceType::Learned | VarianceType::LearnedRange)
            ),
            thresholding,
            order: config.solver_order,
            solver,
            spacing: config.timestep_spacing,
            steps_offset: config.steps_offset,
            lambda_min_clipped,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            model_outputs: Vec::new(),
            lower_order_nums: 0,
            step_index: None,
        })
    }

    /// Visits `n` timesteps spaced by the config's `timestep_spacing`, as
    /// DPM-Solver spaces them (which is not DDPM's spacing: `linspace` and
    /// `leading` use `n + 1` points and drop the last, and all three stop at
    /// the last timestep whose log-SNR is above `lambda_min_clipped`). A
    /// leading `steps_offset` of `num_train_timesteps` or more is an error.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError> {
        let num_train = self.schedule.len();
        if n == 0 || n > num_train {
            return Err(unsupported(
                "num_inference_steps",
                &n.to_string(),
                &format!("must be in 1..={num_train} (num_train_timesteps)"),
            ));
        }
        let last = self.last_timestep();
        if last == 0 {
            return Err(unsupported(
                "lambda_min_clipped",
                &self.lambda_min_clipped.to_string(),
                "clips every timestep",
            ));
        }
        let timesteps = match self.spacing {
            TimestepSpacing::Linspace => {
                // np.linspace(0, last - 1, n + 1).round()[::-1][:-1]
                let stop = (last - 1) as f64;
                let step = stop / n as f64;
                (1..=n)
                    .rev()
                    .map(|k| {
                        let v = if k == n { stop } else { k as f64 * step };
                        v.round_ties_even() as usize
                    })
                    .collect()
            }
            TimestepSpacing::Leading => {
                // (np.arange(0, n + 1) * (last // (n + 1)))[::-1][:-1] + steps_offset
                if self.steps_offset >= num_train {
                    return Err(unsupported(
                        "steps_offset",
                        &self.steps_offset.to_string(),
                        &format!("must be below num_train_timesteps = {num_train}"),
                    ));
                }
                let ratio = last / (n + 1);
                (1..=n)
                    .rev()
                    .map(|k| k * ratio + self.steps_offset)
                    .collect()
            }
            TimestepSpacing::Trailing => {
                // np.arange(last, 0, -num_train / n).round() - 1, with numpy's
                // float arange: length ceil(last / ratio), values as
                // `numpy_arange` computes them.
                let step = -(num_train as f64 / n as f64);
                let start = last as f64;
                let len = ((0.0 - start) / step).ceil() as usize;
                numpy_arange(start, step, len)
                    .into_iter()
                    // For some n (61, 103, 121, ... of 1000) rounding makes
                    // numpy's length n + 1, the extra value rounds to 0 and
                    // diffusers visits timestep -1 (np.interp then takes
                    // sigma[0]): one step more than asked, the last two at
                    // the same sigma. Like `spaced_timesteps`, keep the
                    // first n; every list diffusers gets right is identical.
                    .take(n)
                    .map(|v| (v.round_ties_even() as usize).saturating_sub(1))
                    .collect()
            }
        };
        self.use_timesteps(timesteps);
        Ok(())
    }

    /// Visits an explicit descending list (DeepFloyd IF's `smart50` etc.).
    pub fn set_custom_timesteps(&mut self, timesteps: &[usize]) -> Result<(), DiffusionError> {
        check_custom(timesteps, self.schedule.len())?;
        self.use_timesteps(timesteps.to_vec());
        Ok(())
    }

    /// The sigma (`sqrt((1 - ᾱ) / ᾱ)`) of each timestep followed by the final
    /// sigma 0: diffusers' `scheduler.sigmas`, bit for bit.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// Index into [`timesteps`](Self::timesteps) of the next step of the run
    /// in progress (diffusers' `step_index`), `None` when none is.
    pub fn step_index(&self) -> Option<usize> {
        self.step_index
    }

    /// Forgets the run in progress (its `x0` history and position).
    pub fn reset(&mut self) {
        self.model_outputs.clear();
        self.lower_order_nums = 0;
        self.step_index = None;
    }

    /// `num_train_timesteps - searchsorted(flip(lambda_t), lambda_min_clipped)`.
    fn last_timestep(&self) -> usize {
        if self.lambda_min_clipped == f64::NEG_INFINITY {
            return self.schedule.len();
        }
        // lambda_t = log(sqrt(ᾱ)) - log(sqrt(1 - ᾱ)) in f32; torch compares
        // against the threshold cast to the table's dtype.
        let clip = self.lambda_min_clipped as f32;
        let flipped: Vec<f32> = self
            .schedule
            .alphas_cumprod
            .iter()
            .rev()
            .map(|&a| ln(a.sqrt()) - ln((1.0 - a).sqrt()))
            .collect();
        self.schedule.len() - flipped.partition_point(|&l| l < clip)
    }

    fn use_timesteps(&mut self, timesteps: Vec<usize>) {
        // np.interp of the sigma table at integer timesteps is the table
        // entry itself (clamped at the ends: leading spacing with
        // steps_offset can reach num_train_timesteps); then the final sigma
        // ("zero").
        let last = self.sigma_table.len() - 1;
        self.sigmas = timesteps
            .iter()
            .map(|&t| self.sigma_table[t.min(last)])
            .chain([0.0])
            .collect();
        self.timesteps = timesteps;
        self.reset();
    }

    /// Where a run starting at `t` begins (diffusers' `index_for_timestep`:
    /// the second occurrence when `t` is listed twice). diffusers falls back
    /// to the last index for an unknown `t`; this is an error here.
    fn index_for_timestep(&self, t: usize) -> Result<usize, DiffusionError> {
        let mut hits = self
            .timesteps
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s == t)
            .map(|(i, _)| i);
        let first = hits.next().ok_or(DiffusionError::UnknownTimestep(t))?;
        Ok(hits.next().unwrap_or(first))
    }

    /// One DPM-Solver++ step from `sample` at timestep `t` to the next
    /// timestep of the list (sigma 0 after the last one).
    ///
    /// `model_output` has the sample's channels, or twice as many when
    /// `variance_type` is learned / learned_range (the variance half is
    /// ignored). `pred_original_sample` is the (thresholded) `x0` that enters
    /// the solver, diffusers' `model_outputs[-1]`. First order on a run's
    /// first step and on the last step (`final_sigmas_type = "zero"`), and
    /// always with `solver_order = 1`; second order otherwise. `noise` is
    /// never drawn from (the solver is deterministic); it is there so that
    /// every sampler steps alike.
    ///
    /// On error the scheduler's state is unchanged.
    ///
    /// # Shapes
    /// - `model_output`: `[batch, C or 2C, H, W]`, `sample`: `[batch, C, H, W]`
    pub fn step(
        &mut self,
        model_output: Tensor<B, 4>,
        t: usize,
        sample: Tensor<B, 4>,
        _noise: &mut dyn NoiseSource<B>,
    ) -> Result<StepOutput<B>, DiffusionError> {
        if self.timesteps.is_empty() {
            return Err(DiffusionError::TimestepsNotSet);
        }
        let [b, c, h, w] = sample.dims();
        let out_dims = model_output.dims();
        let expected_c = if self.learned_variance { 2 * c } else { c };
        if out_dims != [b, expected_c, h, w] {
            return Err(DiffusionError::ShapeMismatch {
                model_output: out_dims.to_vec(),
                sample: vec![b, c, h, w],
                reason: format!(
                    "expected {expected_c} channels ({} variance)",
                    if self.learned_variance {
                        "learned"
                    } else {
                        "no learned"
                    }
                ),
            });
        }
        let i = match self.step_index {
            Some(i) if self.timesteps.get(i) == Some(&t) => i,
            // A step at the first timestep starts a new run.
            Some(_) if self.timesteps[0] == t => {
                let i = self.index_for_timestep(t)?;
                self.reset();
                i
            }
            Some(_) => return Err(DiffusionError::UnknownTimestep(t)),
            None => self.index_for_timestep(t)?,
        };
        let n = self.timesteps.len();

        // convert_model_output: the thresholded x0 prediction. diffusers
        // hard-codes `model_output[:, :3]` for learned variances (and only for
        // epsilon); keeping the first C channels is the same for IF (C = 3)
        // and is where diffusers' shapes would not fit the sample otherwise.
        let model_output = if self.learned_variance {
            model_output.narrow(1, 0, c)
        } else {
            model_output
        };
        let (alpha_s0, sigma_s0) = alpha_sigma(self.sigmas[i]);
        let x0 = match self.prediction {
            PredictionType::Epsilon => {
                (sample.clone() - model_output * f64::from(sigma_s0)) / f64::from(alpha_s0)
            }
            PredictionType::Sample => model_output,
            PredictionType::VPrediction => {
                sample.clone() * f64::from(alpha_s0) - model_output * f64::from(sigma_s0)
            }
        };
        let x0 = self.thresholding.apply(x0);

        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let lambda_t = ln(alpha_t) - ln(sigma_t);
        let lambda_s0 = ln(alpha_s0) - ln(sigma_s0);
        let h = lambda_t - lambda_s0;
        // alpha_t * (exp(-h) - 1); at sigma_t = 0, h = inf and this is -alpha_t.
        let phi = alpha_t * (exp(-h) - 1.0);
        // final_sigmas_type "zero" makes the last step first order whatever
        // lower_order_final says (diffusers' `lower_order_final` flag).
        let first_order = self.order == 1 || self.lower_order_nums < 1 || i == n - 1;
        let prev_sample = if first_order {
            sample * f64::from(sigma_t / sigma_s0) - x0.clone() * f64::from(phi)
        } else {
            let (alpha_s1, sigma_s1) = alpha_sigma(self.sigmas[i - 1]);
            let lambda_s1 = ln(alpha_s1) - ln(sigma_s1);
            let h_0 = lambda_s0 - lambda_s1;
            let r0 = h_0 / h;
            let m1 = self
                .model_outputs
                .last()
                .expect("lower_order_nums >= 1 means a previous x0")
                .clone();
            let d1 = (x0.clone() - m1) * f64::from(1.0 / r0);
            let base = sample * f64::from(sigma_t / sigma_s0) - x0.clone() * f64::from(phi);
            match self.solver {
                SolverType::Midpoint => base - d1 * f64::from(0.5 * phi),
                SolverType::Heun => base + d1 * f64::from(alpha_t * ((exp(-h) - 1.0) / h + 1.0)),
            }
        };

        if self.model_outputs.len() == self.order {
            self.model_outputs.remove(0);
        }
        self.model_outputs.push(x0.clone());
        self.lower_order_nums = (self.lower_order_nums + 1).min(self.order);
        if i + 1 == n {
            self.reset();
        } else {
            self.step_index = Some(i + 1);
        }
        Ok(StepOutput {
            prev_sample,
            pred_original_sample: x0,
        })
    }
}

impl_scheduler!([B: Backend] DpmSolverScheduler<B>);

/// diffusers' `_sigma_to_alpha_sigma_t`: `alpha = 1 / (sigma² + 1) ** 0.5`,
/// `sigma_t = sigma * alpha`, in f32.
fn alpha_sigma(sigma: f32) -> (f32, f32) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    (alpha, sigma * alpha)
}

/// Correctly rounded f32 `ln` (torch's scalar `log` on f32 matches it).
fn ln(x: f32) -> f32 {
    f64::from(x).ln() as f32
}

/// Correctly rounded f32 `exp` (torch's scalar `exp` is within one ulp).
fn exp(x: f32) -> f32 {
    f64::from(x).exp() as f32
}
