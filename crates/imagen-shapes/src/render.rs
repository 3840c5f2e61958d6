//! The rasteriser: a [`Scene`] to an anti-aliased RGB image.

use image::RgbImage;

use crate::raster::rasterize;
use crate::texture::TEXTURE_CONTRAST;
use crate::{Object, Scene};

/// Draws a scene as a `size x size` image, anti-aliased by 8x scanline supersampling.
///
/// Colours blend in sRGB (a box filter), which is also what the scorer's
/// mixing model assumes at object edges.
///
/// ```
/// use imagen_shapes::{render, Background, Colour, Object, Scene, Shape, Size, Texture};
/// let scene = Scene {
///     background: Background::White,
///     texture: Texture::Plain,
///     objects: vec![Object { shape: Shape::Square, colour: Colour::Blue, size: Size::Large, centre: [0.5, 0.5] }],
/// };
/// let image = render(&scene, 64);
/// assert_eq!(image.get_pixel(32, 32).0, Colour::Blue.rgb());
/// assert_eq!(image.get_pixel(2, 2).0, Background::White.rgb());
/// ```
pub fn render(scene: &Scene, size: u32) -> RgbImage {
    let n = size as usize;
    let base = scene.background.rgb();
    let Some(pixels) = n.checked_mul(n).filter(|p| p.checked_mul(3).is_some()) else {
        // No machine can hold such an image; an empty one beats a panic.
        return RgbImage::new(0, 0);
    };
    let mut raw = base.repeat(pixels);
    if let Some(offsets) = scene.texture.raster(n) {
        // Backgrounds are grey: one lookup table serves all three channels.
        let steps = 2 * LEVELS + 1;
        let lut: Vec<u8> = (0..steps)
            .map(|k| {
                to_u8(
                    f32::from(base[0])
                        + TEXTURE_CONTRAST * (k as f32 - LEVELS as f32) / LEVELS as f32,
                )
            })
            .collect();
        let grey = base[0] == base[1] && base[1] == base[2];
        for (i, t) in offsets.iter().enumerate() {
            let k = ((t.clamp(-1.0, 1.0) + 1.0) * LEVELS as f32 + 0.5) as usize;
            if grey {
                let v = lut[k.min(steps - 1)];
                raw[3 * i] = v;
                raw[3 * i + 1] = v;
                raw[3 * i + 2] = v;
            } else {
                for c in 0..3 {
                    raw[3 * i + c] = to_u8(f32::from(base[c]) + TEXTURE_CONTRAST * t);
                }
            }
        }
    }
    for object in &scene.objects {
        let colour = object.colour.rgb().map(f32::from);
        let cov = rasterize(&pixel_outline(object, size), n, n);
        for row in 0..cov.height {
            for col in 0..cov.width {
                let c = cov.data[row * cov.width + col];
                if c > 0.0 {
                    let i = 3 * ((cov.y0 + row) * n + cov.x0 + col);
                    for k in 0..3 {
                        let v = f32::from(raw[i + k]);
                        raw[i + k] = to_u8(v + (colour[k] - v) * c);
                    }
                }
            }
        }
    }
    RgbImage::from_raw(size, size, raw).unwrap_or_default()
}

/// Texture offsets are quantised to this many steps each way (finer than one grey level).
const LEVELS: usize = 64;

/// Rounds and clamps to a byte.
fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// The object's outline in pixel coordinates of a `size x size` image.
pub(crate) fn pixel_outline(object: &Object, size: u32) -> Vec<[f32; 2]> {
    let n = size as f32;
    let scale = object.size.fraction() * n;
    let (cx, cy) = (object.centre[0] * n, object.centre[1] * n);
    object
        .shape
        .outline()
        .into_iter()
        .map(|p| [cx + p[0] * scale, cy + p[1] * scale])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Background, Colour, Shape, Size, Texture};

    fn one(shape: Shape, size: Size) -> Scene {
        Scene {
            background: Background::Black,
            texture: Texture::Plain,
            objects: vec![Object {
                shape,
                colour: Colour::Yellow,
                size,
                centre: [0.4, 0.6],
            }],
        }
    }

    #[test]
    fn object_area_scales_with_resolution() {
        for shape in Shape::ALL {
            let scene = one(shape, Size::Medium);
            let frac = |size: u32| {
                let img = render(&scene, size);
                // Red channel: 16 on the background, 245 inside, linear across edges.
                let covered: f32 = img
                    .pixels()
                    .map(|p| (f32::from(p.0[0]) - 16.0) / 229.0)
                    .sum();
                covered / (size * size) as f32
            };
            let (a, b) = (frac(64), frac(256));
            assert!((a - b).abs() < 0.02 * b, "{shape:?}: {a} vs {b}");
        }
    }

    #[test]
    fn zero_size_is_empty() {
        assert_eq!(render(&one(Shape::Star, Size::Small), 0).len(), 0);
    }
}
