//! `SchedulerConfig`: a diffusers `scheduler_config.json`, as it is.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{BetaSchedule, DiffusionError, DiscreteSchedule};

/// What the network predicts (diffusers' `prediction_type`): what the
/// samplers convert from and, in training, the objective the loss targets
/// ([`crate::NoiseLevels`]). The one enum for the idea; the former
/// `Objective` (Eps, X0, V) and `imagen_train::TrainObjective` (Eps, V) are
/// its deprecated aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The noise `eps`.
    Epsilon,
    /// The clean sample `x0` (diffusers: `"sample"`).
    Sample,
    /// `v = alpha eps - sigma x0`.
    VPrediction,
}

/// DDPM's posterior variance (diffusers' `variance_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceType {
    /// `beta_tilde_t`, the true posterior variance.
    FixedSmall,
    /// `beta_tilde_t` through its log.
    FixedSmallLog,
    /// `beta_t`.
    FixedLarge,
    /// `beta_t` through its log.
    FixedLargeLog,
    /// The network's second half of channels is the variance.
    Learned,
    /// The network's second half interpolates log `beta_tilde` .. log `beta` (IF).
    LearnedRange,
}

/// How `set_timesteps(n)` spaces `n` of the training timesteps.
///
/// `Trailing` and `Linspace` start at the last training timestep, where a
/// schedule such as `squaredcos_cap_v2` leaves almost no signal
/// (`alpha_bar` 2.4e-9). A `v` or `x0` prediction is well defined there;
/// one recovered from a predicted noise divides by `sqrt(alpha_bar)`, so an
/// `epsilon` model's first step guesses the image's colours. `Leading`
/// starts one stride lower, which such a model should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    /// `k * (T / n)` counted from 0, plus `steps_offset`.
    Leading,
    /// Counted down from `T - 1` in steps of `T / n`.
    Trailing,
    /// `linspace(0, T - 1, n)`, rounded.
    Linspace,
}

/// A diffusers `scheduler_config.json` (DDPM, DDIM or DPM-Solver multistep):
/// same keys and defaults. Keys this crate does not use are ignored; values
/// it cannot honour are rejected, naming the key, when a scheduler is built
/// from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    /// `_class_name`, e.g. `"DDPMScheduler"`.
    #[serde(rename = "_class_name", default)]
    pub class_name: Option<String>,
    /// Training timesteps `T`.
    #[serde(default = "d::num_train_timesteps")]
    pub num_train_timesteps: usize,
    /// First beta of the linear schedules.
    #[serde(default = "d::beta_start")]
    pub beta_start: f64,
    /// Last beta of the linear schedules.
    #[serde(default = "d::beta_end")]
    pub beta_end: f64,
    /// The beta schedule.
    #[serde(default = "d::beta_schedule")]
    pub beta_schedule: BetaSchedule,
    /// Explicit betas, overriding `beta_schedule`.
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    /// What the network predicts.
    #[serde(default = "d::prediction_type")]
    pub prediction_type: PredictionType,
    /// DDPM variance; `null` for schedulers without one.
    #[serde(default)]
    pub variance_type: Option<VarianceType>,
    /// Clip the predicted x0 to `[-clip_sample_range, clip_sample_range]`.
    #[serde(default)]
    pub clip_sample: Option<bool>,
    /// Range of `clip_sample`.
    #[serde(default = "d::one")]
    pub clip_sample_range: f64,
    /// Dynamic thresholding of the predicted x0 (Imagen).
    #[serde(default)]
    pub thresholding: bool,
    /// Percentile of |x0| used as the threshold.
    #[serde(default = "d::ratio")]
    pub dynamic_thresholding_ratio: f64,
    /// Upper bound of the threshold.
    #[serde(default = "d::one")]
    pub sample_max_value: f64,
    /// How `set_timesteps` spaces the steps.
    #[serde(default = "d::spacing")]
    pub timestep_spacing: TimestepSpacing,
    /// Added to leading-spaced timesteps.
    #[serde(default)]
    pub steps_offset: usize,
    /// Rescale betas to zero terminal SNR (not supported).
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
    /// DDIM: use alpha_cumprod = 1 after the last step instead of `alphas_cumprod[0]`.
    #[serde(default = "d::yes")]
    pub set_alpha_to_one: bool,
    /// DPM-Solver order.
    #[serde(default = "d::solver_order")]
    pub solver_order: usize,
    /// DPM-Solver algorithm (only `"dpmsolver++"`).
    #[serde(default = "d::algorithm_type")]
    pub algorithm_type: String,
    /// DPM-Solver second-order update (`"midpoint"` or `"heun"`).
    #[serde(default = "d::solver_type")]
    pub solver_type: String,
    /// DPM-Solver: first order on the last step(s).
    #[serde(default = "d::yes")]
    pub lower_order_final: bool,
    /// DPM-Solver: sigma after the last step (only `"zero"`).
    #[serde(default = "d::final_sigmas_type")]
    pub final_sigmas_type: String,
    /// DPM-Solver: Karras sigmas (not supported).
    #[serde(default)]
    pub use_karras_sigmas: bool,
    /// DPM-Solver: exponential sigmas (not supported).
    #[serde(default)]
    pub use_exponential_sigmas: bool,
    /// DPM-Solver: beta sigmas (not supported).
    #[serde(default)]
    pub use_beta_sigmas: bool,
    /// DPM-Solver: uniform-lambda steps (not supported).
    #[serde(default)]
    pub use_lu_lambdas: bool,
    /// DPM-Solver: flow-matching sigmas (not supported).
    #[serde(default)]
    pub use_flow_sigmas: bool,
    /// DPM-Solver: resolution-dependent shifting (not supported).
    #[serde(default)]
    pub use_dynamic_shifting: bool,
    /// DPM-Solver: Euler on the final step (not supported).
    #[serde(default)]
    pub euler_at_final: bool,
    /// DPM-Solver: lower clip of lambda; `-inf` in diffusers' files.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub lambda_min_clipped: Option<f64>,
}

