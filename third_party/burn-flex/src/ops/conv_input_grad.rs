//! imagen's patch: the input gradient of a stride-1, undilated, ungrouped
//! 2-D convolution, run as a forward convolution.
//!
//! For such a convolution with a `k_h x k_w` kernel and padding `p`, the
//! gradient with respect to the input is the convolution of the output
//! gradient by the kernel flipped in space, with its two channel axes
//! swapped, at padding `k - 1 - p`. As a forward convolution it takes the
//! forward's fast paths (Winograd F(2x2, 3x3) for the U-Nets' 3x3 convs)
//! instead of burn's default transposed convolution (a GEMM and a col2im).

use alloc::vec;

use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::ops::conv;
use crate::{FlexTensor, Layout};

/// `d conv2d(x, weight, _, options) / d x` for `output_grad`, or `None` when
/// the convolution is not f32, stride 1, undilated and ungrouped with
/// padding below its kernel size (then burn's transposed convolution runs).
pub(crate) fn conv2d_x_backward_as_conv(
    x: &FlexTensor,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let ws = weight.layout().shape();
    let (c_out, c_in, k_h, k_w) = (ws[0], ws[1], ws[2], ws[3]);
    let xs = x.layout().shape();
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || output_grad.dtype() != DType::F32
        || options.stride != [1, 1]
        || options.dilation != [1, 1]
        || options.groups != 1
        || options.padding[0] >= k_h
        || options.padding[1] >= k_w
    {
        return None;
    }
    let padding = [k_h - 1 - options.padding[0], k_w - 1 - options.padding[1]];
    let flipped = flip_and_swap_channels(weight, c_out, c_in, k_h, k_w);
    let grad = conv::conv2d_f32(
        output_grad.clone(),
        flipped,
        None,
        &ConvOptions::new([1, 1], padding, [1, 1], 1),
    );
    // Stride 1 loses no input rows, so the sizes match the input's.
    debug_assert_eq!(grad.layout().shape().to_vec(), xs.to_vec());
    Some(grad)
}

/// `w'[ci, co, a, b] = w[co, ci, k_h - 1 - a, k_w - 1 - b]`.
fn flip_and_swap_channels(
    weight: &FlexTensor,
    c_out: usize,
    c_in: usize,
    k_h: usize,
    k_w: usize,
) -> FlexTensor {
    let weight = weight.to_contiguous();
    let w: &[f32] = weight.storage();
    let taps = k_h * k_w;
    let mut out = vec![0.0f32; w.len()];
    for co in 0..c_out {
        for ci in 0..c_in {
            let src = &w[(co * c_in + ci) * taps..][..taps];
            let dst = &mut out[(ci * c_out + co) * taps..][..taps];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(Shape::from(vec![c_in, c_out, k_h, k_w])),
        DType::F32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::tests::seeded_vec_f32;
    use crate::ops::conv_transpose;
    use burn_backend::TensorData;
    use burn_backend::ops::ConvTransposeOptions;

    /// Against burn's default (the transposed convolution), for 3x3 kernels
    /// taking the Winograd path and smaller ones taking im2col, paddings 0-2
    /// and non-square kernels: within 1e-4 of the gradient's peak.
    #[test]
    fn input_gradient_matches_transposed_convolution() {
        use alloc::vec::Vec;
        for (b, c_in, c_out, h, w, k_h, k_w, p_h, p_w) in [
            (2, 32, 16, 20, 18, 3, 3, 1, 1),
            (1, 16, 24, 17, 33, 3, 3, 0, 2),
            (2, 5, 7, 9, 8, 3, 1, 1, 0),
            (1, 4, 3, 6, 7, 2, 3, 1, 2),
        ] {
            let x = FlexTensor::from_data(TensorData::new(
                seeded_vec_f32(b * c_in * h * w, 1),
                vec![b, c_in, h, w],
            ));
            let weight = FlexTensor::from_data(TensorData::new(
                seeded_vec_f32(c_out * c_in * k_h * k_w, 2),
                vec![c_out, c_in, k_h, k_w],
            ));
            let (o_h, o_w) = (h + 2 * p_h + 1 - k_h, w + 2 * p_w + 1 - k_w);
            let dy = FlexTensor::from_data(TensorData::new(
                seeded_vec_f32(b * c_out * o_h * o_w, 3),
                vec![b, c_out, o_h, o_w],
            ));
            let options = ConvOptions::new([1, 1], [p_h, p_w], [1, 1], 1);
            let got: Vec<f32> = conv2d_x_backward_as_conv(&x, &weight, &dy, &options)
                .expect("applies")
                .into_data()
                .to_vec()
                .unwrap();
            let want: Vec<f32> = conv_transpose::conv_transpose2d_f32(
                dy,
                weight,
                None,
                &ConvTransposeOptions::new([1, 1], [p_h, p_w], [0, 0], [1, 1], 1),
            )
            .into_data()
            .to_vec()
            .unwrap();
            assert_eq!(got.len(), b * c_in * h * w);
            let peak = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let err = got
                .iter()
                .zip(&want)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= 1e-4 * peak,
                "{c_in}->{c_out} {k_h}x{k_w}: {err} (peak {peak})"
            );
        }
    }

    #[test]
    fn other_convolutions_keep_the_default() {
        let x = FlexTensor::from_data(TensorData::new(
            vec![0.0f32; 2 * 4 * 8 * 8],
            vec![2, 4, 8, 8],
        ));
        let w = FlexTensor::from_data(TensorData::new(vec![0.0f32; 4 * 4 * 9], vec![4, 4, 3, 3]));
        let dy = FlexTensor::from_data(TensorData::new(
            vec![0.0f32; 2 * 4 * 4 * 4],
            vec![2, 4, 4, 4],
        ));
        let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        assert!(conv2d_x_backward_as_conv(&x, &w, &dy, &strided).is_none());
        let wide_pad = ConvOptions::new([1, 1], [3, 3], [1, 1], 1);
        assert!(conv2d_x_backward_as_conv(&x, &w, &dy, &wide_pad).is_none());
    }
}
