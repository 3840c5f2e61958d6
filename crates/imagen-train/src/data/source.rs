//! The `ImageTextSource` trait: an indexed set of (image, caption) pairs.

use std::path::{Path, PathBuf};
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

/// Implements the trait by forwarding to what `|$s| $inner` reaches: the
/// pointee of `&S`, `Box<dyn ...>` and `Arc<dyn ...>` (one dataset shared by
/// loader and cache), or the [`ImageFiles`] a file-backed dataset holds.
macro_rules! forward_source {
    ($([$($generics:tt)*] $ty:ty => |$s:ident| $inner:expr;)*) => {$(
        impl<$($generics)*> $crate::data::ImageTextSource for $ty {
            fn len(&self) -> usize {
                let $s = self;
                $crate::data::ImageTextSource::len(&$inner)
            }
            fn caption(&self, index: usize) -> Result<String, $crate::data::DataError> {
                let $s = self;
                $crate::data::ImageTextSource::caption(&$inner, index)
            }
            fn image(&self, index: usize) -> Result<image::RgbImage, $crate::data::DataError> {
                let $s = self;
                $crate::data::ImageTextSource::image(&$inner, index)
            }
        }
    )*};
}
pub(crate) use forward_source;

forward_source! {
    [T: ImageTextSource + ?Sized] &T => |s| **s;
    [T: ImageTextSource + ?Sized] Box<T> => |s| **s;
    [T: ImageTextSource + ?Sized] Arc<T> => |s| **s;
}

/// Image files with their captions, in order: what [`FolderDataset`] and
/// [`JsonlDataset`] list, and the one reader of both.
///
/// [`FolderDataset`]: super::FolderDataset
/// [`JsonlDataset`]: super::JsonlDataset
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageFiles(pub(crate) Vec<(PathBuf, String)>);

impl ImageFiles {
    /// The image file of example `index`.
    pub(crate) fn image_path(&self, index: usize) -> Option<&Path> {
        self.0.get(index).map(|(path, _)| path.as_path())
    }
}

impl ImageTextSource for ImageFiles {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn caption(&self, index: usize) -> Result<String, DataError> {
        Ok(item(&self.0, index)?.1.clone())
    }

    fn image(&self, index: usize) -> Result<RgbImage, DataError> {
        read_image(&item(&self.0, index)?.0)
    }
}

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
