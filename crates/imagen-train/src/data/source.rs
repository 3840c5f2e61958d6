//! The `ImageTextSource` trait: an indexed set of (image, caption) pairs.

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use super::DataError;

/// An indexed, read-only set of (image, caption) pairs.
///
/// Captions are separate from images so that the embedding cache can read
/// every caption without decoding a single image. Both must be pure functions
/// of the index: the [`DataLoader`](super::DataLoader)'s resumable order relies
/// on it.
pub trait ImageTextSource: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The caption of example `index`.
    fn caption(&self, index: usize) -> Result<String, DataError>;

    /// The image of example `index`, decoded to 8-bit RGB.
    ///
    /// Errors for which [`DataError::is_unreadable_example`] holds (missing
    /// file, corrupt image) are skipped by the loader; others stop it.
    fn image(&self, index: usize) -> Result<RgbImage, DataError>;
}

/// Forwards the trait through a pointer type, so `&S`, `Box<dyn ...>` and
/// `Arc<dyn ...>` are sources too (one dataset shared by loader and cache).
macro_rules! forward_source {
    ($($ptr:ty),*) => {$(
        impl<T: ImageTextSource + ?Sized> ImageTextSource for $ptr {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn caption(&self, index: usize) -> Result<String, DataError> {
                (**self).caption(index)
            }
            fn image(&self, index: usize) -> Result<RgbImage, DataError> {
                (**self).image(index)
            }
        }
    )*};
}

forward_source!(&T, Box<T>, Arc<T>);

/// Reads and decodes an image file (format from its content), dropping alpha.
pub(crate) fn read_image(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(DataError::io(path))?;
    let decoded = image::load_from_memory(&bytes).map_err(|source| DataError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(decoded.into_rgb8())
}

/// Item `index` of `items`, or [`DataError::IndexOutOfRange`].
pub(crate) fn item<T>(items: &[T], index: usize) -> Result<&T, DataError> {
    items.get(index).ok_or(DataError::IndexOutOfRange {
        index,
        len: items.len(),
    })
}
