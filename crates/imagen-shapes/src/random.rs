//! Small sampling helpers that never panic on empty ranges.

use rand::{Rng, RngExt};

use crate::ShapesError;

/// Uniform in `[lo, hi)`; `lo` when the range is empty.
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        lo + (hi - lo) * rng.random::<f32>()
    } else {
        lo
    }
}

/// A uniformly chosen element, `None` for an empty slice.
pub(crate) fn pick<T: Copy, R: Rng + ?Sized>(rng: &mut R, items: &[T]) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[rng.random_range(0..items.len())])
    }
}

/// True with probability `p` (clamped to `[0, 1]`, NaN counts as 0).
pub(crate) fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// `Ok` when `p` is a probability, otherwise an error naming `name`.
pub(crate) fn probability(name: &str, p: f64) -> Result<(), ShapesError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(ShapesError::InvalidConfig(format!(
            "{name} {p} is not a probability in [0, 1]"
        )))
    }
}

/// Shuffles a slice in place (Fisher-Yates).
pub(crate) fn shuffle<T, R: Rng + ?Sized>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}
