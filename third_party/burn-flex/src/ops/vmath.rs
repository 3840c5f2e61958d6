//! Explicitly vectorized f32 `exp`, sigmoid and GELU (imagen's patch).
//!
//! LLVM does not vectorize the branchy scalar forms of these, and libm's
//! `erff` / `expf` are per-element calls, which made GELU and the attention
//! softmax a fifth of a U-Net forward. On x86-64 with AVX2 + FMA (detected
//! at run time) these kernels work on 8 lanes; elsewhere they fall back to
//! the same formulas in scalar code ([`exp_f32_vectorizable`],
//! [`erf_f32_vectorizable`]). The tail of a slice goes through the same
//! 8-lane kernel (padded), so a value's result never depends on where it
//! sits in the slice.

use crate::ops::unary::{erf_f32_vectorizable, exp_f32_vectorizable};

/// GELU (exact, erf form) of one value, scalar.
#[inline(always)]
pub(crate) fn gelu_f32_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32_vectorizable(x * core::f32::consts::FRAC_1_SQRT_2))
}

/// `x = gelu(x)` over a slice.
pub(crate) fn gelu_f32_in_place(data: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if avx2_fma() {
        // SAFETY: AVX2 and FMA are available (checked above).
        unsafe { x86::map_8(data, x86::gelu8) };
        return;
    }
    for x in data.iter_mut() {
        *x = gelu_f32_scalar(*x);
    }
}

/// `row[i] = exp(row[i] - max)`, returning the sum of the results.
pub(crate) fn exp_shifted_sum_f32(row: &mut [f32], max: f32) -> f32 {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if avx2_fma() {
        // SAFETY: AVX2 and FMA are available (checked above).
        return unsafe { x86::exp_shifted_sum(row, max) };
    }
    let mut sum = 0.0f32;
    for s in row.iter_mut() {
        let e = exp_f32_vectorizable(*s - max);
        *s = e;
        sum += e;
    }
    sum
}

/// `exp(x)` of one value, scalar: [`exp_f32_vectorizable`] extended to the
/// top of f32's range (`exp(x / 2)^2` above 88, +inf past 88.72).
#[inline(always)]
pub(crate) fn exp_f32_scalar(x: f32) -> f32 {
    if x > 88.0 {
        let half = exp_f32_vectorizable(x * 0.5);
        half * half
    } else {
        exp_f32_vectorizable(x)
    }
}

/// `1 / (1 + exp(-x))` of one value, scalar.
#[inline(always)]
pub(crate) fn sigmoid_f32_scalar(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32_scalar(-x))
}

/// `x = exp(x)` over a slice: within 2 ulp of libm, +inf past 88.72,
/// exactly 0 below -87.3 (libm's subnormal results there are flushed).
pub(crate) fn exp_f32_in_place(data: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if avx2_fma() {
        // SAFETY: AVX2 and FMA are available (checked above).
        unsafe { x86::map_8(data, x86::exp8_full) };
        return;
    }
    for x in data.iter_mut() {
        *x = exp_f32_scalar(*x);
    }
}

