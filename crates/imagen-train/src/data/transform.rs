//! Image preprocessing: centre square crop, resize, optional flip, CHW in [-1, 1].

use image::RgbImage;
use image::imageops::{FilterType, crop_imm, resize};

use super::DataError;

/// The training tensor of one image: `[3, resolution, resolution]`, channel
/// major (CHW), values `pixel / 127.5 - 1` in `[-1, 1]`.
///
/// The largest centred square is cut out, resized to `resolution` with a
/// triangle (bilinear) filter whose support widens when shrinking, so
/// downsampling is antialiased and never overshoots (torchvision's
/// `Resize(antialias=True)`), then mirrored left-right when `flip` is set.
/// A square image of the right size is used as it is.
///
/// ```
/// use image::{Rgb, RgbImage};
/// // 8x4 magenta with one black pixel at the left edge of the centre square.
/// let mut img = RgbImage::from_pixel(8, 4, Rgb([255, 0, 255]));
/// img.put_pixel(2, 0, Rgb([0, 0, 0]));
/// let x = imagen_train::data::prepare(&img, 4, false)?;
/// assert_eq!(x.len(), 3 * 4 * 4);
/// assert_eq!(x[0], -1.0); // red plane, top-left: the black pixel
/// assert_eq!((x[1], x[16 + 1], x[32 + 1]), (1.0, -1.0, 1.0)); // its neighbour: R, G, B
/// # Ok::<(), imagen_train::data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::EmptyImage`] for an image without pixels,
/// [`DataError::InvalidConfig`] for `resolution` zero.
pub fn prepare(image: &RgbImage, resolution: u32, flip: bool) -> Result<Vec<f32>, DataError> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(DataError::EmptyImage { width, height });
    }
    if resolution == 0 {
        return Err(DataError::invalid("resolution", "must be positive"));
    }
    let side = width.min(height);
    let square = crop_imm(image, (width - side) / 2, (height - side) / 2, side, side).to_image();
    let square = if side == resolution {
        square
    } else {
        resize(&square, resolution, resolution, FilterType::Triangle)
    };
    let r = resolution as usize;
    let mut out = vec![0.0f32; 3 * r * r];
    for (x, y, pixel) in square.enumerate_pixels() {
        let x = if flip { r - 1 - x as usize } else { x as usize };
        let at = y as usize * r + x;
        for (c, &value) in pixel.0.iter().enumerate() {
            out[c * r * r + at] = f32::from(value) / 127.5 - 1.0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn crops_the_centre_of_wide_and_tall_images() {
        // 6x2: columns 2 and 3 are the centre square, marked white.
        let mut wide = RgbImage::from_pixel(6, 2, Rgb([0, 0, 0]));
        let mut tall = RgbImage::from_pixel(2, 6, Rgb([0, 0, 0]));
        for i in 0..2 {
            for j in 2..4 {
                wide.put_pixel(j, i, Rgb([255, 255, 255]));
                tall.put_pixel(i, j, Rgb([255, 255, 255]));
            }
        }
        for img in [wide, tall] {
            let x = prepare(&img, 2, false).unwrap();
            assert!(x.iter().all(|&v| v == 1.0), "{x:?}");
        }
    }

    #[test]
    fn flips_left_right_only() {
        let mut img = RgbImage::from_pixel(3, 3, Rgb([0, 0, 0]));
        img.put_pixel(0, 1, Rgb([255, 0, 0]));
        let plain = prepare(&img, 3, false).unwrap();
        let flipped = prepare(&img, 3, true).unwrap();
        assert_eq!(plain[3], 1.0); // red plane, row 1, column 0
        assert_eq!(flipped[5], 1.0); // row 1, column 2
        assert_eq!(flipped.iter().filter(|&&v| v == 1.0).count(), 1);
    }

    #[test]
    fn resizes_to_the_requested_resolution_within_range() {
        let img = RgbImage::from_fn(37, 23, |x, y| Rgb([(x * 7) as u8, (y * 11) as u8, 200]));
        for resolution in [8, 23, 64] {
            let x = prepare(&img, resolution, true).unwrap();
            assert_eq!(x.len(), 3 * (resolution * resolution) as usize);
            assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn rejects_empty_images_and_zero_resolution() {
        let empty = RgbImage::new(0, 5);
        assert!(matches!(
            prepare(&empty, 4, false),
            Err(DataError::EmptyImage {
                width: 0,
                height: 5
            })
        ));
        assert!(prepare(&RgbImage::new(2, 2), 0, false).is_err());
    }
}
