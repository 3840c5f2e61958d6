//! Polygon rasterisation with exact anti-aliasing, and polygon moments.
//!
//! Coverage is supersampled: each pixel row is cut into [`SUB_ROWS`]
//! scanlines, and along a scanline the covered length is exact, so this is
//! at least as good as rendering at 8x and box-downsampling, at the cost of
//! one pass over the polygon's edges per scanline.

/// Scanlines per pixel row.
pub(crate) const SUB_ROWS: usize = 8;

/// Fraction of each pixel a polygon covers, over the polygon's pixel bounding box.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Coverage {
    /// First column of the box.
    pub x0: usize,
    /// First row of the box.
    pub y0: usize,
    /// Columns in the box.
    pub width: usize,
    /// Rows in the box.
    pub height: usize,
    /// Row-major coverage in `[0, 1]`.
    pub data: Vec<f32>,
}

#[cfg(test)]
impl Coverage {
    /// Coverage of pixel `(x, y)` in image coordinates (0 outside the box).
    pub fn at(&self, x: usize, y: usize) -> f32 {
        if x < self.x0 || y < self.y0 || x >= self.x0 + self.width || y >= self.y0 + self.height {
            return 0.0;
        }
        self.data[(y - self.y0) * self.width + (x - self.x0)]
    }
}

/// Rasterises a simple polygon (pixel units, y down) clipped to `width x height`.
pub(crate) fn rasterize(poly: &[[f32; 2]], width: usize, height: usize) -> Coverage {
    let empty = Coverage {
        x0: 0,
        y0: 0,
        width: 0,
        height: 0,
        data: Vec::new(),
    };
    if poly.len() < 3 || poly.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return empty;
    }
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in poly {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let clamp = |v: f32, max: usize| v.clamp(0.0, max as f32) as usize;
    let (x0, x1) = (clamp(lo[0].floor(), width), clamp(hi[0].ceil(), width));
    let (y0, y1) = (clamp(lo[1].floor(), height), clamp(hi[1].ceil(), height));
    if x1 <= x0 || y1 <= y0 {
        return empty;
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let mut data = vec![0.0_f32; w * h];
    let mut xs: Vec<f32> = Vec::with_capacity(poly.len());
    // Fully covered cells of a span go through a difference array, so a
    // scanline costs O(edges), not O(width).
    let mut delta = vec![0.0_f32; w + 1];
    let weight = 1.0 / SUB_ROWS as f32;
    for row in 0..h {
        let out = &mut data[row * w..(row + 1) * w];
        delta.fill(0.0);
        for k in 0..SUB_ROWS {
            let y = (y0 + row) as f32 + (k as f32 + 0.5) * weight;
            xs.clear();
            for (i, a) in poly.iter().enumerate() {
                let b = poly[(i + 1) % poly.len()];
                if (a[1] <= y) != (b[1] <= y) {
                    xs.push(a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
                }
            }
            xs.sort_unstable_by(f32::total_cmp);
            for pair in xs.chunks_exact(2) {
                let xa = (pair[0] - x0 as f32).max(0.0);
                let xb = (pair[1] - x0 as f32).min(w as f32);
                if xb <= xa {
                    continue;
                }
                let (i0, i1) = (xa as usize, (xb as usize).min(w - 1));
                if i0 == i1 {
                    out[i0] += (xb - xa) * weight;
                } else {
                    out[i0] += (i0 as f32 + 1.0 - xa) * weight;
                    out[i1] += (xb - i1 as f32) * weight;
                    delta[i0 + 1] += weight;
                    delta[i1] -= weight;
                }
            }
        }
        let mut run = 0.0_f32;
        for (cell, d) in out.iter_mut().zip(&delta) {
            run += d;
            *cell += run;
        }
    }
    for v in &mut data {
        *v = v.min(1.0);
    }
    Coverage {
        x0,
        y0,
        width: w,
        height: h,
        data,
    }
}

/// Area, centroid and per-axis variance of a filled simple polygon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moments {
    /// Area (always positive).
    pub area: f32,
    /// Centre of mass.
    pub centroid: [f32; 2],
    /// Variance of x and of y over the filled area.
    pub variance: [f32; 2],
}

/// Exact moments of a simple polygon by Green's theorem.
pub(crate) fn polygon_moments(poly: &[[f32; 2]]) -> Moments {
    let (mut a, mut cx, mut cy, mut ixx, mut iyy) = (0.0_f64, 0.0, 0.0, 0.0, 0.0);
    for (i, p) in poly.iter().enumerate() {
        let q = poly[(i + 1) % poly.len()];
        let (x0, y0, x1, y1) = (
            f64::from(p[0]),
            f64::from(p[1]),
            f64::from(q[0]),
            f64::from(q[1]),
        );
        let cross = x0 * y1 - x1 * y0;
        a += cross;
        cx += (x0 + x1) * cross;
        cy += (y0 + y1) * cross;
        ixx += (x0 * x0 + x0 * x1 + x1 * x1) * cross;
        iyy += (y0 * y0 + y0 * y1 + y1 * y1) * cross;
    }
    if a.abs() < 1e-12 {
        return Moments {
            area: 0.0,
            centroid: [0.0; 2],
            variance: [0.0; 2],
        };
    }
    let area = a / 2.0;
    let (mx, my) = (cx / (6.0 * area), cy / (6.0 * area));
    let (vx, vy) = (ixx / (12.0 * area) - mx * mx, iyy / (12.0 * area) - my * my);
    Moments {
        area: area.abs() as f32,
        centroid: [mx as f32, my as f32],
        variance: [vx as f32, vy as f32],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_sums_to_area() {
        let tri = [[1.3, 0.7], [9.6, 2.2], [4.1, 8.9]];
        let cov = rasterize(&tri, 16, 16);
        let sum: f32 = cov.data.iter().sum();
        let area = polygon_moments(&tri).area;
        assert!((sum - area).abs() < 0.05 * area, "{sum} vs {area}");
    }

    #[test]
    fn pixel_aligned_square_is_exact() {
        let sq = [[2.0, 2.0], [5.0, 2.0], [5.0, 4.0], [2.0, 4.0]];
        let cov = rasterize(&sq, 8, 8);
        assert_eq!((cov.x0, cov.y0, cov.width, cov.height), (2, 2, 3, 2));
        assert!(cov.data.iter().all(|&v| (v - 1.0).abs() < 1e-5));
        assert_eq!(cov.at(1, 1), 0.0);
    }

    #[test]
    fn clipped_and_degenerate_polygons_are_safe() {
        let big = [[-5.0, -5.0], [50.0, -5.0], [50.0, 50.0], [-5.0, 50.0]];
        let cov = rasterize(&big, 4, 4);
        assert_eq!(cov.data.len(), 16);
        assert!(cov.data.iter().all(|&v| (v - 1.0).abs() < 1e-5));
        assert!(rasterize(&[[0.0, 0.0], [1.0, 1.0]], 4, 4).data.is_empty());
        assert!(
            rasterize(&[[f32::NAN, 0.0], [1.0, 1.0], [0.0, 2.0]], 4, 4)
                .data
                .is_empty()
        );
    }

    #[test]
    fn square_moments() {
        let m = polygon_moments(&[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]);
        assert!((m.area - 4.0).abs() < 1e-6);
        assert_eq!(m.centroid, [1.0, 1.0]);
        // Uniform on [0, 2]: variance 4 / 12.
        assert!((m.variance[0] - 1.0 / 3.0).abs() < 1e-6);
    }
}
