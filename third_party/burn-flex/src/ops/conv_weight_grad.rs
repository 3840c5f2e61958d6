//! imagen's patch: the weight gradient of a convolution as one GEMM per
//! output tile, `dW[c_out, K] += dY[c_out, tile] @ col[K, tile]^T`, with
//! `col` the same transposed im2col panel the forward pass builds.
//!
//! burn's default computes it as a convolution of the batch-transposed
//! input with the output gradient as kernel: for a 3x3 conv over 64x64
//! images that is a 64x64 kernel producing 3x3 outputs, whose im2col rows
//! are three pixels long and whose GEMM has 9 rows, which runs the GEMM's
//! narrowest, slowest kernel. Here the GEMM is `c_out x K x tile`.

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape, f16};

use crate::ops::conv::{Im2colGeometry, expand_1d_to_3d, expand_2d_to_3d, im2col_t_tile};
use crate::{FlexTensor, Layout};

/// Output pixels per GEMM: its depth. Deeper means fewer passes over the
/// `dW` accumulator.
const TILE_PIXELS: usize = 512;

/// At most this many partial `dW` sums (fixed, so the result does not
/// depend on the thread count), and at most [`PARTIALS_BYTES`] of them.
const MAX_PARTIALS: usize = 8;
const PARTIALS_BYTES: usize = 64 << 20;

/// Gradient of `conv1d(x, weight, _, options)` with respect to `weight`.
pub fn conv1d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<1>,
) -> FlexTensor {
    let w_shape = weight.layout().shape().clone();
    // The output gradient is laid out like the input: the same expansion fits.
    let (dy, _, _) = expand_1d_to_3d(&output_grad, &weight, options);
    let (x, weight, options) = expand_1d_to_3d(&x, &weight, options);
    conv3d_weight_backward(x, weight, dy, &options).reshape(w_shape)
}

/// Gradient of `conv2d(x, weight, _, options)` with respect to `weight`.
pub fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let w_shape = weight.layout().shape().clone();
    let (dy, _, _) = expand_2d_to_3d(&output_grad, &weight, options);
    let (x, weight, options) = expand_2d_to_3d(&x, &weight, options);
    conv3d_weight_backward(x, weight, dy, &options).reshape(w_shape)
}

/// Gradient of `conv3d(x, weight, _, options)` with respect to `weight`.
pub fn conv3d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<3>,
) -> FlexTensor {
    let w_shape: [usize; 5] = core::array::from_fn(|i| weight.layout().shape()[i]);
    match x.dtype() {
        DType::F32 => weight_grad::<f32>(x, w_shape, output_grad, options, DType::F32, 0.0, 1.0),
        DType::F64 => weight_grad::<f64>(x, w_shape, output_grad, options, DType::F64, 0.0, 1.0),
        DType::F16 => weight_grad::<f16>(
            x,
            w_shape,
            output_grad,
            options,
            DType::F16,
            f16::from_f32(0.0),
            f16::from_f32(1.0),
        ),
        DType::BF16 => {
            use crate::ops::conv_common::{convert_bf16_to_f32, convert_f32_to_bf16};
            let grad = weight_grad::<f32>(
                convert_bf16_to_f32(&x),
                w_shape,
                convert_bf16_to_f32(&output_grad),
                options,
                DType::F32,
                0.0,
                1.0,
            );
            convert_f32_to_bf16(&grad)
        }
        dtype => panic!("conv weight backward: unsupported dtype {dtype:?}"),
    }
}

