//! The text-embedding cache: frozen T5 states computed once per caption.

mod atomic;
mod build;
mod encode;
mod hash;
mod identity;
mod index;
mod shard;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::TensorData;
use burn::tensor::backend::Backend;
use imagen_text::TextEncoder;

pub use build::{BuildProgress, EmbeddingCacheConfig};
pub use hash::{caption_hash, caption_key};
pub use identity::EncoderIdentity;
pub use shard::StateDtype;

use index::CacheIndex;
use shard::Shard;

use super::DataError;

/// The caption whose embedding stands for "no text" in classifier-free
/// guidance; every cache holds it.
pub const NULL_CAPTION: &str = "";

/// A folder of cached text embeddings, opened for lookups.
///
/// Imagen trains with a frozen text encoder, so every caption's
/// `last_hidden_state` is computed once ([`EmbeddingCache::build`]), stored,
/// and read back each step instead of running T5 (4.6B parameters for
/// T5-XXL) in the training loop. Shard headers are parsed on first use and
/// each lookup reads just the two tensors it needs, so opening is cheap and
/// memory stays small.
///
/// # On-disk format
///
/// - `embeddings-00000.safetensors`, `embeddings-00001.safetensors`, ...:
///   for each caption, `<key>.states` `[max_length, d_model]` (f32, f16 or
///   bf16, see [`StateDtype`]) and `<key>.mask` `[max_length]` u8 (1 for
///   real tokens), where the key is [`caption_key`] (FNV-1a 64 of the UTF-8
///   caption, 16 hex digits); the header's `__metadata__` maps each key to
///   its caption, so lookups detect hash collisions.
/// - `index.json`: `format` (`"imagen-train embedding cache"`), `version`
///   (1), `dtype`, `encoder` (an [`EncoderIdentity`]: `max_length`,
///   `d_model`, `vocab_size`, `num_layers`, `tokenizer`, `probe`),
///   `truncated` (cached captions cut to `max_length`), `shards` (file
///   names) and `entries` (key → position in `shards`).
///
/// Files are written to `<name>.tmp`, synced and renamed, and the index is
/// rewritten after each shard, so an interrupted build leaves a valid cache
/// of the shards finished so far, and building again encodes only what is
/// missing.
///
/// ```no_run
/// use burn_flex::Flex;
/// use imagen_text::TextEncoder;
/// use imagen_train::data::{EmbeddingCache, EmbeddingCacheConfig, FolderDataset};
///
/// let data = FolderDataset::open("my_images")?;
/// let encoder = TextEncoder::<Flex>::from_dir("t5-v1_1-xxl", &Default::default())?;
/// let cache = EmbeddingCache::build(&data, &encoder, "cache", &EmbeddingCacheConfig::new())?;
/// let text = cache.get_batch(&["a corgi", ""])?; // states [2, 77, 4096], mask [2, 77]
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
    index: CacheIndex,
    /// Parsed shard headers, by position in `index.shards`.
    shards: Vec<OnceLock<Shard>>,
}

/// One cached caption.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEmbedding {
    /// `last_hidden_state`, `[max_length * d_model]` row-major, as f32.
    pub states: Vec<f32>,
    /// `[max_length]`, `true` for real tokens.
    pub mask: Vec<bool>,
}

/// Cached embeddings of a batch of captions, ready for `Tensor::from_data`.
#[derive(Debug, Clone)]
pub struct EmbeddingBatch {
    /// `[batch, max_length, d_model]` f32.
    pub states: TensorData,
    /// `[batch, max_length]` bool, `true` for real tokens.
    pub mask: TensorData,
}