mod d {
    use crate::{BetaSchedule, PredictionType, TimestepSpacing};
    pub fn num_train_timesteps() -> usize {
        1000
    }
    pub fn beta_start() -> f64 {
        0.0001
    }
    pub fn beta_end() -> f64 {
        0.02
    }
    pub fn beta_schedule() -> BetaSchedule {
        BetaSchedule::Linear
    }
    pub fn prediction_type() -> PredictionType {
        PredictionType::Epsilon
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn ratio() -> f64 {
        0.995
    }
    pub fn spacing() -> TimestepSpacing {
        TimestepSpacing::Leading
    }
    pub fn yes() -> bool {
        true
    }
    pub fn solver_order() -> usize {
        2
    }
    pub fn algorithm_type() -> String {
        "dpmsolver++".into()
    }
    pub fn solver_type() -> String {
        "midpoint".into()
    }
    pub fn final_sigmas_type() -> String {
        "zero".into()
    }
}

/// A float that may be written as a string (`"-inf"`) or as JSON's missing
/// `-Infinity` (which Python's json writes and serde_json cannot read, so
/// files are expected to carry a string or a number).
fn lenient_f64<'de, D: Deserializer<'de>>(de: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    Ok(match Option::<NumOrStr>::deserialize(de)? {
        None => None,
        Some(NumOrStr::Num(v)) => Some(v),
        Some(NumOrStr::Str(s)) => Some(s.parse().map_err(serde::de::Error::custom)?),
    })
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults deserialize")
    }
}

