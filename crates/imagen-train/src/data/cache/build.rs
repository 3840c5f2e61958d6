//! Building (or extending) an embedding cache from a dataset's captions.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use imagen_text::TextEncoder;
use serde::{Deserialize, Serialize};

use super::encode::encode;
use super::index::{CacheIndex, INDEX_FILE};
use super::shard::{Entry, write_shard};
use super::{EmbeddingCache, EncoderIdentity, NULL_CAPTION, StateDtype, caption_key};
use crate::data::{DataError, ImageTextSource};

/// Settings of [`EmbeddingCache::build`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddingCacheConfig {
    /// Captions per shard file (default 1024).
    pub shard_size: usize,
    /// Captions per encoder call (default 32).
    pub batch_size: usize,
    /// Stored float type of the states (default f32).
    pub dtype: StateDtype,
}

impl Default for EmbeddingCacheConfig {
    fn default() -> Self {
        EmbeddingCacheConfig {
            shard_size: 1024,
            batch_size: 32,
            dtype: StateDtype::F32,
        }
    }
}

impl EmbeddingCacheConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the captions per shard.
    pub fn with_shard_size(mut self, shard_size: usize) -> Self {
        self.shard_size = shard_size;
        self
    }

    /// Sets the captions per encoder call.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the stored float type.
    pub fn with_dtype(mut self, dtype: StateDtype) -> Self {
        self.dtype = dtype;
        self
    }
}

/// How far a build is, reported after each encoder call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildProgress {
    /// Captions encoded so far in this build.
    pub encoded: usize,
    /// Captions this build has to encode (those not cached yet).
    pub total: usize,
}

impl EmbeddingCache {
    /// Encodes every distinct caption of `source` (and [`NULL_CAPTION`]) that
    /// `dir` does not hold yet, writes them as shards, and opens the cache.
    ///
    /// A new folder is created; an existing cache is extended, after
    /// checking that it was built by the same encoder with the same
    /// `dtype`. One builder per folder at a time.
    ///
    /// # Errors
    /// [`DataError::InvalidConfig`] for zero sizes, [`DataError::CacheMismatch`]
    /// when extending a cache of another encoder or dtype,
    /// [`DataError::HashCollision`] for two captions with one key, and
    /// source, encoder and I/O errors.
    pub fn build<B: Backend, S: ImageTextSource + ?Sized>(
        source: &S,
        encoder: &TextEncoder<B>,
        dir: impl AsRef<Path>,
        config: &EmbeddingCacheConfig,
    ) -> Result<Self, DataError> {
        Self::build_with_progress(source, encoder, dir, config, |_| {})
    }

    /// [`Self::build`], calling `progress` after each encoder call.
    pub fn build_with_progress<B: Backend, S: ImageTextSource + ?Sized>(
        source: &S,
        encoder: &TextEncoder<B>,
        dir: impl AsRef<Path>,
        config: &EmbeddingCacheConfig,
        mut progress: impl FnMut(BuildProgress),
    ) -> Result<Self, DataError> {
        if config.shard_size == 0 {
            return Err(DataError::invalid("shard_size", "must be positive"));
        }
        if config.batch_size == 0 {
            return Err(DataError::invalid("batch_size", "must be positive"));
        }
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
        let identity = EncoderIdentity::of(encoder)?;
        let mut index = if dir.join(INDEX_FILE).exists() {
            let index = CacheIndex::load(dir)?;
            index.encoder.check(&identity)?;
            if index.dtype != config.dtype {
                return Err(DataError::CacheMismatch {
                    field: "dtype".into(),
                    cached: index.dtype.to_string(),
                    current: config.dtype.to_string(),
                });
            }
            index
        } else {
            CacheIndex::new(identity, config.dtype)
        };

        let todo = missing_captions(source, &index)?;
        let (l, d) = (index.encoder.max_length, index.encoder.d_model);
        let mut pending = Vec::with_capacity(config.shard_size.min(todo.len()));
        let mut encoded = 0;
        for chunk in todo.chunks(config.batch_size) {
            let captions: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let out = encode(encoder, &captions)?;
            if out.states.len() != chunk.len() * l * d || out.mask.len() != chunk.len() * l {
                return Err(DataError::Tensor {
                    reason: format!(
                        "the encoder returned {} state values for {} captions of [{l}, {d}]",
                        out.states.len(),
                        chunk.len()
                    ),
                });
            }
            index.truncated += out.truncated.len();
            let rows = out.states.chunks_exact(l * d).zip(out.mask.chunks_exact(l));
            for (caption, (states, mask)) in chunk.iter().zip(rows) {
                pending.push(Entry {
                    key: caption_key(caption),
                    caption: caption.clone(),
                    states: states.to_vec(),
                    mask: mask.to_vec(),
                });
                if pending.len() == config.shard_size {
                    flush(dir, &mut index, &mut pending)?;
                }
            }
            encoded += chunk.len();
            progress(BuildProgress {
                encoded,
                total: todo.len(),
            });
        }
        if !pending.is_empty() {
            flush(dir, &mut index, &mut pending)?;
        }
        Ok(Self::from_index(dir, index))
    }
}

/// Distinct captions of `source` (after [`NULL_CAPTION`]) not in `index`, in
/// first-seen order.
fn missing_captions<S: ImageTextSource + ?Sized>(
    source: &S,
    index: &CacheIndex,
) -> Result<Vec<String>, DataError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut todo: Vec<String> = Vec::new();
    let captions = std::iter::once(Ok(NULL_CAPTION.to_string()))
        .chain((0..source.len()).map(|i| source.caption(i)));
    for caption in captions {
        let caption = caption?;
        let key = caption_key(&caption);
        if index.entries.contains_key(&key) {
            continue;
        }
        match seen.get(&key) {
            Some(&at) if todo[at] == caption => {}
            Some(&at) => {
                return Err(DataError::HashCollision {
                    key,
                    first: todo[at].clone(),
                    second: caption,
                });
            }
            None => {
                seen.insert(key, todo.len());
                todo.push(caption);
            }
        }
    }
    Ok(todo)
}

/// Writes `pending` as the next shard and records it in the index.
fn flush(dir: &Path, index: &mut CacheIndex, pending: &mut Vec<Entry>) -> Result<(), DataError> {
    let position = index.shards.len();
    let name = format!("embeddings-{position:05}.safetensors");
    let shape = [index.encoder.max_length, index.encoder.d_model];
    write_shard(&dir.join(&name), pending, shape, index.dtype)?;
    index.shards.push(name);
    for entry in pending.drain(..) {
        index.entries.insert(entry.key, position);
    }
    index.save(dir)
}
