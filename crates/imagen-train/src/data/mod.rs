//! Training data: (image, caption) sources, preprocessing, seeded resumable
//! batches, and the frozen-T5 text-embedding cache.
//!
//! - Sources implement [`ImageTextSource`]: [`FolderDataset`] (`name.png` +
//!   `name.txt`), [`JsonlDataset`] (a manifest of `{"image", "caption"}`
//!   lines), [`ShapesDataset`] (the procedural scenes of `imagen-shapes`).
//! - [`prepare`] turns an image into the `[3, R, R]` tensor in `[-1, 1]` the
//!   diffusion objective expects (centre crop, antialiased resize, flip).
//! - [`DataLoader`] yields [`Batch`]es in a seeded per-epoch shuffle that is
//!   a pure function of `(seed, position)`, skips unreadable images, and
//!   resumes exactly with [`DataLoader::seek`].
//! - [`EmbeddingCache`] stores each distinct caption's T5 states once
//!   (safetensors shards + `index.json`), as Imagen trains with a frozen
//!   encoder; it always holds the empty caption for guidance dropout.
//!
//! ```
//! use imagen_shapes::SamplerConfig;
//! use imagen_train::data::{DataLoaderConfig, ShapesDataset};
//!
//! let source = ShapesDataset::new(SamplerConfig::default(), 0, 64, 16)?;
//! let mut loader = DataLoaderConfig::new(8, 16).with_seed(1).init(source)?;
//! let batch = loader.next_batch()?;
//! assert_eq!(batch.captions.len(), 8);
//! assert_eq!(loader.position(), 8);
//! # Ok::<(), imagen_train::data::DataError>(())
//! ```

mod cache;
mod error;
mod folder;
mod jsonl;
mod loader;
pub(crate) mod seed;
mod shapes;
mod source;
mod transform;

pub use cache::{
    BuildProgress, CachedEmbedding, EmbeddingBatch, EmbeddingCache, EmbeddingCacheConfig,
    EncoderIdentity, NULL_CAPTION, StateDtype, caption_hash, caption_key,
};
pub use error::DataError;
pub use folder::FolderDataset;
pub use jsonl::JsonlDataset;
pub use loader::{Batch, DataLoader, DataLoaderConfig};
pub use shapes::ShapesDataset;
pub use source::ImageTextSource;
pub use transform::prepare;
