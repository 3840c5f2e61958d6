//! Noise schedules: discrete beta tables (diffusers' names, bit-exact f32
//! tables) and Imagen's continuous-time log-SNR schedules.

use serde::{Deserialize, Serialize};

/// A diffusers `beta_schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// Betas linear in t from `beta_start` to `beta_end` (DDPM).
    #[serde(rename = "linear")]
    Linear,
    /// sqrt(beta) linear in t, then squared (Stable Diffusion).
    #[serde(rename = "scaled_linear")]
    ScaledLinear,
    /// Cosine schedule of Nichol & Dhariwal, betas capped at 0.999 (DeepFloyd IF).
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredCosCapV2,
}

/// Anything that tells the signal and noise scales of `x_t = alpha x_0 + sigma eps`.
pub trait Schedule {
    /// Log signal-to-noise ratio `log(alpha^2 / sigma^2)` at `t`.
    fn log_snr(&self, t: f64) -> f64;

    /// `(alpha, sigma)` at `t`, with `alpha^2 + sigma^2 = 1`.
    fn alpha_sigma(&self, t: f64) -> (f64, f64) {
        let l = self.log_snr(t);
        (sigmoid(l).sqrt(), sigmoid(-l).sqrt())
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The discrete tables of a diffusers scheduler: `betas` and `alphas_cumprod`,
/// in f32 exactly as diffusers computes them (torch's CPU `linspace`, products
/// accumulated in f64), so that samplers replay diffusers bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscreteSchedule {
    /// `beta_t`, `t = 0..num_train_timesteps`.
    pub betas: Vec<f32>,
    /// `prod_{s <= t} (1 - beta_s)`.
    pub alphas_cumprod: Vec<f32>,
}

impl DiscreteSchedule {
    /// The tables for `schedule` over `num_train_timesteps` steps.
    /// `beta_start` / `beta_end` are used by the linear schedules only.
    pub fn new(
        schedule: BetaSchedule,
        num_train_timesteps: usize,
        beta_start: f64,
        beta_end: f64,
    ) -> Self {
        let n = num_train_timesteps;
        let betas = match schedule {
            BetaSchedule::Linear => torch_linspace_f32(beta_start as f32, beta_end as f32, n),
            BetaSchedule::ScaledLinear => {
                torch_linspace_f32(beta_start.sqrt() as f32, beta_end.sqrt() as f32, n)
                    .into_iter()
                    .map(|b| b * b)
                    .collect()
            }
            BetaSchedule::SquaredCosCapV2 => {
                let alpha_bar = |t: f64| {
                    ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                        .cos()
                        .powi(2)
                };
                (0..n)
                    .map(|i| {
                        let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
                        (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
                    })
                    .collect()
            }
        };
        Self::from_betas(betas)
    }

    /// Tables from explicit betas (diffusers' `trained_betas`).
    pub fn from_betas(betas: Vec<f32>) -> Self {
        let mut acc = 1.0f64;
        let alphas_cumprod = betas
            .iter()
            .map(|&b| {
                acc *= f64::from(1.0f32 - b);
                acc as f32
            })
            .collect();
        Self {
            betas,
            alphas_cumprod,
        }
    }

    /// Number of training timesteps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Whether the schedule has no steps.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }
}

impl Schedule for DiscreteSchedule {
    /// `t` is a timestep index (rounded to the nearest one); NaN for an
    /// empty schedule.
    fn log_snr(&self, t: f64) -> f64 {
        if self.is_empty() {
            return f64::NAN;
        }
        let i = (t.round().max(0.0) as usize).min(self.len() - 1);
        let a = f64::from(self.alphas_cumprod[i]);
        (a / (1.0 - a)).ln()
    }
}

/// `torch.linspace(a, b, n, dtype=torch.float32)` on the CPU, bit for bit:
/// the first half counts up from `a`, the second half down from `b`.
fn torch_linspace_f32(a: f32, b: f32, n: usize) -> Vec<f32> {
    if n <= 1 {
        return vec![a; n];
    }
    let step = (b - a) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, a)
            } else {
                (-step).mul_add((n - 1 - i) as f32, b)
            }
        })
        .collect()
}

/// Imagen's continuous-time schedules (lucidrains/imagen-pytorch's
/// `GaussianDiffusionContinuousTimes`), `t` in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinuousSchedule {
    /// `-log(expm1(1e-4 + 10 t^2))`.
    Linear,
    /// `-log(cos((t + s) / (1 + s) * pi / 2)^-2 - 1)`, `s = 0.008`, argument
    /// clamped at 1e-5 as imagen-pytorch does.
    Cosine,
}

impl Schedule for ContinuousSchedule {
    fn log_snr(&self, t: f64) -> f64 {
        match self {
            Self::Linear => -(1e-4 + 10.0 * t * t).exp_m1().ln(),
            Self::Cosine => {
                let s = 0.008;
                let c = ((t + s) / (1.0 + s) * std::f64::consts::PI / 2.0).cos();
                -((c.powi(-2) - 1.0).max(1e-5)).ln()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_schedules_are_monotone_and_normalised() {
        for s in [ContinuousSchedule::Linear, ContinuousSchedule::Cosine] {
            let mut last = f64::INFINITY;
            for i in 0..=100 {
                let t = i as f64 / 100.0;
                let l = s.log_snr(t);
                assert!(l < last, "{s:?} not decreasing at {t}");
                last = l;
                let (a, sg) = s.alpha_sigma(t);
                assert!((a * a + sg * sg - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn log_snr_matches_imagen_pytorch_formulas() {
        // Values of imagen-pytorch's `alpha_cosine_log_snr` / `beta_linear_log_snr`
        // evaluated with Python's math module.
        let cases = [
            (0.0, 8.769294788200295, 9.210290371559516),
            (0.25, 1.7103411522616514, 0.1410650810166803),
            (0.5, -0.024933920896264044, f64::NAN),
            (0.9, -3.701659475067543, -8.099796445146204),
            (1.0, -74.66371238653784, -10.000054603579601),
        ];
        for (t, cosine, linear) in cases {
            let c = ContinuousSchedule::Cosine.log_snr(t);
            assert!(
                (c - cosine).abs() <= 1e-9 * cosine.abs().max(1.0),
                "cosine {t}: {c}"
            );
            if !linear.is_nan() {
                let l = ContinuousSchedule::Linear.log_snr(t);
                assert!(
                    (l - linear).abs() <= 1e-9 * linear.abs().max(1.0),
                    "linear {t}: {l}"
                );
            }
        }
    }
}
