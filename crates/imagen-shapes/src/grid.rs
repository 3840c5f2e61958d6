//! Contact sheets: many images on one canvas, for looking at samples.

use image::{Rgb, RgbImage};

/// Lays images out row by row, `columns` to a row, each scaled up by an
/// integer nearest-neighbour factor to fill a `cell x cell` square as far as
/// it can (so a 64 px render sits at 4x next to a 256 px one), on dark grey
/// with `padding` pixels between cells.
///
/// ```
/// use image::RgbImage;
/// let sheet = imagen_shapes::contact_sheet(&[RgbImage::new(64, 64), RgbImage::new(256, 256)], 2, 256, 4);
/// assert_eq!(sheet.dimensions(), (2 * 256 + 3 * 4, 256 + 2 * 4));
/// ```
pub fn contact_sheet(images: &[RgbImage], columns: u32, cell: u32, padding: u32) -> RgbImage {
    let columns = columns.max(1);
    let rows = (images.len() as u32).div_ceil(columns);
    let side = |n: u32| n * cell + (n + 1) * padding;
    let mut sheet = RgbImage::from_pixel(
        side(columns.min(images.len() as u32)),
        side(rows),
        Rgb([40, 40, 40]),
    );
    for (k, img) in images.iter().enumerate() {
        let (col, row) = (k as u32 % columns, k as u32 / columns);
        let (ox, oy) = (
            padding + col * (cell + padding),
            padding + row * (cell + padding),
        );
        let scale = (cell / img.width().max(img.height()).max(1)).max(1);
        for (x, y, p) in img.enumerate_pixels() {
            for dy in 0..scale {
                for dx in 0..scale {
                    let (sx, sy) = (x * scale + dx, y * scale + dy);
                    if sx < cell && sy < cell {
                        sheet.put_pixel(ox + sx, oy + sy, *p);
                    }
                }
            }
        }
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_scaled_into_their_cell() {
        let img = RgbImage::from_pixel(2, 2, Rgb([200, 0, 0]));
        let sheet = contact_sheet(&[img], 3, 8, 1);
        assert_eq!(sheet.dimensions(), (10, 10));
        assert_eq!(sheet.get_pixel(8, 8).0, [200, 0, 0]);
        assert_eq!(sheet.get_pixel(0, 0).0, [40, 40, 40]);
        assert_eq!(contact_sheet(&[], 3, 8, 1).dimensions(), (1, 1));
    }
}
