//! Colour segmentation: background estimate, per-pixel palette colour and
//! coverage, connected components.
//!
//! Every pixel is modelled as a blend `bg + alpha * (colour - bg)` of the
//! background and one palette colour (which is exactly what anti-aliased
//! edges are). The colour with the smallest residual wins; a pixel is
//! foreground when it is mostly that colour (`alpha >= 0.5`) and the blend
//! explains it (residual below [`MAX_RESIDUAL`]). This keeps edge pixels, e.g.
//! red blended into white, from being read as another colour (pink).

use image::RgbImage;

use crate::Colour;

/// Largest RGB distance between a pixel and its best blend for it to count.
pub(crate) const MAX_RESIDUAL: f32 = 60.0;
/// Pixels closer than this (RGB distance) to the background are background.
const BACKGROUND_RADIUS: f32 = 20.0;
/// Marks a pixel without a palette colour.
pub(crate) const NONE: u8 = u8::MAX;

/// Per-pixel colour analysis of an image.
#[derive(Debug, Clone)]
pub(crate) struct Segmentation {
    /// Image width.
    pub width: usize,
    /// Image height.
    pub height: usize,
    /// Estimated background colour.
    pub background: [f32; 3],
    /// Index into [`Colour::ALL`] of the best blend, or [`NONE`].
    pub colour: Vec<u8>,
    /// Fraction of that colour in the blend, in `[0, 1]`.
    pub alpha: Vec<f32>,
}

impl Segmentation {
    /// Whether pixel `i` is foreground.
    pub fn is_foreground(&self, i: usize) -> bool {
        self.colour[i] != NONE && self.alpha[i] >= 0.5
    }
}

/// The per-channel interquartile mean of the pixels on the image border:
/// robust to objects touching the border, and centred on two-valued textures
/// such as a checkerboard (where a median would pick one of the two values).
pub(crate) fn estimate_background(image: &RgbImage) -> [f32; 3] {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let ring = (w.min(h) / 64).max(1);
    let raw = image.as_raw();
    let mut channels: [Vec<u8>; 3] = Default::default();
    for y in 0..h {
        let columns: Vec<usize> = if y < ring || y + ring >= h {
            (0..w).collect()
        } else {
            (0..ring.min(w))
                .chain(w.saturating_sub(ring).max(ring)..w)
                .collect()
        };
        for x in columns {
            let i = 3 * (y * w + x);
            channels[0].push(raw[i]);
            channels[1].push(raw[i + 1]);
            channels[2].push(raw[i + 2]);
        }
    }
    channels.map(|mut c| {
        if c.is_empty() {
            return 0.0;
        }
        c.sort_unstable();
        let mid = &c[c.len() / 4..(3 * c.len()).div_ceil(4).max(c.len() / 4 + 1)];
        mid.iter().map(|&v| f32::from(v)).sum::<f32>() / mid.len() as f32
    })
}

/// Segments an image by palette colour against its estimated background.
pub(crate) fn segment(image: &RgbImage) -> Segmentation {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let bg = estimate_background(image);
    let palette: Vec<[f32; 4]> = Colour::ALL
        .iter()
        .map(|c| {
            let [r, g, b] = c.rgb().map(f32::from);
            let e = [r - bg[0], g - bg[1], b - bg[2]];
            [e[0], e[1], e[2], e[0] * e[0] + e[1] * e[1] + e[2] * e[2]]
        })
        .collect();
    let mut colour = vec![NONE; w * h];
    let mut alpha = vec![0.0_f32; w * h];
    let raw = image.as_raw();
    for i in 0..w * h {
        let d0 = f32::from(raw[3 * i]) - bg[0];
        let d1 = f32::from(raw[3 * i + 1]) - bg[1];
        let d2 = f32::from(raw[3 * i + 2]) - bg[2];
        if d0 * d0 + d1 * d1 + d2 * d2 < BACKGROUND_RADIUS * BACKGROUND_RADIUS {
            continue;
        }
        let mut best = (f32::MAX, NONE, 0.0);
        for (ci, e) in palette.iter().enumerate() {
            if e[3] < 1.0 {
                continue;
            }
            let a = ((d0 * e[0] + d1 * e[1] + d2 * e[2]) / e[3]).clamp(0.0, 1.0);
            let (r0, r1, r2) = (d0 - a * e[0], d1 - a * e[1], d2 - a * e[2]);
            let r = r0 * r0 + r1 * r1 + r2 * r2;
            if r < best.0 {
                best = (r, ci as u8, a);
            }
        }
        if best.0 <= MAX_RESIDUAL * MAX_RESIDUAL {
            colour[i] = best.1;
            alpha[i] = best.2;
        }
    }
    Segmentation {
        width: w,
        height: h,
        background: bg,
        colour,
        alpha,
    }
}