impl SchedulerConfig {
    /// Reads a diffusers `scheduler_config.json`. Python's bare `-Infinity` /
    /// `Infinity` / `NaN` tokens are accepted; the same words inside strings
    /// (keys or values) are left as they are.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DiffusionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = quote_python_constants(&text);
        let cfg: Self = serde_json::from_str(&text).map_err(|source| DiffusionError::Config {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(cfg)
    }

    /// The training noise tables.
    ///
    /// Checked so that every sampler's coefficients are finite: at most
    /// [`MAX_TRAIN_TIMESTEPS`] timesteps; every beta (given, or the linear
    /// schedules' `beta_start` and `beta_end`) finite and strictly between 0
    /// and 1 in f32 (a beta of 0 makes `1 - alpha_bar` vanish and the DDPM
    /// posterior divide by it; 1 or more zeroes or flips `alpha_bar`); and
    /// `alphas_cumprod` never below f32's smallest normal number, where
    /// DPM-Solver's `sqrt((1 - alpha_bar) / alpha_bar)` would overflow.
    /// diffusers checks none of this.
    pub fn schedule(&self) -> Result<DiscreteSchedule, DiffusionError> {
        if self.rescale_betas_zero_snr {
            return Err(unsupported(
                "rescale_betas_zero_snr",
                "true",
                "only false is supported",
            ));
        }
        let n = self.num_train_timesteps;
        if n == 0 || n > MAX_TRAIN_TIMESTEPS {
            return Err(unsupported(
                "num_train_timesteps",
                &n.to_string(),
                &format!("must be in 1..={MAX_TRAIN_TIMESTEPS}"),
            ));
        }
        let in_range = |b: f32| b > 0.0 && b < 1.0;
        let (schedule, field) = match &self.trained_betas {
            Some(b) if b.len() != n => {
                return Err(unsupported(
                    "trained_betas",
                    &format!("{} values", b.len()),
                    &format!("expected num_train_timesteps = {n}"),
                ));
            }
            Some(b) => {
                let betas: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                if let Some(i) = betas.iter().position(|&v| !in_range(v)) {
                    return Err(unsupported(
                        "trained_betas",
                        &format!("[{i}] = {}", b[i]),
                        "every beta must be finite and in (0, 1) (as f32)",
                    ));
                }
                (DiscreteSchedule::from_betas(betas), "trained_betas")
            }
            None => {
                if self.beta_schedule != BetaSchedule::SquaredCosCapV2 {
                    for (field, v) in [("beta_start", self.beta_start), ("beta_end", self.beta_end)]
                    {
                        if !in_range(v as f32) {
                            return Err(unsupported(
                                field,
                                &v.to_string(),
                                "must be finite and in (0, 1) (as f32)",
                            ));
                        }
                    }
                }
                let schedule =
                    DiscreteSchedule::new(self.beta_schedule, n, self.beta_start, self.beta_end);
                // Linear interpolation between two betas in (0, 1) stays
                // there; this guards rounding at the ends.
                if let Some(i) = schedule.betas.iter().position(|&v| !in_range(v)) {
                    return Err(unsupported(
                        "beta_schedule",
                        &format!("{:?}", self.beta_schedule),
                        &format!("gives beta[{i}] = {} outside (0, 1)", schedule.betas[i]),
                    ));
                }
                let field = if self.beta_schedule == BetaSchedule::SquaredCosCapV2 {
                    "beta_schedule"
                } else if self.beta_end >= self.beta_start {
                    "beta_end"
                } else {
                    "beta_start"
                };
                (schedule, field)
            }
        };
        if let Some(i) = schedule.alphas_cumprod.iter().position(|&a| !a.is_normal()) {
            return Err(unsupported(
                field,
                &format!("alphas_cumprod[{i}] = {}", schedule.alphas_cumprod[i]),
                "the betas drive alphas_cumprod below f32's smallest normal number",
            ));
        }
        Ok(schedule)
    }
}

/// The most training timesteps [`SchedulerConfig::schedule`] accepts: the
/// tables are built eagerly (about 12 bytes a timestep per scheduler), so
/// this bounds what a config file can make a scheduler allocate.
pub const MAX_TRAIN_TIMESTEPS: usize = 1 << 20;

/// Rewrites Python's bare `-Infinity`, `Infinity` and `NaN` (which its
/// `json` module writes and JSON lacks) to the strings `"-inf"`, `"inf"`,
/// `"nan"` that [`lenient_f64`] reads. Only tokens outside JSON strings are
/// touched: a scanner follows string literals (and their backslash escapes),
/// so a key or value that merely contains those words is left alone.
fn quote_python_constants(text: &str) -> String {
    const TOKENS: [(&str, &str); 3] = [
        ("-Infinity", "\"-inf\""),
        ("Infinity", "\"inf\""),
        ("NaN", "\"nan\""),
    ];
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some((token, quoted)) = TOKENS.iter().find(|(t, _)| rest.starts_with(t)) {
            out.push_str(quoted);
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

pub(crate) fn unsupported(field: &'static str, value: &str, reason: &str) -> DiffusionError {
    DiffusionError::UnsupportedConfig {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
