//! Shape recognition by template matching with fitted moments.
//!
//! Each shape's outline is scaled and shifted, separately along x and y, so
//! that its centroid and variance equal the component's; the shape whose
//! template overlaps the component's soft mask best (soft IoU) wins. Shapes
//! are axis-aligned by construction, so this separates circle (bbox fill
//! 0.79), square (1.0), triangle (0.5, mass low), diamond (0.5, mass
//! central), cross (0.56) and star (0.39, thin points) even at 10 px.

use crate::raster::{Moments, polygon_moments, rasterize};
use crate::segment::SoftMask;
use crate::{Footprint, Shape};

/// Below this best IoU the component is not recognised as any shape.
pub(crate) const MIN_IOU: f32 = 0.6;
/// A sharp template match this good skips the blurred ones.
const SHARP_ENOUGH: f32 = 0.9;
/// Blurred template variants tried besides the sharp one.
const MAX_BLUR_PASSES: usize = 2;
/// Variance (px², per axis) one `[1, 2, 1] / 4` blur pass adds.
const BLUR_PASS_VARIANCE: f32 = 0.5;
/// Larger masks are box-averaged down to at most this many blocks a side.
const MAX_GRID: usize = 32;

/// What the classifier makes of one component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Classified {
    /// The best shape, `None` when its IoU is below [`MIN_IOU`].
    pub shape: Option<Shape>,
    /// The best shape's IoU with the mask.
    pub confidence: f32,
    /// The shape's box centre and side, normalised by the image size.
    pub footprint: Footprint,
}

/// Classifies a soft mask from an image of `width x height` pixels.
pub(crate) fn classify(mask: &SoftMask, width: usize, height: usize) -> Classified {
    let (mut m0, mut sx, mut sy) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (i, &v) in mask.data.iter().enumerate() {
        let (x, y) = ((i % mask.width) as f64 + 0.5, (i / mask.width) as f64 + 0.5);
        m0 += f64::from(v);
        sx += f64::from(v) * x;
        sy += f64::from(v) * y;
    }
    let unknown = Classified {
        shape: None,
        confidence: 0.0,
        footprint: Footprint {
            centre: [0.5; 2],
            scale: 0.0,
        },
    };
    if m0 <= 1e-6 || mask.width == 0 {
        return unknown;
    }
    let (mx, my) = (sx / m0, sy / m0);
    let (mut vx, mut vy) = (0.0_f64, 0.0_f64);
    for (i, &v) in mask.data.iter().enumerate() {
        let (x, y) = ((i % mask.width) as f64 + 0.5, (i / mask.width) as f64 + 0.5);
        vx += f64::from(v) * (x - mx).powi(2);
        vy += f64::from(v) * (y - my).powi(2);
    }
    // A pixel is a unit square, not a point: add its own variance.
    let (vx, vy) = ((vx / m0 + 1.0 / 12.0) as f32, (vy / m0 + 1.0 / 12.0) as f32);
    let (mx, my) = (mx as f32, my as f32);

    let block = mask.width.max(mask.height).div_ceil(MAX_GRID).max(1);
    let (gw, gh) = (mask.width.div_ceil(block), mask.height.div_ceil(block));
    let mut observed = vec![0.0_f32; gw * gh];
    for (i, &v) in mask.data.iter().enumerate() {
        let (x, y) = (i % mask.width, i / mask.width);
        observed[(y / block) * gw + x / block] += v;
    }
    let cell = (block * block) as f32;
    for v in &mut observed {
        *v /= cell;
    }
    let observed_sum: f32 = observed.iter().sum();
    // Soft images (upsampled or generated) blur edges: try each template
    // sharp and blurred, with the blur's own variance taken out of the fit.
    // At block sizes above one pixel, pixel-scale blur no longer matters.
    let blur_levels = if block == 1 { MAX_BLUR_PASSES } else { 0 };
    let mut best = unknown;
    let mut template = vec![0.0_f32; gw * gh];
    let templates: Vec<(Shape, Vec<[f32; 2]>, Moments)> = Shape::ALL
        .into_iter()
        .map(|s| {
            let outline = s.outline();
            let m = polygon_moments(&outline);
            (s, outline, m)
        })
        .filter(|(_, _, m)| m.variance[0] > 0.0 && m.variance[1] > 0.0)
        .collect();
    for passes in 0..=blur_levels {
        // A sharp image matched sharply needs no blurred templates.
        if passes > 0 && best.confidence >= SHARP_ENOUGH {
            break;
        }
        for (shape, outline, t) in &templates {
            let (shape, t) = (*shape, *t);
            let blur_var = BLUR_PASS_VARIANCE * passes as f32;
            let (ex, ey) = (vx - blur_var, vy - blur_var);
            if ex < 0.5 * vx || ey < 0.5 * vy {
                continue;
            }
            let (kx, ky) = ((ex / t.variance[0]).sqrt(), (ey / t.variance[1]).sqrt());
            let placed: Vec<[f32; 2]> = outline
                .iter()
                .map(|p| {
                    let x = mx + (p[0] - t.centroid[0]) * kx;
                    let y = my + (p[1] - t.centroid[1]) * ky;
                    [x / block as f32, y / block as f32]
                })
                .collect();
            let cov = rasterize(&placed, gw, gh);
            template.fill(0.0);
            for row in 0..cov.height {
                let src = &cov.data[row * cov.width..(row + 1) * cov.width];
                let start = (cov.y0 + row) * gw + cov.x0;
                template[start..start + cov.width].copy_from_slice(src);
            }
            for _ in 0..passes {
                binomial_blur(&mut template, gw, gh);
            }
            let (mut inter, mut inside) = (0.0_f32, 0.0_f32);
            for (c, o) in template.iter().zip(&observed) {
                inter += c.min(*o);
                inside += c;
            }
            // Union = observed + template - intersection; template parts
            // outside the grid count through its exact area.
            let template_area = t.area * kx * ky / cell;
            let union = observed_sum + template_area.max(inside) - inter;
            let iou = if union > 0.0 { inter / union } else { 0.0 };
            if iou > best.confidence {
                let centre_x = (mask.x0 as f32 + mx - t.centroid[0] * kx) / width as f32;
                let centre_y = (mask.y0 as f32 + my - t.centroid[1] * ky) / height as f32;
                let scale = (kx * ky).sqrt() / ((width * height) as f32).sqrt();
                best = Classified {
                    shape: Some(shape),
                    confidence: iou,
                    footprint: Footprint {
                        centre: [centre_x, centre_y],
                        scale,
                    },
                };
            }
        }
    }
    if best.confidence < MIN_IOU {
        best.shape = None;
    }
    best
}

