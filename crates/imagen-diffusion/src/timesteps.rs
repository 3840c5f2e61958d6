//! `set_timesteps`: which training timesteps a sampler visits, as diffusers
//! computes them (numpy's round-half-to-even included).

use crate::config::unsupported;
use crate::{DiffusionError, TimestepSpacing};

/// `n` timesteps out of `num_train` in descending order, spaced as diffusers'
/// DDPM and DDIM schedulers space them.
///
/// The result is always `n` strictly descending timesteps below `num_train`,
/// for every `n` in `1..=num_train`; diffusers' own lists are not:
/// - `Trailing` is numpy's float `np.arange(T, 0, -T / n)`, whose length is
///   `ceil(T / (T / n))`: for some `n` (61, 103, 121, ... of 1000) rounding
///   makes that `n + 1`, the extra value rounds to 0, and diffusers' `- 1`
///   yields timestep -1. Only the first `n` values are kept here (the same
///   floats numpy computes, so every list diffusers gets right is identical).
/// - `Leading` with a `steps_offset` can reach `num_train` (e.g. `n = T`,
///   offset 1: diffusers then indexes past its tables). The top of the list
///   is clamped to `num_train - 1, num_train - 2, ...` instead.
///
/// A final pass (identity on every well-formed list) keeps the values
/// distinct and in range whatever floating point does. A leading
/// `steps_offset` of `num_train` or more is an error: every timestep would
/// be out of range.
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
    let raw: Vec<f64> = match spacing {
        TimestepSpacing::Leading => {
            if steps_offset >= num_train {
                return Err(unsupported(
                    "steps_offset",
                    &steps_offset.to_string(),
                    &format!("must be below num_train_timesteps = {num_train}"),
                ));
            }
            let ratio = num_train / n;
            // Exact in f64: both terms are below num_train <= 2^53 here.
            (0..n)
                .rev()
                .map(|k| (k * ratio) as f64 + steps_offset as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            // np.round(np.arange(T, 0, -T / n)) - 1, the first n values.
            numpy_arange(num_train as f64, -(num_train as f64 / n as f64), n)
                .into_iter()
                .map(|v| v.round_ties_even() - 1.0)
                .collect()
        }
        TimestepSpacing::Linspace => {
            // np.linspace(0, T - 1, n).round()[::-1]
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
                    v.round_ties_even()
                })
                .collect()
        }
    };
    Ok(strictly_descending(&raw, num_train))
}

/// The first `len` values of numpy's float `np.arange(start, _, step)`:
/// `start`, `start + step`, then `start + i * delta` with
/// `delta = (start + step) - start`, as numpy fills them.
pub(crate) fn numpy_arange(start: f64, step: f64, len: usize) -> Vec<f64> {
    let delta = (start + step) - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => start + step,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// Integer timesteps from descending (rounded) floats: value `i` of `n` is
/// clamped to `[n - 1 - i, num_train - 1 - i]`, then kept at least one below
/// its predecessor. For values already strictly descending in
/// `[0, num_train)` this is the identity; otherwise the list stays `n`
/// distinct descending timesteps in range. Needs `n <= num_train`.
fn strictly_descending(raw: &[f64], num_train: usize) -> Vec<usize> {
    let n = raw.len();
    let mut out: Vec<usize> = Vec::with_capacity(n);
    for (i, &v) in raw.iter().enumerate() {
        let (lo, hi) = (n - 1 - i, num_train - 1 - i);
        // NaN and anything out of range land on a bound (`as` saturates).
        let mut t = if v.is_nan() {
            lo
        } else {
            (v.max(0.0) as usize).clamp(lo, hi)
        };
        if let Some(&prev) = out.last() {
            // prev >= n - i (induction), so this stays >= lo.
            t = t.min(prev - 1);
        }
        out.push(t);
    }
    out
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
