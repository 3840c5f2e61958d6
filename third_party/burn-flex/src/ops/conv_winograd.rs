//! imagen's patch: 3x3, stride-1, undilated, ungrouped 2-D convolutions by
//! Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms
//! for Convolutional Neural Networks", 2016).
//!
//! Each 2x2 block of outputs comes from a 4x4 input patch. Transformed, the
//! convolution becomes 16 independent GEMMs over channels, `M_e = U_e V_e`
//! (`U_e`: `[c_out, c_in]`, the transformed weights; `V_e`: `[c_in, tiles]`,
//! the transformed patches), i.e. 16 multiplications per channel pair and
//! output tile instead of 36: 2.25x fewer flops than im2col. The transforms
//! only add, subtract and halve, so f32 results stay within a few ulp of the
//! direct sum (F(4x4, 3x3) saves more but loses accuracy, so it is not used).

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Output tiles (2x2 pixels each) per GEMM: the `n` of the 16 GEMMs.
const TILES_PER_BLOCK: usize = 256;

/// Smallest output, in tiles per image, worth the transforms: below it the
/// GEMMs are too narrow (an 8x8 output has 16 tiles).
const MIN_TILES: usize = 64;

/// Fewest input and output channels: the GEMMs' `k` and `m`.
const MIN_CHANNELS: usize = 16;

/// Whether the f32 convolution of `x_shape` by `w_shape` (NCDHW / OIDHW,
/// depth 1) runs as F(2x2, 3x3).
pub(crate) fn should_use_winograd(
    x_shape: &[usize],
    w_shape: &[usize],
    options: &ConvOptions<3>,
) -> bool {
    let [_, c_in, d, h, w] = [x_shape[0], x_shape[1], x_shape[2], x_shape[3], x_shape[4]];
    let [c_out, _, kd, kh, kw] = [w_shape[0], w_shape[1], w_shape[2], w_shape[3], w_shape[4]];
    if options.groups != 1
        || options.stride != [1, 1, 1]
        || options.dilation != [1, 1, 1]
        || options.padding[0] != 0
        || (d, kd, kh, kw) != (1, 1, 3, 3)
        || c_in < MIN_CHANNELS
        || c_out < MIN_CHANNELS
    {
        return false;
    }
    let g = Geometry::new(h, w, options.padding[1], options.padding[2]);
    g.tiles_h * g.tiles_w >= MIN_TILES
}