impl EmbeddingCache {
    /// Opens the cache in `dir` without checking which encoder made it (the
    /// encoder need not be loaded for training); see [`Self::open_for`].
    ///
    /// # Errors
    /// [`DataError::Io`] without `dir/index.json`, [`DataError::CacheFormat`]
    /// when it is malformed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        Ok(Self::from_index(dir, CacheIndex::load(dir)?))
    }

    /// Opens the cache in `dir` and checks that `encoder` made it.
    ///
    /// # Errors
    /// As [`Self::open`], and [`DataError::CacheMismatch`] naming what
    /// differs (`max_length`, `d_model`, `tokenizer`, `probe` ...).
    pub fn open_for<B: Backend>(
        dir: impl AsRef<Path>,
        encoder: &TextEncoder<B>,
    ) -> Result<Self, DataError> {
        let cache = Self::open(dir)?;
        cache.check_encoder(encoder)?;
        Ok(cache)
    }

    fn from_index(dir: &Path, index: CacheIndex) -> Self {
        EmbeddingCache {
            dir: dir.to_path_buf(),
            shards: index.shards.iter().map(|_| OnceLock::new()).collect(),
            index,
        }
    }

    /// `Ok` when `encoder` (with its `max_length`) made this cache.
    pub fn check_encoder<B: Backend>(&self, encoder: &TextEncoder<B>) -> Result<(), DataError> {
        self.index.encoder.check(&EncoderIdentity::of(encoder)?)
    }

    /// The identity of the encoder that built the cache.
    pub fn identity(&self) -> &EncoderIdentity {
        &self.index.encoder
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sequence length `L` of every embedding.
    pub fn max_length(&self) -> usize {
        self.index.encoder.max_length
    }

    /// Width `D` of every embedding.
    pub fn d_model(&self) -> usize {
        self.index.encoder.d_model
    }

    /// The stored float type.
    pub fn dtype(&self) -> StateDtype {
        self.index.dtype
    }

    /// Number of distinct captions cached ([`NULL_CAPTION`] included).
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    /// Whether nothing is cached (never true for a built cache).
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }

    /// Cached captions that were longer than `max_length` tokens and cut.
    pub fn truncated(&self) -> usize {
        self.index.truncated
    }

    /// Whether `caption`'s key is cached.
    pub fn contains(&self, caption: &str) -> bool {
        self.index.entries.contains_key(&caption_key(caption))
    }

    /// The embedding of `caption`.
    ///
    /// # Errors
    /// [`DataError::MissingEmbedding`] naming the caption when it is not
    /// cached, [`DataError::HashCollision`] when another caption with the
    /// same key is, [`DataError::Io`] / [`DataError::CacheFormat`] for a
    /// missing or damaged shard.
    pub fn get(&self, caption: &str) -> Result<CachedEmbedding, DataError> {
        let key = caption_key(caption);
        let &position =
            self.index
                .entries
                .get(&key)
                .ok_or_else(|| DataError::MissingEmbedding {
                    caption: caption.to_string(),
                })?;
        let shard = self.shard(position)?;
        match shard.caption(&key) {
            Some(stored) if stored == caption => {}
            // A caption stored under a key that is not its own: the shard
            // is damaged, not a collision.
            Some(stored) if caption_key(stored) != key => {
                return Err(DataError::CacheFormat {
                    path: shard.path().to_path_buf(),
                    reason: format!(
                        "caption {stored:?} is stored under key {key}, which is not its key"
                    ),
                });
            }
            Some(stored) => {
                return Err(DataError::HashCollision {
                    key,
                    first: stored.to_string(),
                    second: caption.to_string(),
                });
            }
            None => {
                return Err(DataError::CacheFormat {
                    path: shard.path().to_path_buf(),
                    reason: format!(
                        "no caption recorded for key {key}, which `{}` places in this shard",
                        self.dir.join(index::INDEX_FILE).display()
                    ),
                });
            }
        }
        let (states, mask) = shard.read(&key, [self.max_length(), self.d_model()])?;
        Ok(CachedEmbedding { states, mask })
    }

    /// The embedding of [`NULL_CAPTION`], for classifier-free guidance dropout.
    pub fn null(&self) -> Result<CachedEmbedding, DataError> {
        self.get(NULL_CAPTION)
    }

    /// The embeddings of `captions` stacked in order.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub fn get_batch<S: AsRef<str>>(&self, captions: &[S]) -> Result<EmbeddingBatch, DataError> {
        let (l, d) = (self.max_length(), self.d_model());
        let mut states = Vec::with_capacity(captions.len() * l * d);
        let mut mask = Vec::with_capacity(captions.len() * l);
        for caption in captions {
            let one = self.get(caption.as_ref())?;
            states.extend_from_slice(&one.states);
            mask.extend_from_slice(&one.mask);
        }
        Ok(EmbeddingBatch {
            states: TensorData::new(states, [captions.len(), l, d]),
            mask: TensorData::new(mask, [captions.len(), l]),
        })
    }

    /// The parsed header of shard `position`, read on first use.
    fn shard(&self, position: usize) -> Result<&Shard, DataError> {
        let (Some(slot), Some(name)) = (self.shards.get(position), self.index.shards.get(position))
        else {
            return Err(DataError::CacheFormat {
                path: self.dir.join(index::INDEX_FILE),
                reason: format!("no shard {position}"),
            });
        };
        if let Some(shard) = slot.get() {
            return Ok(shard);
        }
        // A shard that cannot be read names the index that lists it too.
        let shard = Shard::open(&self.dir.join(name)).map_err(|e| match e {
            DataError::Io { .. } => DataError::CacheFormat {
                path: self.dir.join(index::INDEX_FILE),
                reason: format!("lists shard `{name}`, which cannot be read: {e}"),
            },
            other => other,
        })?;
        Ok(slot.get_or_init(|| shard))
    }
}