fn weight_grad<T: burn_backend::Element + bytemuck::Pod + core::ops::AddAssign + Send + Sync>(
    x: FlexTensor,
    w_shape: [usize; 5],
    output_grad: FlexTensor,
    options: &ConvOptions<3>,
    dtype: DType,
    zero: T,
    one: T,
) -> FlexTensor {
    let x = x.to_contiguous();
    let dy = output_grad.to_contiguous();
    let x_shape = x.layout().shape();
    let (batch, channels_in) = (x_shape[0], x_shape[1]);
    let in_spatial = [x_shape[2], x_shape[3], x_shape[4]];
    let [channels_out, channels_per_group, k_d, k_h, k_w] = w_shape;
    let kernel = [k_d, k_h, k_w];
    let groups = options.groups;
    let out_per_group = channels_out / groups;
    let geometry = Im2colGeometry::new(in_spatial, kernel, options);
    let [out_d, out_h, out_w] = geometry.out;
    let dy_shape = dy.layout().shape();
    assert_eq!(
        &dy_shape[..],
        &[batch, channels_out, out_d, out_h, out_w][..],
        "conv weight backward: output gradient shape"
    );

    let col_len = channels_per_group * k_d * k_h * k_w;
    let w_len = channels_out * col_len;
    let spatial_out = out_d * out_h * out_w;
    let in_plane = in_spatial[0] * in_spatial[1] * in_spatial[2];
    let (rows, rows_per_tile, num_tiles) = geometry.row_tiles(TILE_PIXELS);
    let tasks = batch * num_tiles;
    // A pointwise conv's im2col panel is the input itself.
    let pointwise =
        kernel == [1, 1, 1] && options.stride == [1, 1, 1] && options.padding == [0, 0, 0];
    let x_data: &[T] = x.storage();
    let dy_data: &[T] = dy.storage();

    // Adds the tasks `range` into `acc` ([c_out, K]).
    let accumulate = |range: core::ops::Range<usize>, acc: &mut [T]| {
        let mut col = if pointwise {
            Vec::new()
        } else {
            vec![zero; col_len * rows_per_tile * out_w]
        };
        for task in range {
            let (b, tile) = (task / num_tiles, task % num_tiles);
            let row_start = tile * rows_per_tile;
            let row_end = (row_start + rows_per_tile).min(rows);
            let tile_len = (row_end - row_start) * out_w;
            for g in 0..groups {
                let x_group = &x_data[(b * channels_in + g * channels_per_group) * in_plane..]
                    [..channels_per_group * in_plane];
                // The panel [K, tile] as (pointer, row stride).
                let (panel, panel_rs) = if pointwise {
                    (x_group[row_start * out_w..].as_ptr(), in_plane)
                } else {
                    let col = &mut col[..col_len * tile_len];
                    im2col_t_tile(col, x_group, row_start..row_end, &geometry, zero);
                    (col.as_ptr(), tile_len)
                };
                let dy_tile = &dy_data
                    [(b * channels_out + g * out_per_group) * spatial_out + row_start * out_w..];
                let dst = &mut acc[g * out_per_group * col_len..][..out_per_group * col_len];
                // dst[c_out, K] += dy[c_out, tile] @ panel[K, tile]^T.
                // Safety: every pointer covers the strided extents given.
                unsafe {
                    gemm::gemm(
                        out_per_group,
                        col_len,
                        tile_len,
                        dst.as_mut_ptr(),
                        1,
                        col_len as isize,
                        true,
                        dy_tile.as_ptr(),
                        1,
                        spatial_out as isize,
                        panel,
                        panel_rs as isize,
                        1,
                        one,
                        one,
                        false,
                        false,
                        false,
                        gemm_parallelism(out_per_group * col_len * tile_len),
                    );
                }
            }
        }
    };

    let partials = MAX_PARTIALS
        .min(tasks)
        .min(PARTIALS_BYTES / (w_len * core::mem::size_of::<T>()).max(1))
        .max(1);
    let per_partial = tasks.div_ceil(partials).max(1);
    let ranges: Vec<_> = (0..partials)
        .map(|p| (p * per_partial).min(tasks)..((p + 1) * per_partial).min(tasks))
        .collect();
    let mut sums: Vec<Vec<T>> = (0..partials).map(|_| vec![zero; w_len]).collect();
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        sums.par_iter_mut()
            .zip(ranges.into_par_iter())
            .for_each(|(acc, range)| accumulate(range, acc));
    }
    #[cfg(not(feature = "rayon"))]
    for (acc, range) in sums.iter_mut().zip(ranges) {
        accumulate(range, acc);
    }
    // Fixed-order reduction of the partial sums.
    let mut sums = sums.into_iter();
    let mut total = sums.next().unwrap_or_else(|| vec![zero; w_len]);
    for partial in sums {
        add_in_place(&mut total, &partial);
    }
    FlexTensor::new(
        Bytes::from_elems(total),
        Layout::contiguous(Shape::from(w_shape.to_vec())),
        dtype,
    )
}

