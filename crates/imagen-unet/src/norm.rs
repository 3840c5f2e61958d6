//! GroupNorm as PyTorch computes it in half precision: statistics in f32.

use burn::nn::GroupNorm;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// `norm.forward(x)`, except that an f16 / bf16 `x` is normalised in f32 and
/// the result cast back to its dtype.
///
/// diffusers runs `nn.GroupNorm` in the module's dtype, and PyTorch's kernels
/// (CPU and CUDA) then take the group mean and variance and apply the affine
/// transform in f32 (their "opmath" type), writing f16 / bf16 only at the
/// end. burn's `GroupNorm` sums in the tensor's dtype instead: a group of
/// IF stage I at 64x64 holds 4 channels x 4096 pixels, whose sum (let alone
/// sum of squares) leaves f16's range (65504) and whose mean loses bf16's 8
/// bits. f32 and f64 inputs go through `norm.forward` unchanged.
///
/// # Shapes
/// - `x`: `[batch, channels, ...]` → same shape and dtype
pub(crate) fn group_norm<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    if !matches!(dtype, DType::F16 | DType::BF16) {
        return norm.forward(x);
    }
    let shape = x.shape();
    let [batch, channels] = [shape[0], shape[1]];
    let groups = norm.num_groups;
    let per_group = shape.num_elements() / (batch * groups);
    let x = x.cast(DType::F32).reshape([batch, groups, per_group]);
    // The same two-pass formula as burn's GroupNorm, in f32.
    let mean = x.clone().sum_dim(2) / per_group as f64;
    let centered = x - mean;
    let var = centered.clone().square().sum_dim(2) / per_group as f64;
    let normed = (centered / var.add_scalar(norm.epsilon).sqrt()).reshape(shape);
    let mut affine = [1; D];
    affine[1] = channels;
    let out = match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) if norm.affine => {
            normed * gamma.val().cast(DType::F32).reshape(affine)
                + beta.val().cast(DType::F32).reshape(affine)
        }
        _ => normed,
    };
    out.cast(dtype)
}

#[cfg(test)]
mod tests {
    use burn::nn::GroupNormConfig;
    use burn::tensor::{DType, Distribution, Tensor};
    use burn_flex::Flex;

    use super::group_norm;

    /// A 64x64 group of 4 channels of values around 10: its sum (1.6e5) and
    /// sum of squares leave f16's range (65504). Ours must match the f32 norm to f16 rounding (2 u of the
    /// normalised values, whose magnitude is ~4 at most here).
    #[test]
    fn half_precision_statistics_do_not_overflow() {
        let device = Default::default();
        let norm = GroupNormConfig::new(2, 8).init::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([1, 8, 64, 64], Distribution::Normal(10.0, 1.0), &device);
        let want = norm.forward(x.clone());
        for (dtype, u) in [(DType::F16, 1.0 / 2048.0), (DType::BF16, 1.0 / 256.0)] {
            let got = group_norm(&norm, x.clone().cast(dtype));
            assert_eq!(got.dtype(), dtype);
            let err: f32 = (got.cast(DType::F32) - want.clone())
                .abs()
                .max()
                .into_scalar();
            assert!(err <= 2.0 * u * 5.0, "{dtype:?}: max abs error {err}");
        }
    }
}