/// `x = 1 / (1 + exp(-x))` over a slice (SiLU's gate: a tenth of a CPU
/// training step went to libm's `expf` here).
pub(crate) fn sigmoid_f32_in_place(data: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if avx2_fma() {
        // SAFETY: AVX2 and FMA are available (checked above).
        unsafe { x86::map_8(data, x86::sigmoid8) };
        return;
    }
    for x in data.iter_mut() {
        *x = sigmoid_f32_scalar(*x);
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod x86 {
    use core::arch::x86_64::*;

    /// Applies an 8-lane kernel to a slice, the tail through a padded copy.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_8(data: &mut [f32], f: unsafe fn(__m256) -> __m256) {
        let mut chunks = data.chunks_exact_mut(8);
        for c in &mut chunks {
            unsafe {
                let v = _mm256_loadu_ps(c.as_ptr());
                _mm256_storeu_ps(c.as_mut_ptr(), f(v));
            }
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let mut buf = [0.0f32; 8];
            buf[..rest.len()].copy_from_slice(rest);
            unsafe {
                let v = _mm256_loadu_ps(buf.as_ptr());
                _mm256_storeu_ps(buf.as_mut_ptr(), f(v));
            }
            rest.copy_from_slice(&buf[..rest.len()]);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }

    /// Cephes `expf`: `x = n ln2 + r`, degree-6 polynomial in `r`, times
    /// `2^n`; exactly 0 below -87.3, NaN kept.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp8(x: __m256) -> __m256 {
        unsafe {
            const ROUND: f32 = 12_582_912.0;
            let xc = _mm256_min_ps(_mm256_max_ps(x, splat(-87.3)), splat(88.3));
            let t = _mm256_fmadd_ps(xc, splat(core::f32::consts::LOG2_E), splat(ROUND));
            let n = _mm256_sub_ps(t, splat(ROUND));
            let r = _mm256_fnmadd_ps(n, splat(0.693_359_4), xc);
            let r = _mm256_fnmadd_ps(n, splat(-2.121_944_4e-4), r);
            let mut p = splat(1.987_569_1e-4);
            p = _mm256_fmadd_ps(p, r, splat(1.398_2e-3));
            p = _mm256_fmadd_ps(p, r, splat(8.333_452e-3));
            p = _mm256_fmadd_ps(p, r, splat(4.166_579_6e-2));
            p = _mm256_fmadd_ps(p, r, splat(0.166_666_65));
            p = _mm256_fmadd_ps(p, r, splat(0.5));
            let r2 = _mm256_mul_ps(r, r);
            let y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), splat(1.0));
            let n_int = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B40_0000));
            let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                n_int,
                _mm256_set1_epi32(127),
            )));
            let e = _mm256_mul_ps(y, pow2);
            let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(-87.3));
            let e = _mm256_andnot_ps(under, e);
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            _mm256_blendv_ps(e, x, nan)
        }
    }

    /// [`exp8`] over f32's whole range: `exp(x / 2)^2` above 88 (where
    /// `exp8` clamps; within 5 ulp), which overflows to +inf past 88.72.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp8_full(x: __m256) -> __m256 {
        unsafe {
            let lo = exp8(x);
            let half = exp8(_mm256_mul_ps(x, splat(0.5)));
            let hi = _mm256_mul_ps(half, half);
            let top = _mm256_cmp_ps::<_CMP_GT_OQ>(x, splat(88.0));
            _mm256_blendv_ps(lo, hi, top)
        }
    }

    /// `1 / (1 + exp(-x))`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sigmoid8(x: __m256) -> __m256 {
        unsafe {
            let e = exp8_full(_mm256_sub_ps(_mm256_setzero_ps(), x));
            _mm256_div_ps(splat(1.0), _mm256_add_ps(splat(1.0), e))
        }
    }

    /// erf: Maclaurin series for |x| < 1, Abramowitz & Stegun 7.1.26 beyond
    /// (the scalar `erf_f32_vectorizable`, lane-wise).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn erf8(x: __m256) -> __m256 {
        unsafe {
            let x2 = _mm256_mul_ps(x, x);
            let mut s = splat(-1.229_055_5e-9);
            for c in [
                1.480_719_3e-8,
                -1.636_584_5e-7,
                1.646_211_4e-6,
                -1.492_565e-5,
                1.205_533_3e-4,
                -8.548_327e-4,
                5.223_977_6e-3,
                -2.686_617e-2,
                0.112_837_92,
                -0.376_126_4,
                core::f32::consts::FRAC_2_SQRT_PI,
            ] {
                s = _mm256_fmadd_ps(s, x2, splat(c));
            }
            let series = _mm256_mul_ps(x, s);

            let sign = _mm256_and_ps(x, splat(-0.0));
            let a = _mm256_andnot_ps(splat(-0.0), x);
            let t = _mm256_div_ps(
                splat(1.0),
                _mm256_fmadd_ps(splat(0.327_591_1), a, splat(1.0)),
            );
            let mut r = _mm256_fmadd_ps(splat(1.061_405_4), t, splat(-1.453_152));
            r = _mm256_fmadd_ps(r, t, splat(1.421_413_8));
            r = _mm256_fmadd_ps(r, t, splat(-0.284_496_74));
            r = _mm256_fmadd_ps(r, t, splat(0.254_829_6));
            let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x2));
            let tail = _mm256_fnmadd_ps(_mm256_mul_ps(r, t), e, splat(1.0));
            let tail = _mm256_or_ps(tail, sign);

            let small = _mm256_cmp_ps::<_CMP_LT_OQ>(a, splat(1.0));
            let out = _mm256_blendv_ps(tail, series, small);
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            _mm256_blendv_ps(out, x, nan)
        }
    }

    /// `0.5 x (1 + erf(x / sqrt 2))`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gelu8(x: __m256) -> __m256 {
        unsafe {
            let e = erf8(_mm256_mul_ps(x, splat(core::f32::consts::FRAC_1_SQRT_2)));
            _mm256_mul_ps(_mm256_mul_ps(splat(0.5), x), _mm256_add_ps(splat(1.0), e))
        }
    }

    /// `row[i] = exp(row[i] - max)`; returns the sum (8 partial sums, then
    /// the lanes in order).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shifted_sum(row: &mut [f32], max: f32) -> f32 {
        unsafe {
            let m = splat(max);
            let mut acc = _mm256_setzero_ps();
            let mut chunks = row.chunks_exact_mut(8);
            for c in &mut chunks {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), m));
                _mm256_storeu_ps(c.as_mut_ptr(), e);
                acc = _mm256_add_ps(acc, e);
            }
            let rest = chunks.into_remainder();
            if !rest.is_empty() {
                let mut buf = [f32::NEG_INFINITY; 8];
                buf[..rest.len()].copy_from_slice(rest);
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), m));
                _mm256_storeu_ps(buf.as_mut_ptr(), e);
                rest.copy_from_slice(&buf[..rest.len()]);
                acc = _mm256_add_ps(acc, e);
            }
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            lanes.iter().sum()
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    #[test]
    fn gelu_kernel_matches_the_exact_gelu() {
        // Every lane position and the padded tail: 8k + 5 values.
        let xs: Vec<f32> = (-40_003..=40_001).map(|i| i as f32 * 2.5e-4).collect();
        let mut got = xs.clone();
        super::gelu_f32_in_place(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let x64 = x as f64;
            let want = 0.5 * x64 * (1.0 + libm::erf(x64 / core::f64::consts::SQRT_2));
            assert!(
                (g as f64 - want).abs() <= 2e-7 * (1.0 + x64.abs()),
                "gelu({x}) = {g}, want {want}"
            );
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0];
        super::gelu_f32_in_place(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(special[1], f32::INFINITY);
        assert_eq!(special[3], 0.0);
    }

    #[test]
    fn exp_and_sigmoid_kernels_match_libm() {
        // Every lane position and the padded tail, across f32's range.
        let xs: Vec<f32> = (-2_003..=2_001).map(|i| i as f32 * 0.0447).collect();
        let mut e = xs.clone();
        super::exp_f32_in_place(&mut e);
        let mut s = xs.clone();
        super::sigmoid_f32_in_place(&mut s);
        for ((&x, &e), &s) in xs.iter().zip(&e).zip(&s) {
            let want = libm::exp(x as f64);
            if x < -87.3 {
                assert_eq!(e, 0.0, "exp({x})");
            } else if want > f32::MAX as f64 {
                assert_eq!(e, f32::INFINITY, "exp({x})");
            } else {
                // 2 ulp, 5 above 88 (squared half-argument exp).
                let ulps = if x > 88.0 { 6.0 } else { 3.0 };
                assert!(
                    (e as f64 - want).abs() <= ulps * f32::EPSILON as f64 * want,
                    "exp({x}) = {e}, want {want}"
                );
            }
            let want = 1.0 / (1.0 + libm::exp(-(x as f64)));
            assert!(
                (s as f64 - want).abs() <= 4.0 * f32::EPSILON as f64 * want + 1e-38,
                "sigmoid({x}) = {s}, want {want}"
            );
        }
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 88.7, 88.73];
        super::exp_f32_in_place(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(&special[1..3], &[f32::INFINITY, 0.0]);
        assert!(special[3].is_finite() && special[3] > 3.3e38);
        assert_eq!(special[4], f32::INFINITY);
        let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0];
        super::sigmoid_f32_in_place(&mut special);
        assert!(special[0].is_nan());
        assert_eq!(&special[1..], &[1.0, 0.0, 0.5]);
    }

    #[test]
    fn exp_kernel_matches_libm_and_zeroes_masked_scores() {
        let mut row: Vec<f32> = (0..1003).map(|i| -(i as f32) * 0.09).collect();
        row[7] = f32::NEG_INFINITY;
        let src = row.clone();
        let sum = super::exp_shifted_sum_f32(&mut row, 0.0);
        let mut want_sum = 0.0f64;
        for (&x, &e) in src.iter().zip(&row) {
            if x < -87.3 {
                // Below f32's normal range: exactly 0 by design.
                assert_eq!(e, 0.0, "exp({x})");
                continue;
            }
            let want = libm::exp(x as f64);
            want_sum += want;
            assert!(
                (e as f64 - want).abs() <= 2.0 * f32::EPSILON as f64 * want,
                "exp({x})"
            );
        }
        assert_eq!(row[7], 0.0);
        assert!((sum as f64 - want_sum).abs() <= 1e-6 * want_sum);
    }
}