/// `a += b`, element by element.
fn add_in_place<T: core::ops::AddAssign + Copy>(a: &mut [T], b: &[T]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += *b);
}

fn gemm_parallelism(work: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if work >= 192 * 192 * 192 {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = work;
    gemm::Parallelism::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_backend::TensorData;

    fn seeded(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = ((i as u32).wrapping_mul(2654435761).wrapping_add(seed)) & 0xffff;
                (v as f32 / 32768.0) - 1.0
            })
            .collect()
    }

    /// Direct sum over batch and output positions, in f64.
    fn naive(
        x: &[f32],
        xs: [usize; 5],
        dy: &[f32],
        ws: [usize; 5],
        o: [usize; 3],
        options: &ConvOptions<3>,
    ) -> Vec<f32> {
        let (cpg, opg) = (ws[1], ws[0] / options.groups);
        let mut dw = vec![0.0f64; ws.iter().product()];
        for co in 0..ws[0] {
            for c in 0..cpg {
                let ci = (co / opg) * cpg + c;
                for kd in 0..ws[2] {
                    for kh in 0..ws[3] {
                        for kw in 0..ws[4] {
                            let mut acc = 0.0f64;
                            for b in 0..xs[0] {
                                for od in 0..o[0] {
                                    for oh in 0..o[1] {
                                        for ow in 0..o[2] {
                                            let at = |o: usize, k: usize, a: usize| {
                                                (o * options.stride[a] + k * options.dilation[a])
                                                    as isize
                                                    - options.padding[a] as isize
                                            };
                                            let (id, ih, iw) =
                                                (at(od, kd, 0), at(oh, kh, 1), at(ow, kw, 2));
                                            if id < 0
                                                || ih < 0
                                                || iw < 0
                                                || id as usize >= xs[2]
                                                || ih as usize >= xs[3]
                                                || iw as usize >= xs[4]
                                            {
                                                continue;
                                            }
                                            let xi = (((b * xs[1] + ci) * xs[2] + id as usize)
                                                * xs[3]
                                                + ih as usize)
                                                * xs[4]
                                                + iw as usize;
                                            let yi = (((b * ws[0] + co) * o[0] + od) * o[1] + oh)
                                                * o[2]
                                                + ow;
                                            acc += x[xi] as f64 * dy[yi] as f64;
                                        }
                                    }
                                }
                            }
                            dw[(((co * cpg + c) * ws[2] + kd) * ws[3] + kh) * ws[4] + kw] = acc;
                        }
                    }
                }
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn weight_grad_matches_direct_sum() {
        #[allow(clippy::type_complexity)]
        let cases: &[(
            [usize; 5],
            [usize; 5],
            [usize; 3],
            [usize; 3],
            [usize; 3],
            usize,
        )] = &[
            // x [b, c_in, d, h, w], w [c_out, c_in/g, kd, kh, kw], stride, pad, dilation, groups
            (
                [2, 3, 1, 9, 7],
                [4, 3, 1, 3, 3],
                [1, 1, 1],
                [0, 1, 1],
                [1, 1, 1],
                1,
            ),
            (
                [3, 4, 1, 8, 8],
                [6, 4, 1, 3, 3],
                [1, 2, 2],
                [0, 1, 1],
                [1, 1, 1],
                1,
            ),
            (
                [2, 4, 1, 11, 5],
                [4, 2, 1, 3, 2],
                [1, 2, 3],
                [0, 2, 1],
                [1, 2, 1],
                2,
            ),
            (
                [1, 2, 1, 3, 3],
                [3, 2, 1, 3, 3],
                [1, 1, 1],
                [0, 3, 4],
                [1, 1, 1],
                1,
            ),
            (
                [2, 3, 4, 5, 6],
                [5, 3, 2, 3, 2],
                [2, 1, 2],
                [1, 1, 0],
                [1, 1, 2],
                1,
            ),
            (
                [2, 5, 1, 30, 40],
                [3, 5, 1, 1, 1],
                [1, 1, 1],
                [0, 0, 0],
                [1, 1, 1],
                1,
            ),
            (
                [9, 6, 1, 2, 300],
                [6, 2, 1, 1, 3],
                [1, 1, 1],
                [0, 0, 1],
                [1, 1, 1],
                3,
            ),
            (
                [2, 4, 1, 1, 50],
                [4, 2, 1, 1, 5],
                [1, 1, 2],
                [0, 0, 2],
                [1, 1, 1],
                2,
            ),
        ];
        for &(xs, ws, stride, padding, dilation, groups) in cases {
            let options = ConvOptions::new(stride, padding, dilation, groups);
            let o: [usize; 3] = core::array::from_fn(|i| {
                (xs[i + 2] + 2 * padding[i] - dilation[i] * (ws[i + 2] - 1) - 1) / stride[i] + 1
            });
            let ys = [xs[0], ws[0], o[0], o[1], o[2]];
            let x = seeded(xs.iter().product(), 3);
            let dy = seeded(ys.iter().product(), 5);
            let expected = naive(&x, xs, &dy, ws, o, &options);
            let got = conv3d_weight_backward(
                FlexTensor::from_data(TensorData::new(x.clone(), xs.to_vec())),
                FlexTensor::from_data(TensorData::new(
                    vec![0.0f32; ws.iter().product()],
                    ws.to_vec(),
                )),
                FlexTensor::from_data(TensorData::new(dy.clone(), ys.to_vec())),
                &options,
            );
            assert_eq!(got.layout().shape().to_vec(), ws.to_vec());
            let got: Vec<f32> = got.into_data().to_vec().unwrap();

            // The 2-D (and 1-D) entry points reshape onto the 3-D one.
            if xs[2] == 1 && ws[2] == 1 {
                let drop_d = |s: [usize; 5]| vec![s[0], s[1], s[3], s[4]];
                let got2 = conv2d_weight_backward(
                    FlexTensor::from_data(TensorData::new(x.clone(), drop_d(xs))),
                    FlexTensor::from_data(TensorData::new(
                        vec![0.0f32; ws.iter().product()],
                        drop_d(ws),
                    )),
                    FlexTensor::from_data(TensorData::new(dy.clone(), drop_d(ys))),
                    &ConvOptions::new(
                        [stride[1], stride[2]],
                        [padding[1], padding[2]],
                        [dilation[1], dilation[2]],
                        groups,
                    ),
                );
                assert_eq!(got2.layout().shape().to_vec(), drop_d(ws));
                assert_eq!(got2.into_data().to_vec::<f32>().unwrap(), got);
            }
            if xs[2] == 1 && xs[3] == 1 && ws[2] == 1 && ws[3] == 1 {
                let only_w = |s: [usize; 5]| vec![s[0], s[1], s[4]];
                let got1 = conv1d_weight_backward(
                    FlexTensor::from_data(TensorData::new(x.clone(), only_w(xs))),
                    FlexTensor::from_data(TensorData::new(
                        vec![0.0f32; ws.iter().product()],
                        only_w(ws),
                    )),
                    FlexTensor::from_data(TensorData::new(dy.clone(), only_w(ys))),
                    &ConvOptions::new([stride[2]], [padding[2]], [dilation[2]], groups),
                );
                assert_eq!(got1.layout().shape().to_vec(), only_w(ws));
                assert_eq!(got1.into_data().to_vec::<f32>().unwrap(), got);
            }
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (g - e).abs() < 1e-3 * (1.0 + e.abs()),
                    "{xs:?} {ws:?} [{i}]: {g} vs {e}"
                );
            }

            // f64 takes the same path.
            let got64 = conv3d_weight_backward(
                FlexTensor::from_data(TensorData::new(
                    x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    xs.to_vec(),
                )),
                FlexTensor::from_data(TensorData::new(
                    vec![0.0f64; ws.iter().product()],
                    ws.to_vec(),
                )),
                FlexTensor::from_data(TensorData::new(
                    dy.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    ys.to_vec(),
                )),
                &options,
            );
            let got64: Vec<f64> = got64.into_data().to_vec().unwrap();
            for (g, e) in got64.iter().zip(&expected) {
                assert!((*g as f32 - e).abs() < 1e-4 * (1.0 + e.abs()));
            }
        }
    }
}
