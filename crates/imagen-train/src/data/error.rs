//! The error type of the training-data layer.

use std::path::PathBuf;

/// Why a dataset, a batch or the embedding cache could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image file could not be decoded (corrupt, truncated, unknown format).
    #[error("cannot decode image `{path}`: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// An image with no pixels.
    #[error("image is {width}x{height}: it has no pixels")]
    EmptyImage {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A dataset holds no usable (image, caption) pair.
    #[error("no (image, caption) pairs in `{path}`")]
    Empty {
        /// The folder or manifest.
        path: PathBuf,
    },
    /// A line of a JSONL manifest is not `{"image": ..., "caption": ...}`.
    #[error("`{path}` line {line}: {reason}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An example index past the end of a dataset.
    #[error("example {index} is out of range: the dataset has {len}")]
    IndexOutOfRange {
        /// The requested index.
        index: usize,
        /// The dataset's length.
        len: usize,
    },
    /// A setting that cannot work (zero batch size, zero resolution, ...).
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Every example of the dataset failed to load.
    #[error("none of the {len} examples could be read (first failure: {first})")]
    NoReadableExamples {
        /// The dataset's length.
        len: usize,
        /// The first failure seen.
        first: String,
    },
    /// The procedural shapes dataset rejected its configuration.
    #[error(transparent)]
    Shapes(#[from] imagen_shapes::ShapesError),
    /// The text encoder failed.
    #[error(transparent)]
    Text(#[from] imagen_text::TextError),
    /// Tensor data had an unexpected type or size.
    #[error("tensor data: {reason}")]
    Tensor {
        /// What was wrong.
        reason: String,
    },
    /// An embedding-cache file (`index.json` or a shard) is malformed.
    #[error("embedding cache file `{path}`: {reason}")]
    CacheFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The embedding cache was built with another encoder or settings.
    #[error(
        "embedding cache mismatch in {field}: the cache has {cached}, the current setting is {current}"
    )]
    CacheMismatch {
        /// What differs (`max_length`, `d_model`, `probe`, `dtype`, ...).
        field: String,
        /// The cache's value.
        cached: String,
        /// The current value.
        current: String,
    },
    /// A caption that the embedding cache does not hold.
    #[error("caption {caption:?} is not in the embedding cache: rebuild it with this dataset")]
    MissingEmbedding {
        /// The caption.
        caption: String,
    },
    /// Two different captions with the same 64-bit cache key.
    #[error("captions {first:?} and {second:?} share the cache key {key}")]
    HashCollision {
        /// The key (16 hex digits).
        key: String,
        /// The caption stored under it.
        first: String,
        /// The other caption.
        second: String,
    },
}

impl DataError {
    /// Whether this error concerns one unreadable example (a missing file, an
    /// undecodable or empty image), which a [`DataLoader`](super::DataLoader)
    /// skips and counts instead of stopping training.
    pub fn is_unreadable_example(&self) -> bool {
        matches!(
            self,
            DataError::Io { .. } | DataError::Image { .. } | DataError::EmptyImage { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
        let path = path.into();
        move |source| DataError::Io { path, source }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> DataError {
        DataError::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}
