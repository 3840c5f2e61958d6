//! `index.json` of an embedding cache: encoder identity, shards, caption keys.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use super::{EncoderIdentity, StateDtype};
use crate::data::DataError;

/// File name of the index inside the cache folder.
pub(crate) const INDEX_FILE: &str = "index.json";
/// The `format` field, telling the file apart from other JSON.
const FORMAT: &str = "imagen-train embedding cache";
/// The current `version`.
const VERSION: u32 = 1;

/// The contents of `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CacheIndex {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Float type of every shard's states.
    pub dtype: StateDtype,
    /// The encoder that made the embeddings (with `max_length` and `d_model`).
    pub encoder: EncoderIdentity,
    /// Cached captions that were cut to `max_length`.
    pub truncated: usize,
    /// Shard file names, in the folder; entries refer to them by position.
    pub shards: Vec<String>,
    /// Caption key (16 hex digits) → position of its shard in `shards`.
    pub entries: BTreeMap<String, usize>,
}

impl CacheIndex {
    /// An empty index.
    pub(crate) fn new(encoder: EncoderIdentity, dtype: StateDtype) -> Self {
        CacheIndex {
            format: FORMAT.into(),
            version: VERSION,
            dtype,
            encoder,
            truncated: 0,
            shards: Vec::new(),
            entries: BTreeMap::new(),
        }
    }

    /// Reads and checks `dir/index.json`.
    pub(crate) fn load(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(INDEX_FILE);
        let bad = |reason: String| DataError::CacheFormat {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read(&path).map_err(DataError::io(&path))?;
        let index: CacheIndex = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if index.format != FORMAT || index.version != VERSION {
            return Err(bad(format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                index.format, index.version
            )));
        }
        if index.encoder.max_length == 0 || index.encoder.d_model == 0 {
            return Err(bad("max_length and d_model must be positive".into()));
        }
        if let Some(name) = index
            .shards
            .iter()
            .find(|name| Path::new(name).file_name() != Some(name.as_ref()))
        {
            return Err(bad(format!("shard {name:?} is not a file name")));
        }
        if let Some((key, shard)) = index
            .entries
            .iter()
            .find(|&(_, &s)| s >= index.shards.len())
        {
            return Err(bad(format!("entry {key} refers to missing shard {shard}")));
        }
        Ok(index)
    }

    /// Writes `dir/index.json` atomically.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), DataError> {
        let path = dir.join(INDEX_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| DataError::CacheFormat {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &json)
    }
}