/// In-place separable `[1, 2, 1] / 4` blur with zero padding.
fn binomial_blur(grid: &mut [f32], w: usize, h: usize) {
    let mut tmp = vec![0.0_f32; grid.len()];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let left = if x > 0 { grid[i - 1] } else { 0.0 };
            let right = if x + 1 < w { grid[i + 1] } else { 0.0 };
            tmp[i] = 0.25 * left + 0.5 * grid[i] + 0.25 * right;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let up = if y > 0 { tmp[i - w] } else { 0.0 };
            let down = if y + 1 < h { tmp[i + w] } else { 0.0 };
            grid[i] = 0.25 * up + 0.5 * tmp[i] + 0.25 * down;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::Coverage;

    fn mask_of(shape: Shape, side: f32, at: [f32; 2], n: usize) -> SoftMask {
        let poly: Vec<[f32; 2]> = shape
            .outline()
            .iter()
            .map(|p| [at[0] + p[0] * side, at[1] + p[1] * side])
            .collect();
        let Coverage {
            x0,
            y0,
            width,
            height,
            data,
        } = rasterize(&poly, n, n);
        SoftMask {
            x0,
            y0,
            width,
            height,
            data,
        }
    }

    #[test]
    fn recognises_every_shape_at_10_and_80_px() {
        for shape in Shape::ALL {
            for (side, n) in [(10.24, 64), (81.9, 256)] {
                let at = [0.47 * n as f32 + 0.3, 0.52 * n as f32 + 0.7];
                let m = mask_of(shape, side, at, n);
                let c = classify(&m, n, n);
                assert_eq!(c.shape, Some(shape), "{shape:?} at {side}: {c:?}");
                let fp = c.footprint;
                assert!(
                    (fp.scale * n as f32 - side).abs() < 0.08 * side,
                    "{shape:?}: {fp:?}"
                );
                assert!(
                    (fp.centre[0] * n as f32 - at[0]).abs() < 0.5,
                    "{shape:?}: {fp:?}"
                );
                assert!(
                    (fp.centre[1] * n as f32 - at[1]).abs() < 0.5,
                    "{shape:?}: {fp:?}"
                );
            }
        }
    }

    #[test]
    fn empty_mask_is_unknown() {
        let m = SoftMask {
            x0: 0,
            y0: 0,
            width: 3,
            height: 3,
            data: vec![0.0; 9],
        };
        assert_eq!(classify(&m, 8, 8).shape, None);
    }
}
