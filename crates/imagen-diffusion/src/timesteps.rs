//! `set_timesteps`: which training timesteps a sampler visits, as diffusers
//! computes them (numpy's round-half-to-even included).

use crate::config::unsupported;
use crate::{DiffusionError, TimestepSpacing};

/// `n` timesteps out of `num_train` in descending order, spaced as diffusers'
/// DDPM and DDIM schedulers space them.
pub fn spaced_timesteps(
    spacing: TimestepSpacing,
    num_train: usize,
    n: usize,
    steps_offset: usize,
) -> Result<Vec<usize>, DiffusionError> {
    if n == 0 || n > num_train {
        return Err(unsupported(
            "num_inference_steps",
            &n.to_string(),
            &format!("must be in 1..={num_train} (num_train_timesteps)"),
        ));
    }
    Ok(match spacing {
        TimestepSpacing::Leading => {
            let ratio = num_train / n;
            (0..n).rev().map(|k| k * ratio + steps_offset).collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = num_train as f64 / n as f64;
            // np.arange(T, 0, -ratio): T - k * ratio while > 0.
            let mut out = Vec::with_capacity(n);
            let mut k = 0usize;
            loop {
                let v = num_train as f64 - k as f64 * ratio;
                if v <= 0.0 {
                    break;
                }
                out.push(v.round_ties_even() as usize - 1);
                k += 1;
            }
            out
        }
        TimestepSpacing::Linspace => {
            let last = (num_train - 1) as f64;
            let step = if n > 1 { last / (n - 1) as f64 } else { 0.0 };
            (0..n)
                .rev()
                .map(|k| {
                    let v = if n > 1 && k == n - 1 {
                        last
                    } else {
                        k as f64 * step
                    };
                    v.round_ties_even() as usize
                })
                .collect()
        }
    })
}

/// Checks a user-supplied list: strictly descending and below `num_train`.
pub fn check_custom(timesteps: &[usize], num_train: usize) -> Result<(), DiffusionError> {
    let bad = |reason: &str| Err(unsupported("timesteps", &format!("{timesteps:?}"), reason));
    if timesteps.is_empty() {
        return bad("the list is empty");
    }
    if timesteps.windows(2).any(|w| w[1] >= w[0]) {
        return bad("must be strictly descending");
    }
    if timesteps[0] >= num_train {
        return bad(&format!("must be below num_train_timesteps = {num_train}"));
    }
    Ok(())
}
