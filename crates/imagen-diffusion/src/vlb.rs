//! The variational-bound term of Improved DDPM's hybrid loss (Nichol &
//! Dhariwal 2021, `L_hybrid = L_simple + lambda * L_vlb`), which is what trains
//! the learned-range variance channels that IF's U-Nets predict. Follows
//! openai/improved-diffusion's `_vb_terms_bpd`: a KL between the true
//! posterior `q(x_{t-1} | x_t, x_0)` and the model's `p(x_{t-1} | x_t)` for
//! `t > 0`, the discretised decoder likelihood of `x_0` at `t = 0`, both in
//! bits per dimension.

use std::f64::consts::{LN_2, PI};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::schedule::DiscreteSchedule;

/// Per-example `L_t` in bits per dimension, `[b]`.
///
/// `x0_pred` is the network's estimate of `x_0` (detach it to train only the
/// variance through this term, as Improved DDPM does); `var_raw` is the
/// network's variance output in `[-1, 1]`, interpolating the log variance
/// between the clipped posterior variance and `beta_t`
/// ([`crate::learned_range_log_variance`]). `steps[i]` is example `i`'s
/// timestep; the schedule needs at least two steps.
///
/// ```
/// use burn::tensor::Tensor;
/// use imagen_diffusion::{BetaSchedule, DiscreteSchedule, vlb_per_sample};
/// type B = burn_flex::Flex;
/// let schedule = DiscreteSchedule::new(BetaSchedule::SquaredCosCapV2, 1000, 1e-4, 0.02);
/// let x0 = Tensor::<B, 4>::zeros([2, 3, 4, 4], &Default::default());
/// let bits = vlb_per_sample(&schedule, &[0, 500], x0.clone(), x0.clone(), x0.clone(), x0);
/// assert_eq!(bits.dims(), [2]);
/// ```
pub fn vlb_per_sample<B: Backend>(
    schedule: &DiscreteSchedule,
    steps: &[usize],
    x0: Tensor<B, 4>,
    x_t: Tensor<B, 4>,
    x0_pred: Tensor<B, 4>,
    var_raw: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let device = x0.device();
    let [b, c, h, w] = x0.dims();
    let column = |f: &dyn Fn(usize) -> f64| {
        let v: Vec<f32> = steps.iter().map(|&t| f(t) as f32).collect();
        Tensor::<B, 1>::from_data(TensorData::new(v, [b]), &device).reshape([b, 1, 1, 1])
    };
    let ab = |t: usize| f64::from(schedule.alphas_cumprod[t]);
    let ab_prev = |t: usize| if t == 0 { 1.0 } else { ab(t - 1) };
    let beta = |t: usize| f64::from(schedule.betas[t]);
    let posterior_var = |t: usize| beta(t) * (1.0 - ab_prev(t)) / (1.0 - ab(t));
    // The posterior variance is 0 at t = 0: use t = 1's, as improved-diffusion does.
    let min_log = column(&|t| posterior_var(t.max(1)).ln());
    let max_log = column(&|t| beta(t).ln());
    let coef_x0 = column(&|t| beta(t) * ab_prev(t).sqrt() / (1.0 - ab(t)));
    let coef_xt = column(&|t| (1.0 - ab_prev(t)) * (1.0 - beta(t)).sqrt() / (1.0 - ab(t)));
    let first = column(&|t| if t == 0 { 1.0 } else { 0.0 });

    let true_mean = coef_x0.clone() * x0.clone() + coef_xt.clone() * x_t.clone();
    let model_mean = coef_x0 * x0_pred + coef_xt * x_t;
    let frac = (var_raw + 1.0) / 2.0;
    let model_log = frac.clone() * max_log + (frac.neg() + 1.0) * min_log.clone();

    let per_example = |t: Tensor<B, 4>| t.reshape([b, c * h * w]).mean_dim(1).reshape([b]) / LN_2;
    let kl = per_example(normal_kl(
        true_mean,
        min_log,
        model_mean.clone(),
        model_log.clone(),
    ));
    let nll = per_example(-discretized_gaussian_log_likelihood(
        x0,
        model_mean,
        model_log * 0.5,
    ));
    let first = first.reshape([b]);
    kl * (first.clone().neg() + 1.0) + nll * first
}

/// KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), element-wise, in nats.
fn normal_kl<B: Backend>(
    mean1: Tensor<B, 4>,
    logvar1: Tensor<B, 4>,
    mean2: Tensor<B, 4>,
    logvar2: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let diff = mean1 - mean2;
    ((logvar2.clone() - logvar1.clone()) + (logvar1 - logvar2.clone()).exp() - 1.0
        + diff.clone() * diff * logvar2.neg().exp())
        * 0.5
}

/// Log-likelihood of `x` (in `[-1, 1]`, 8-bit levels) under a Gaussian
/// discretised to bins of width 2/255, the two end bins open, in nats.
fn discretized_gaussian_log_likelihood<B: Backend>(
    x: Tensor<B, 4>,
    mean: Tensor<B, 4>,
    log_scale: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let centered = x.clone() - mean;
    let inv_std = log_scale.neg().exp();
    let cdf_plus = approx_std_normal_cdf((centered.clone() + 1.0 / 255.0) * inv_std.clone());
    let cdf_min = approx_std_normal_cdf((centered - 1.0 / 255.0) * inv_std);
    let log_cdf_plus = cdf_plus.clone().clamp_min(1e-12).log();
    let log_one_minus_cdf_min = (cdf_min.clone().neg() + 1.0).clamp_min(1e-12).log();
    let log_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log();
    let low = x.clone().lower_elem(-0.999);
    let high = x.greater_elem(0.999);
    log_delta
        .mask_where(high, log_one_minus_cdf_min)
        .mask_where(low, log_cdf_plus)
}

/// The standard normal CDF by the tanh approximation improved-diffusion uses.
fn approx_std_normal_cdf<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let inner = (x.clone() + x.clone() * x.clone() * x * 0.044715) * (2.0 / PI).sqrt();
    (inner.tanh() + 1.0) * 0.5
}