/// A connected set of foreground pixels of one colour.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Component {
    /// Its palette colour.
    pub colour: Colour,
    /// Number of foreground pixels.
    pub area: usize,
    /// Pixel bounding box `[x_min, y_min, x_max, y_max]`, inclusive.
    pub bbox: [usize; 4],
}

/// Components of at least `min_area` pixels, and each pixel's component
/// index (`u32::MAX` for none).
pub(crate) fn components(seg: &Segmentation, min_area: usize) -> (Vec<Component>, Vec<u32>) {
    let (w, h) = (seg.width, seg.height);
    let mut id = vec![u32::MAX; w * h];
    let mut visited = vec![false; w * h];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    let mut members = Vec::new();
    for start in 0..w * h {
        if visited[start] || !seg.is_foreground(start) {
            continue;
        }
        let c = seg.colour[start];
        visited[start] = true;
        stack.push(start);
        members.clear();
        let mut bbox = [usize::MAX, usize::MAX, 0, 0];
        while let Some(i) = stack.pop() {
            members.push(i);
            let (x, y) = (i % w, i / w);
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x),
                bbox[3].max(y),
            ];
            for dy in -1_i64..=1 {
                for dx in -1_i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if !visited[j] && seg.is_foreground(j) && seg.colour[j] == c {
                        visited[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if members.len() >= min_area {
            let k = found.len() as u32;
            for &i in &members {
                id[i] = k;
            }
            let colour = Colour::ALL
                .get(usize::from(c))
                .copied()
                .unwrap_or(Colour::Red);
            found.push(Component {
                colour,
                area: members.len(),
                bbox,
            });
        }
    }
    (found, id)
}

/// Soft coverage of one component over its bounding box grown by `margin`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SoftMask {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Row-major coverage in `[0, 1]`.
    pub data: Vec<f32>,
}

/// The component's pixels at their blend fraction, plus the unassigned edge
/// pixels touching it that blend the same colour (not farther ones, which
/// are background texture rather than edge).
pub(crate) fn soft_mask(
    seg: &Segmentation,
    ids: &[u32],
    k: usize,
    comp: &Component,
    margin: usize,
) -> SoftMask {
    let x0 = comp.bbox[0].saturating_sub(margin);
    let y0 = comp.bbox[1].saturating_sub(margin);
    let x1 = (comp.bbox[2] + margin + 1).min(seg.width);
    let y1 = (comp.bbox[3] + margin + 1).min(seg.height);
    let colour = Colour::ALL
        .iter()
        .position(|c| *c == comp.colour)
        .unwrap_or(0) as u8;
    let mut data = Vec::with_capacity((x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * seg.width + x;
            let edge = || {
                ids[i] == u32::MAX
                    && seg.colour[i] == colour
                    && (y.saturating_sub(1)..(y + 2).min(seg.height)).any(|ny| {
                        (x.saturating_sub(1)..(x + 2).min(seg.width))
                            .any(|nx| ids[ny * seg.width + nx] == k as u32)
                    })
            };
            let mine = ids[i] == k as u32 || edge();
            data.push(if mine { seg.alpha[i] } else { 0.0 });
        }
    }
    SoftMask {
        x0,
        y0,
        width: x1 - x0,
        height: y1 - y0,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Background, Object, Scene, Shape, Size, Texture, render};

    #[test]
    fn edges_of_red_on_white_stay_red() {
        let scene = Scene {
            background: Background::White,
            texture: Texture::Noise { seed: 1 },
            objects: vec![Object {
                shape: Shape::Circle,
                colour: Colour::Red,
                size: Size::Large,
                centre: [0.5, 0.5],
            }],
        };
        let seg = segment(&render(&scene, 64));
        let red = Colour::ALL.iter().position(|c| *c == Colour::Red).unwrap() as u8;
        let stray: Vec<(u8, f32)> = (0..seg.colour.len())
            .filter(|&i| seg.colour[i] != NONE && seg.colour[i] != red)
            .map(|i| (seg.colour[i], seg.alpha[i]))
            .collect();
        // Faint edge pixels may fit another colour's blend; never as foreground.
        assert!(stray.iter().all(|s| s.1 < 0.5), "{stray:?}");
        let (comps, _) = components(&seg, 10);
        assert_eq!(comps.len(), 1);
        let expected = std::f32::consts::PI * (0.16 * 64.0_f32).powi(2);
        assert!(
            (comps[0].area as f32 - expected).abs() < 0.05 * expected,
            "{}",
            comps[0].area
        );
    }

    #[test]
    fn background_is_the_border_median() {
        let img = RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
        assert_eq!(estimate_background(&img), [1.0, 2.0, 3.0]);
        assert_eq!(estimate_background(&RgbImage::new(0, 0)), [0.0; 3]);
    }
}
