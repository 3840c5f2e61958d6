//! Static and dynamic thresholding of the predicted clean sample.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// How a sampler bounds its predicted `x0` at each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Thresholding {
    /// Leave `x0` alone.
    None,
    /// Clip to `[-range, range]` (diffusers' `clip_sample`).
    Static {
        /// The bound, usually 1.
        range: f64,
    },
    /// Imagen's dynamic thresholding: per sample, `s` = the `ratio` quantile of
    /// `|x0|`, clamped to `[1, max]`; `x0 = clamp(x0, -s, s) / s`.
    Dynamic {
        /// Quantile of |x0| (Imagen and IF: 0.95).
        ratio: f64,
        /// Upper bound of `s` (IF stage I: 1.5).
        max: f64,
    },
}

impl Thresholding {
    /// Applies the rule to `x0` of shape `[batch, ...]`.
    pub fn apply<B: Backend, const D: usize>(&self, x0: Tensor<B, D>) -> Tensor<B, D> {
        match *self {
            Self::None => x0,
            Self::Static { range } => x0.clamp(-range, range),
            Self::Dynamic { ratio, max } => dynamic_threshold(x0, ratio, max),
        }
    }
}

/// The per-sample threshold `s = clamp(quantile(|x0|, ratio), 1, max)`, with
/// `torch.quantile`'s linear interpolation. Returns `[batch, 1]`.
pub fn threshold_scale<B: Backend, const D: usize>(
    x0: Tensor<B, D>,
    ratio: f64,
    max: f64,
) -> Tensor<B, 2> {
    let dims = x0.dims();
    let batch = dims[0];
    let n: usize = dims[1..].iter().product();
    let sorted = x0.abs().reshape([batch, n]).sort(1);
    let pos = ratio.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    let low = sorted.clone().slice([0..batch, lo..lo + 1]);
    let high = sorted.slice([0..batch, hi..hi + 1]);
    let q = low.clone() + (high - low) * frac;
    q.clamp(1.0, max)
}

/// Imagen's dynamic thresholding (see [`Thresholding::Dynamic`]).
pub fn dynamic_threshold<B: Backend, const D: usize>(
    x0: Tensor<B, D>,
    ratio: f64,
    max: f64,
) -> Tensor<B, D> {
    let dims = x0.dims();
    let mut s_shape = [1usize; D];
    s_shape[0] = dims[0];
    let s = threshold_scale(x0.clone(), ratio, max).reshape(s_shape);
    let s_full = s.clone().expand(dims);
    x0.max_pair(s_full.clone().neg()).min_pair(s_full) / s
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use burn_flex::Flex;

    #[test]
    fn quantile_interpolates_like_torch() {
        // torch.quantile([0..=9], 0.95) = 8.55
        let x = Tensor::<Flex, 2>::from_data(
            TensorData::new((0..10).map(|v| v as f32).collect(), [1, 10]),
            &Default::default(),
        );
        let s: Vec<f32> = threshold_scale(x, 0.95, 100.0)
            .into_data()
            .to_vec()
            .unwrap();
        assert!((s[0] - 8.55).abs() < 1e-5, "{s:?}");
    }

    #[test]
    fn dynamic_threshold_is_identity_inside_unit_range() {
        let v = vec![0.5f32, -0.25, 0.9, -1.0];
        let x =
            Tensor::<Flex, 2>::from_data(TensorData::new(v.clone(), [1, 4]), &Default::default());
        let y: Vec<f32> = dynamic_threshold(x, 0.95, 1.5)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(y, v);
    }
}