/// The F(2x2, 3x3) convolution of an NC1HW f32 input by an O I 1 3 3 weight,
/// stride 1, padding `options.padding[1..]`, plus `bias`.
pub(crate) fn conv3d_winograd_f32(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<3>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let bias = bias.map(|b| b.to_contiguous());
    let xs = x.layout().shape();
    let (batch, c_in, h, w) = (xs[0], xs[1], xs[3], xs[4]);
    let c_out = weight.layout().shape()[0];
    let geometry = Geometry::new(h, w, options.padding[1], options.padding[2]);
    let out = winograd_f32(
        x.storage(),
        weight.storage(),
        bias.as_ref().map(|b| b.storage()),
        batch,
        c_in,
        c_out,
        &geometry,
    );
    let shape = Shape::from(vec![batch, c_out, 1, geometry.out_h, geometry.out_w]);
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Input and output sizes, and the tiling of the output into 2x2 blocks.
struct Geometry {
    h: usize,
    w: usize,
    pad_h: usize,
    pad_w: usize,
    out_h: usize,
    out_w: usize,
    tiles_h: usize,
    tiles_w: usize,
}

impl Geometry {
    fn new(h: usize, w: usize, pad_h: usize, pad_w: usize) -> Self {
        let out_h = (h + 2 * pad_h).saturating_sub(2);
        let out_w = (w + 2 * pad_w).saturating_sub(2);
        Self {
            h,
            w,
            pad_h,
            pad_w,
            out_h,
            out_w,
            tiles_h: out_h.div_ceil(2),
            tiles_w: out_w.div_ceil(2),
        }
    }
}

/// `G` applied to three taps: `(g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)`.
fn g_taps([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// `U = G g G^T` for every (c_out, c_in) pair, stored as 16 row-major
/// `[c_out, c_in]` matrices, one per element of the 4x4 result.
fn transform_weights(w: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    let pairs = c_out * c_in;
    let mut u = vec![0.0f32; 16 * pairs];
    for (pair, g) in w.chunks_exact(9).enumerate() {
        // G g: 4x3, G along each of g's columns.
        let mut t = [[0.0f32; 3]; 4];
        for c in 0..3 {
            for (r, v) in g_taps([g[c], g[3 + c], g[6 + c]]).into_iter().enumerate() {
                t[r][c] = v;
            }
        }
        // (G g) G^T: G along each row.
        for (r, row) in t.into_iter().enumerate() {
            for (c, v) in g_taps(row).into_iter().enumerate() {
                u[(r * 4 + c) * pairs + pair] = v;
            }
        }
    }
    u
}

/// The transformed patches of one tile row `ty` (its `tiles_w` tiles) of
/// channel plane `src`, into `v` at columns `j0..j0 + tiles_w` of each of the
/// 16 `[c_in, n]` blocks (row `ci`).
///
/// Tile `tx` reads input columns `2 tx - pad_w ..+ 4`, so with `even[k]` and
/// `odd[k]` the input at columns `2k - pad_w` and `2k + 1 - pad_w` of a row,
/// the patch's columns are `even[k], odd[k], even[k + 1], odd[k + 1]`: the
/// column transform is four vector operations over `k`, and so is the row
/// transform over four such rows.
#[allow(clippy::too_many_arguments)]
fn transform_tile_row(
    v: &mut [f32],
    src: &[f32],
    g: &Geometry,
    ty: usize,
    ci: usize,
    stride_e: usize,
    n: usize,
    j0: usize,
    scratch: &mut RowScratch,
) {
    let tw = g.tiles_w;
    let RowScratch { even, odd, cols } = scratch;
    for (r, row_cols) in cols.iter_mut().enumerate() {
        let yy = (2 * ty + r) as isize - g.pad_h as isize;
        even.fill(0.0);
        odd.fill(0.0);
        if yy >= 0 && (yy as usize) < g.h {
            let row = &src[yy as usize * g.w..][..g.w];
            for (k, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
                let xe = (2 * k) as isize - g.pad_w as isize;
                if xe >= 0 && (xe as usize) < g.w {
                    *e = row[xe as usize];
                }
                if xe + 1 >= 0 && ((xe + 1) as usize) < g.w {
                    *o = row[(xe + 1) as usize];
                }
            }
        }
        let (e0, e1) = (&even[..tw], &even[1..=tw]);
        let (o0, o1) = (&odd[..tw], &odd[1..=tw]);
        let [c0, c1, c2, c3] = row_cols;
        for k in 0..tw {
            c0[k] = e0[k] - e1[k];
            c1[k] = o0[k] + e1[k];
            c2[k] = e1[k] - o0[k];
            c3[k] = o0[k] - o1[k];
        }
    }
    for c in 0..4 {
        let (r0, r1, r2, r3) = (&cols[0][c], &cols[1][c], &cols[2][c], &cols[3][c]);
        let at = |e: usize| e * stride_e + ci * n + j0;
        let (lo, hi) = v.split_at_mut(at(8 + c));
        let (v0, rest) = lo.split_at_mut(at(4 + c));
        let v0 = &mut v0[at(c)..][..tw];
        let v1 = &mut rest[..tw];
        let (v2, v3) = hi.split_at_mut(at(12 + c) - at(8 + c));
        let (v2, v3) = (&mut v2[..tw], &mut v3[..tw]);
        for k in 0..tw {
            v0[k] = r0[k] - r2[k];
            v1[k] = r1[k] + r2[k];
            v2[k] = r2[k] - r1[k];
            v3[k] = r1[k] - r3[k];
        }
    }
}

/// Per-worker buffers of [`transform_tile_row`] and [`write_tile_row`].
struct RowScratch {
    even: Vec<f32>,
    odd: Vec<f32>,
    /// `[row][column transform][tile]`.
    cols: [[Vec<f32>; 4]; 4],
}

impl RowScratch {
    fn new(tiles_w: usize) -> Self {
        let row = || vec![0.0f32; tiles_w];
        Self {
            even: vec![0.0; tiles_w + 1],
            odd: vec![0.0; tiles_w + 1],
            cols: core::array::from_fn(|_| core::array::from_fn(|_| row())),
        }
    }
}

/// Writes the outputs of one tile row of channel `co` from the transformed
/// products `m` (columns `j0..j0 + tiles_w` of each `[c_out, n]` block, row
/// `co`) into `out`, the (one or two) output rows it covers, plus `bias`.
#[allow(clippy::too_many_arguments)]
fn write_tile_row(
    out: &mut [f32],
    m: &[f32],
    g: &Geometry,
    co: usize,
    stride_e: usize,
    n: usize,
    j0: usize,
    bias: f32,
    scratch: &mut RowScratch,
) {
    let tw = g.tiles_w;
    let p = |e: usize| &m[e * stride_e + co * n + j0..][..tw];
    // A^T along the rows: t[0] = m0 + m1 + m2, t[1] = m1 - m2 - m3 per column.
    let [t0, t1, ..] = &mut scratch.cols;
    for c in 0..4 {
        let (m0, m1, m2, m3) = (p(c), p(4 + c), p(8 + c), p(12 + c));
        let (a, b) = (&mut t0[c], &mut t1[c]);
        for k in 0..tw {
            a[k] = m0[k] + m1[k] + m2[k];
            b[k] = m1[k] - m2[k] - m3[k];
        }
    }
    for (row, t) in out.chunks_exact_mut(g.out_w).zip([&*t0, &*t1]) {
        let (pairs, tail) = row.split_at_mut(g.out_w / 2 * 2);
        for (k, pair) in pairs.chunks_exact_mut(2).enumerate() {
            pair[0] = t[0][k] + t[1][k] + t[2][k] + bias;
            pair[1] = t[1][k] - t[2][k] - t[3][k] + bias;
        }
        if let Some(last) = tail.first_mut() {
            let k = tw - 1;
            *last = t[0][k] + t[1][k] + t[2][k] + bias;
        }
    }
}

/// A worker's transformed patches, products and row scratch.
#[derive(Default)]
struct Buffers {
    v: Vec<f32>,
    m: Vec<f32>,
    scratch: Option<RowScratch>,
}

fn winograd_f32(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    batch: usize,
    c_in: usize,
    c_out: usize,
    g: &Geometry,
) -> Vec<f32> {
    let u = transform_weights(w, c_out, c_in);
    let pairs = c_out * c_in;
    let (in_plane, out_plane) = (g.h * g.w, g.out_h * g.out_w);
    let mut output = vec![0.0f32; batch * c_out * out_plane];

    // One (image, block of whole tile rows) task: transform its patches,
    // 16 GEMMs, transform back into the output. Buffers are per worker.
    let rows_per_block = (TILES_PER_BLOCK / g.tiles_w).max(1);
    let blocks = g.tiles_h.div_ceil(rows_per_block);
    let task = |bufs: &mut Buffers, b: usize, block: usize, out: *mut f32| {
        let rows = block * rows_per_block..((block + 1) * rows_per_block).min(g.tiles_h);
        let n = rows.len() * g.tiles_w;
        let Buffers { v, m, scratch } = bufs;
        let scratch = scratch.get_or_insert_with(|| RowScratch::new(g.tiles_w));
        v.resize(16 * c_in * n, 0.0);
        m.resize(16 * c_out * n, 0.0);
        let image = &x[b * c_in * in_plane..(b + 1) * c_in * in_plane];
        for (ci, src) in image.chunks_exact(in_plane).enumerate() {
            for (i, ty) in rows.clone().enumerate() {
                transform_tile_row(v, src, g, ty, ci, c_in * n, n, i * g.tiles_w, scratch);
            }
        }
        for e in 0..16 {
            // Safety: `m`'s e-th `[c_out, n]` block is written by this GEMM only.
            unsafe {
                super::conv::gemm_f32(
                    &u[e * pairs..(e + 1) * pairs],
                    &v[e * c_in * n..(e + 1) * c_in * n],
                    c_out,
                    c_in,
                    n,
                    m[e * c_out * n..].as_mut_ptr(),
                    n as isize,
                    false,
                );
            }
        }
        // Output rows 2 * rows.start .. of image b: no other task writes them.
        let (first_row, last_row) = (2 * rows.start, (2 * rows.end).min(g.out_h));
        for co in 0..c_out {
            // Safety: the rows of plane co this task covers, disjoint from
            // every other task's.
            let plane_rows = unsafe {
                core::slice::from_raw_parts_mut(
                    out.add((b * c_out + co) * out_plane + first_row * g.out_w),
                    (last_row - first_row) * g.out_w,
                )
            };
            let bias = bias.map_or(0.0, |bias| bias[co]);
            for (i, rows_out) in plane_rows.chunks_mut(2 * g.out_w).enumerate() {
                write_tile_row(
                    rows_out,
                    m,
                    g,
                    co,
                    c_out * n,
                    n,
                    i * g.tiles_w,
                    bias,
                    scratch,
                );
            }
        }
    };

    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        let dst = crate::ops::SendMutPtr::new(output.as_mut_ptr());
        (0..batch * blocks)
            .into_par_iter()
            .for_each_init(Buffers::default, |bufs, i| {
                task(bufs, i / blocks, i % blocks, unsafe { dst.ptr_add(0) })
            });
    }
    #[cfg(not(feature = "rayon"))]
    {
        let dst = output.as_mut_ptr();
        let mut bufs = Buffers::default();
        for i in 0..batch * blocks {
            task(&mut bufs, i / blocks, i % blocks, dst);
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::tests::seeded_vec_f32;
    use alloc::vec;

    /// The direct sum, in f64.
    #[allow(clippy::too_many_arguments)]
    fn direct(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        batch: usize,
        c_in: usize,
        c_out: usize,
        g: &Geometry,
    ) -> Vec<f32> {
        let mut out = vec![0.0f32; batch * c_out * g.out_h * g.out_w];
        for b in 0..batch {
            for co in 0..c_out {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        let mut s = bias.map_or(0.0, |b| f64::from(b[co]));
                        for ci in 0..c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let iy = (oy + ky) as isize - g.pad_h as isize;
                                    let ix = (ox + kx) as isize - g.pad_w as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x
                                        [((b * c_in + ci) * g.h + iy as usize) * g.w + ix as usize];
                                    let wv = w[((co * c_in + ci) * 3 + ky) * 3 + kx];
                                    s += f64::from(xv) * f64::from(wv);
                                }
                            }
                        }
                        out[((b * c_out + co) * g.out_h + oy) * g.out_w + ox] = s as f32;
                    }
                }
            }
        }
        out
    }

    /// Odd and even sizes, paddings 0-2, tiles at every border, several
    /// blocks per image, rows wider than a block, with and without bias: within 1e-5 of the f64 sum
    /// (outputs are O(1)).
    #[test]
    fn winograd_matches_direct_sum() {
        for (batch, c_in, c_out, h, w, pad_h, pad_w, with_bias) in [
            (2, 16, 16, 16, 16, 1, 1, true),
            (1, 17, 20, 19, 13, 1, 1, false),
            (2, 16, 24, 9, 22, 0, 0, true),
            (1, 16, 16, 5, 30, 2, 1, true),
            (1, 32, 16, 21, 21, 1, 2, false),
            (2, 16, 16, 40, 40, 1, 1, true),
            (1, 16, 16, 4, 520, 1, 1, true),
        ] {
            let g = Geometry::new(h, w, pad_h, pad_w);
            let x = seeded_vec_f32(batch * c_in * h * w, 1);
            let wt: Vec<f32> = seeded_vec_f32(c_out * c_in * 9, 2)
                .into_iter()
                .map(|v| v / (c_in as f32 * 9.0).sqrt())
                .collect();
            let bias = seeded_vec_f32(c_out, 3);
            let bias = with_bias.then_some(bias.as_slice());
            let got = winograd_f32(&x, &wt, bias, batch, c_in, c_out, &g);
            let want = direct(&x, &wt, bias, batch, c_in, c_out, &g);
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                err <= 1e-5,
                "{c_in}->{c_out} {h}x{w} pad ({pad_h},{pad_w}): max error {err}"
            );
        }
    }

    #[test]
    fn only_3x3_stride_1_convolutions_with_enough_tiles() {
        let opts = |stride, padding, dilation, groups| {
            ConvOptions::new(
                [1, stride, stride],
                [0, padding, padding],
                [1, dilation, dilation],
                groups,
            )
        };
        let x = [2, 64, 1, 32, 32];
        let w = [64, 64, 1, 3, 3];
        assert!(should_use_winograd(&x, &w, &opts(1, 1, 1, 1)));
        assert!(!should_use_winograd(&x, &w, &opts(2, 1, 1, 1)));
        assert!(!should_use_winograd(&x, &w, &opts(1, 1, 2, 1)));
        assert!(!should_use_winograd(
            &x,
            &[64, 32, 1, 3, 3],
            &opts(1, 1, 1, 2)
        ));
        assert!(!should_use_winograd(
            &x,
            &[64, 64, 1, 5, 5],
            &opts(1, 2, 1, 1)
        ));
        assert!(!should_use_winograd(
            &[2, 64, 1, 8, 8],
            &w,
            &opts(1, 1, 1, 1)
        ));
        assert!(!should_use_winograd(
            &[2, 3, 1, 32, 32],
            &[64, 3, 1, 3, 3],
            &opts(1, 1, 1, 1)
        ));
    }
}
