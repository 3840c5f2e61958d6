//! Between tensors in `[-1, 1]` and `image` crate RGB images: conversion,
//! the resampling super-resolution stages use, grids and PNG files.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use image::{GrayImage, RgbImage};

use crate::PipelineError;
use crate::error::invalid;

/// Converts `[batch, 3, H, W]` in `[-1, 1]` to 8-bit RGB images:
/// `round(255 * clamp(x / 2 + 0.5, 0, 1))`, as diffusers' `pt_to_pil`.
/// A NaN or infinite value is an error naming the image and pixel, not a
/// black pixel.
pub fn tensor_to_images<B: Backend>(x: Tensor<B, 4>) -> Result<Vec<RgbImage>, PipelineError> {
    let [batch, channels, h, w] = x.dims();
    if channels != 3 {
        return Err(invalid(format!("expected 3 channels, got {channels}")));
    }
    let pixels = ((x / 2.0 + 0.5).clamp(0.0, 1.0) * 255.0)
        .round()
        .permute([0, 2, 3, 1])
        .into_data()
        .convert::<f32>();
    let values: Vec<f32> = pixels
        .to_vec()
        .map_err(|e| invalid(format!("reading pixels: {e:?}")))?;
    // NaN would otherwise clamp and cast to a black pixel, silently.
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let per = h * w * 3;
        return Err(invalid(format!(
            "image {} holds a non-finite value (NaN or infinity) at pixel ({}, {}): the sample diverged",
            i / per,
            (i % per) / 3 / w,
            (i % per) / 3 % w
        )));
    }
    let per_image = h * w * 3;
    Ok((0..batch)
        .map(|i| {
            let bytes = values[i * per_image..(i + 1) * per_image]
                .iter()
                .map(|&v| v as u8)
                .collect();
            RgbImage::from_raw(w as u32, h as u32, bytes).expect("sized to fit")
        })
        .collect())
}

/// Converts an RGB image to `[1, 3, H, W]` in `[-1, 1]`.
pub fn image_to_tensor<B: Backend>(image: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let values: Vec<f32> = image
        .as_raw()
        .iter()
        .map(|&v| v as f32 / 127.5 - 1.0)
        .collect();
    Tensor::<B, 4>::from_data(TensorData::new(values, [1, h, w, 3]), device).permute([0, 3, 1, 2])
}

/// Converts a grayscale mask to `[1, 1, H, W]` in `[0, 1]` (255 → 1).
pub fn mask_to_tensor<B: Backend>(mask: &GrayImage, device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let values: Vec<f32> = mask.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    Tensor::from_data(TensorData::new(values, [1, 1, h, w]), device)
}

/// Resizes `[batch, C, H, W]` to `size x size` by bilinear interpolation
/// with `align_corners = true` and no antialiasing: what diffusers'
/// `IFSuperResolutionPipeline` does to the previous stage's output.
pub fn resize<B: Backend>(x: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    resize_to(x, size, size)
}

/// [`resize`] to `height x width` ([`imagen_diffusion::upsample`], the
/// resize of super-resolution conditioning).
pub fn resize_to<B: Backend>(x: Tensor<B, 4>, height: usize, width: usize) -> Tensor<B, 4> {
    imagen_diffusion::upsample(x, height, width)
}

/// Tiles equally sized images `columns` to a row (the last row may be short).
pub fn grid(images: &[RgbImage], columns: usize) -> Result<RgbImage, PipelineError> {
    let first = images.first().ok_or_else(|| invalid("grid of no images"))?;
    let (w, h) = first.dimensions();
    if let Some(odd) = images.iter().find(|i| i.dimensions() != (w, h)) {
        return Err(invalid(format!(
            "grid images differ in size: {:?} and {:?}",
            (w, h),
            odd.dimensions()
        )));
    }
    let columns = columns.clamp(1, images.len());
    let rows = images.len().div_ceil(columns);
    let mut out = RgbImage::new(w * columns as u32, h * rows as u32);
    for (i, img) in images.iter().enumerate() {
        let (x, y) = ((i % columns) as u32 * w, (i / columns) as u32 * h);
        image::imageops::replace(&mut out, img, x as i64, y as i64);
    }
    Ok(out)
}

/// Writes `image` as a PNG file.
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<(), PipelineError> {
    let path = path.as_ref();
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| PipelineError::Image {
            path: path.to_path_buf(),
            source,
        })
}

fn open(path: &Path) -> Result<image::DynamicImage, PipelineError> {
    image::open(path).map_err(|source| PipelineError::Image {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads an image file as RGB.
pub fn load_rgb(path: impl AsRef<Path>) -> Result<RgbImage, PipelineError> {
    Ok(open(path.as_ref())?.to_rgb8())
}

/// Reads an image file as a grayscale mask.
pub fn load_mask(path: impl AsRef<Path>) -> Result<GrayImage, PipelineError> {
    Ok(open(path.as_ref())?.to_luma8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_flex::Flex;

    #[test]
    fn images_round_trip_through_tensors() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 100, 7]));
        let t = image_to_tensor::<Flex>(&img, &Default::default());
        assert_eq!(t.dims(), [1, 3, 3, 5]);
        assert_eq!(tensor_to_images(t).unwrap()[0], img);
    }

    #[test]
    fn grid_tiles_row_major() {
        let a = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 0]));
        let b = RgbImage::from_pixel(2, 2, image::Rgb([0, 0, 255]));
        let g = grid(&[a.clone(), b.clone(), a], 2).unwrap();
        assert_eq!(g.dimensions(), (4, 4));
        assert_eq!(g.get_pixel(3, 0), &image::Rgb([0, 0, 255]));
        assert_eq!(g.get_pixel(3, 3), &image::Rgb([0, 0, 0]));
    }
}

#[cfg(test)]
mod finite_tests {
    use super::*;
    use burn_flex::Flex;

    #[test]
    fn nan_is_an_error_naming_the_pixel_not_a_black_pixel() {
        let mut values = vec![0.0f32; 2 * 3 * 2 * 3];
        // Image 1, channel 0, row 1, column 2.
        values[18 + 5] = f32::NAN;
        let x = Tensor::<Flex, 4>::from_data(
            TensorData::new(values, [2, 3, 2, 3]),
            &Default::default(),
        );
        let err = tensor_to_images(x).unwrap_err().to_string();
        assert!(err.contains("image 1") && err.contains("(1, 2)"), "{err}");
        let ok = Tensor::<Flex, 4>::zeros([1, 3, 2, 3], &Default::default());
        assert_eq!(
            tensor_to_images(ok).unwrap()[0].get_pixel(0, 0).0,
            [128, 128, 128]
        );
    }
}
