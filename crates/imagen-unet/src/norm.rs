//! The ops whose half-precision results depend on how a backend sums, done
//! the way PyTorch does them on f16 / bf16 tensors: in f32 ("opmath"), with
//! one rounding at the end. GroupNorm statistics, convolution sums and
//! attention (diffusers builds IF's with `upcast_softmax=True`).
//!
//! Found on burn-wgpu (lavapipe): burn-cubecl's direct convolution kernel,
//! the one it runs without autotune and one autotune may pick, accumulates in
//! the tensor's dtype, and its fallback attention (taken whenever there is a
//! bias, e.g. a text mask) takes the softmax in it; burn-flex sums both in
//! f32. The tiny IF stage I in f16 was 15 unit roundoffs of its output scale
//! off f32 on wgpu against 7.7 on burn-flex; with convolutions and attention
//! summed in f32 it is 10 (tests/precision.rs).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention as burn_attention, conv2d as burn_conv2d};
use burn::tensor::ops::{AttentionModuleOptions, PaddedConvOptions};
use burn::tensor::{DType, Tensor};

fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// `conv.forward(x)`, except that an f16 / bf16 `x` is convolved in f32 (the
/// weights and bias cast for the call) and the result cast back, as cuDNN and
/// PyTorch's CPU kernels accumulate half convolutions in f32.
///
/// # Shapes
/// - `x`: `[batch, in, H, W]` → `[batch, out, H', W']`, `x`'s dtype
pub(crate) fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let ((top, bottom), (left, right)) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        // Not built by this crate; burn computes "same" padding itself.
        PaddingConfig2d::Same => return conv.forward(x),
    };
    if !is_half(dtype) {
        return conv.forward(x);
    }
    let options = PaddedConvOptions::asymmetric(
        conv.stride,
        [top, left],
        [bottom, right],
        conv.dilation,
        conv.groups,
    );
    let f32_of = |p: &Param<Tensor<B, 4>>| p.val().cast(DType::F32);
    burn_conv2d(
        x.cast(DType::F32),
        f32_of(&conv.weight),
        conv.bias.as_ref().map(|b| b.val().cast(DType::F32)),
        options,
    )
    .cast(dtype)
}

/// The most bytes of attention scores computed at once: 64 MiB of f32,
/// half of the 128 MiB that Vulkan drivers such as lavapipe bind as one
/// storage buffer (wgpu's default `max_storage_buffer_binding_size`).
/// burn-cubecl's fallback attention materialises the `[batch, heads, Lq,
/// Lk]` scores, and a larger buffer failed to allocate on burn-wgpu (the
/// tiny IF stage II at 256 x 256: 2 x 4096 x 4173 f32 scores, 130 MiB),
/// leaving the sampler's results undefined.
const MAX_SCORE_BYTES: usize = 64 << 20;

/// burn's fused `attention` (no boolean mask), except that
/// - f16 / bf16 queries, keys, values and bias are attended in f32 and the
///   output cast back: the softmax is in f32 as in diffusers'
///   `upcast_softmax`, and every backend rounds once, as burn-flex does;
/// - the queries go in chunks whose scores stay within [`MAX_SCORE_BYTES`]
///   (each query's softmax is over all keys either way, so this changes no
///   result).
///
/// # Shapes
/// - `q`: `[batch, heads, Lq, d]`, `k`, `v`: `[batch, heads, Lk, d]`,
///   `bias`: `[batch, heads, Lq, Lk]` → `[batch, heads, Lq, d]`
pub(crate) fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    options: AttentionModuleOptions,
) -> Tensor<B, 4> {
    attention_within(q, k, v, bias, options, MAX_SCORE_BYTES)
}

fn attention_within<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    options: AttentionModuleOptions,
    max_score_bytes: usize,
) -> Tensor<B, 4> {
    let dtype = q.dtype();
    let half = is_half(dtype);
    let up = |t: Tensor<B, 4>| if half { t.cast(DType::F32) } else { t };
    let (q, k, v, bias) = (up(q), up(k), up(v), bias.map(up));
    let [b, h, lq, _] = q.dims();
    let lk = k.dims()[2];
    let rows = (max_score_bytes / (b * h * lk * 4).max(1)).max(1);
    let out = if rows >= lq {
        burn_attention(q, k, v, None, bias, options)
    } else {
        let chunks = (0..lq)
            .step_by(rows)
            .map(|start| {
                let end = (start + rows).min(lq);
                burn_attention(
                    q.clone().slice([0..b, 0..h, start..end]),
                    k.clone(),
                    v.clone(),
                    None,
                    bias.clone()
                        .map(|bias| bias.slice([0..b, 0..h, start..end])),
                    options,
                )
            })
            .collect();
        Tensor::cat(chunks, 2)
    };
    if half { out.cast(dtype) } else { out }
}

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

    use super::{attention_within, group_norm};

    /// A 64x64 group of 4 channels of values around 10: its sum (1.6e5) and
    /// sum of squares leave f16's range (65504). Ours must match the f32 norm
    /// of the same (half-rounded) input to 2 u of the normalised values,
    /// whose magnitude is ~4 at most here. The input is a fixed pattern, not
    /// a random draw: compared with the f32 norm of the unrounded input, the
    /// input's own rounding (up to 0.03 in bf16 at 10) made the check depend
    /// on the draw.
    #[test]
    fn half_precision_statistics_do_not_overflow() {
        let device = Default::default();
        let norm = GroupNormConfig::new(2, 8).init::<Flex>(&device);
        let values: Vec<f32> = (0..8 * 64 * 64)
            .map(|i| 10.0 + 1.5 * (i as f32 * 0.37).sin() + 0.5 * (i as f32 * 0.011).cos())
            .collect();
        let x = Tensor::<Flex, 1>::from_floats(values.as_slice(), &device).reshape([1, 8, 64, 64]);
        for (dtype, u) in [(DType::F16, 1.0 / 2048.0), (DType::BF16, 1.0 / 256.0)] {
            let input = x.clone().cast(dtype);
            let want = norm.forward(input.clone().cast(DType::F32));
            let got = group_norm(&norm, input);
            assert_eq!(got.dtype(), dtype);
            let err: f32 = (got.cast(DType::F32) - want).abs().max().into_scalar();
            assert!(err <= 2.0 * u * 5.0, "{dtype:?}: max abs error {err}");
        }
    }

    /// Queries in chunks (here of 5 rows: 17 queries in 4 calls) give what
    /// one call gives, with the bias sliced along; f16 goes through f32 and
    /// comes back f16.
    #[test]
    fn chunked_attention_is_the_whole() {
        let device = Default::default();
        let r = |shape: [usize; 4]| {
            Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
        };
        let (q, k, v, bias) = (
            r([2, 3, 17, 8]),
            r([2, 3, 13, 8]),
            r([2, 3, 13, 8]),
            r([2, 3, 17, 13]),
        );
        let options = burn::tensor::ops::AttentionModuleOptions::default();
        let whole = attention_within(
            q.clone(),
            k.clone(),
            v.clone(),
            Some(bias.clone()),
            options,
            usize::MAX,
        );
        let rows5 = 5 * 2 * 3 * 13 * 4;
        let chunked = attention_within(q.clone(), k.clone(), v.clone(), Some(bias), options, rows5);
        let err: f32 = (whole - chunked).abs().max().into_scalar();
        assert!(err <= 1e-6, "{err}");
        let half = attention_within(
            q.cast(DType::F16),
            k.cast(DType::F16),
            v.cast(DType::F16),
            None,
            options,
            rows5,
        );
        assert_eq!(half.dtype(), DType::F16);
    }
}
