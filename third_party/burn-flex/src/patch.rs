//! What this copy adds to burn-flex 0.21.0, so that a program can check that
//! it runs the kernels imagen is tested with (a project that depends on the
//! stock `burn-flex` gets none of this module).
//!
//! The changes themselves are listed in this crate's README.md.

use burn_backend::ops::ConvOptions;

/// The burn-flex release this copy is based on.
pub const BASE_VERSION: &str = "0.21.0";

/// The rounds of changes carried over [`BASE_VERSION`], oldest first.
pub const PATCHES: &[&str] = &[
    "strided-runs",
    "parallel-attention-and-vmath",
    "transposed-im2col-and-weight-grad",
    "winograd-f2x2-3x3-and-input-grad",
];

/// The kernel an f32 `conv2d` of an `[n, c_in, h, w]` input by an
/// `[c_out, c_in / groups, kh, kw]` weight runs, as burn-flex dispatches it:
/// `"1x1-gemm"`, `"depthwise"`, `"small-channel"`, `"winograd-f2x2-3x3"`
/// (added by this copy), `"direct"` or `"im2col-gemm"`.
///
/// ```
/// use burn_backend::ops::ConvOptions;
/// let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
/// let kernel = imagen_burn_flex::patch::conv2d_f32_kernel([1, 64, 32, 32], [64, 64, 3, 3], &options);
/// assert_eq!(kernel, "winograd-f2x2-3x3");
/// ```
pub fn conv2d_f32_kernel(
    input: [usize; 4],
    weight: [usize; 4],
    options: &ConvOptions<2>,
) -> &'static str {
    // conv2d runs as a conv3d of depth 1, as `conv2d_f32` expands it.
    let x = [input[0], input[1], 1, input[2], input[3]];
    let w = [weight[0], weight[1], 1, weight[2], weight[3]];
    let options = ConvOptions::new(
        [1, options.stride[0], options.stride[1]],
        [0, options.padding[0], options.padding[1]],
        [1, options.dilation[0], options.dilation[1]],
        options.groups,
    );
    crate::ops::conv::conv3d_f32_path(&x, &w, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_dispatched_kernel() {
        let same = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        assert_eq!(
            conv2d_f32_kernel([1, 64, 32, 32], [64, 64, 3, 3], &same),
            "winograd-f2x2-3x3"
        );
        assert_eq!(
            conv2d_f32_kernel([1, 64, 8, 8], [64, 64, 3, 3], &same),
            "im2col-gemm"
        );
        let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        assert_eq!(
            conv2d_f32_kernel([1, 64, 32, 32], [64, 64, 3, 3], &strided),
            "im2col-gemm"
        );
        let pointwise = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        assert_eq!(
            conv2d_f32_kernel([1, 64, 32, 32], [64, 64, 1, 1], &pointwise),
            "1x1-gemm"
        );
    }
}
