//! Embedding shards: safetensors files of `<key>.states` `[L, D]` and
//! `<key>.mask` `[L]` u8, with each key's caption in the header metadata.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::tensor::{bf16, f16};
use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorView};
use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use crate::data::DataError;

/// Largest header accepted (safetensors' own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Float type of the stored text states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateDtype {
    /// 4 bytes per value, exact (default).
    #[default]
    F32,
    /// 2 bytes per value; T5's final layer-normed states fit its range.
    F16,
    /// 2 bytes per value, f32's range with 8 bits of mantissa.
    BF16,
}

impl StateDtype {
    fn safetensors(self) -> Dtype {
        match self {
            StateDtype::F32 => Dtype::F32,
            StateDtype::F16 => Dtype::F16,
            StateDtype::BF16 => Dtype::BF16,
        }
    }

    fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            StateDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            StateDtype::F16 => values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            StateDtype::BF16 => values
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            StateDtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            StateDtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StateDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }

    fn from_safetensors(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(StateDtype::F32),
            Dtype::F16 => Some(StateDtype::F16),
            Dtype::BF16 => Some(StateDtype::BF16),
            _ => None,
        }
    }
}

impl std::fmt::Display for StateDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StateDtype::F32 => "f32",
            StateDtype::F16 => "f16",
            StateDtype::BF16 => "bf16",
        })
    }
}

/// One caption's embedding, ready to be written.
pub(crate) struct Entry {
    /// [`caption_key`](super::caption_key) of the caption.
    pub key: String,
    pub caption: String,
    /// `[L * D]`.
    pub states: Vec<f32>,
    /// `[L]`.
    pub mask: Vec<bool>,
}

/// Writes `entries` as one shard at `path`, atomically.
pub(crate) fn write_shard(
    path: &Path,
    entries: &[Entry],
    [max_length, d_model]: [usize; 2],
    dtype: StateDtype,
) -> Result<(), DataError> {
    let format_err = |reason: String| DataError::CacheFormat {
        path: path.to_path_buf(),
        reason,
    };
    let buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = entries
        .iter()
        .flat_map(|e| {
            [
                (
                    format!("{}.states", e.key),
                    dtype.safetensors(),
                    vec![max_length, d_model],
                    dtype.encode(&e.states),
                ),
                (
                    format!("{}.mask", e.key),
                    Dtype::U8,
                    vec![max_length],
                    e.mask.iter().map(|&m| u8::from(m)).collect(),
                ),
            ]
        })
        .collect();
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| format_err(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    let captions: HashMap<String, String> = entries
        .iter()
        .map(|e| (e.key.clone(), e.caption.clone()))
        .collect();
    let bytes =
        safetensors::serialize(views, Some(captions)).map_err(|e| format_err(e.to_string()))?;
    write_atomic(path, &bytes)
}

/// A shard's parsed header; tensors are read from the file on demand.
#[derive(Debug)]
pub(crate) struct Shard {
    path: PathBuf,
    data_start: u64,
    file_len: u64,
    metadata: Metadata,
}

impl Shard {
    /// Reads and parses the header of the shard at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        let format_err = |reason: String| DataError::CacheFormat {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(DataError::io(path))?;
        let file_len = file.metadata().map_err(DataError::io(path))?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(DataError::io(path))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER || 8 + header_len > file_len {
            return Err(format_err(format!(
                "header length {header_len} does not fit a {file_len}-byte file"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(DataError::io(path))?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| format_err(e.to_string()))?;
        Ok(Shard {
            path: path.to_path_buf(),
            data_start: 8 + header_len,
            file_len,
            metadata,
        })
    }

    /// The shard file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The caption stored under `key`.
    pub(crate) fn caption(&self, key: &str) -> Option<&str> {
        self.metadata
            .metadata()
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// States `[L * D]` and mask `[L]` stored under `key`.
    pub(crate) fn read(
        &self,
        key: &str,
        [max_length, d_model]: [usize; 2],
    ) -> Result<(Vec<f32>, Vec<bool>), DataError> {
        let mut file = File::open(&self.path).map_err(DataError::io(&self.path))?;
        let states_name = format!("{key}.states");
        let (dtype, bytes) = self.tensor(&mut file, &states_name, &[max_length, d_model])?;
        let dtype = StateDtype::from_safetensors(dtype)
            .ok_or_else(|| self.format_err(format!("{states_name} has dtype {dtype:?}")))?;
        let states = dtype.decode(&bytes);
        let mask_name = format!("{key}.mask");
        let (dtype, bytes) = self.tensor(&mut file, &mask_name, &[max_length])?;
        if dtype != Dtype::U8 {
            return Err(self.format_err(format!("{mask_name} has dtype {dtype:?}, not U8")));
        }
        Ok((states, bytes.iter().map(|&m| m != 0).collect()))
    }

    /// The dtype and raw bytes of tensor `name`, checked against `shape`.
    fn tensor(
        &self,
        file: &mut File,
        name: &str,
        shape: &[usize],
    ) -> Result<(Dtype, Vec<u8>), DataError> {
        let info = self
            .metadata
            .info(name)
            .ok_or_else(|| self.format_err(format!("no tensor {name}")))?;
        if info.shape != shape {
            return Err(self.format_err(format!(
                "{name} has shape {:?}, expected {shape:?} (max_length and d_model in index.json)",
                info.shape
            )));
        }
        let (begin, end) = info.data_offsets;
        let expected = shape.iter().product::<usize>() * (info.dtype.bitsize() / 8);
        let start = self.data_start + begin as u64;
        if end < begin || end - begin != expected || start + expected as u64 > self.file_len {
            return Err(self.format_err(format!(
                "{name} has data offsets {begin}..{end} for {expected} bytes in a {}-byte file",
                self.file_len
            )));
        }
        let mut bytes = vec![0u8; expected];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(DataError::io(&self.path))?;
        Ok((info.dtype, bytes))
    }

    fn format_err(&self, reason: String) -> DataError {
        DataError::CacheFormat {
            path: self.path.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_round_trip_representable_values() {
        let values = [0.0, 1.0, -2.5, 0.125, 1024.0];
        for dtype in [StateDtype::F32, StateDtype::F16, StateDtype::BF16] {
            let bytes = dtype.encode(&values);
            let size = if dtype == StateDtype::F32 { 4 } else { 2 };
            assert_eq!(bytes.len(), values.len() * size);
            assert_eq!(dtype.decode(&bytes), values);
            assert_eq!(
                StateDtype::from_safetensors(dtype.safetensors()),
                Some(dtype)
            );
        }
        assert_eq!(
            serde_json::to_string(&StateDtype::BF16).unwrap(),
            "\"bf16\""
        );
    }
}
