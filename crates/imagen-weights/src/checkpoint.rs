//! A safetensors checkpoint on disk, single file or sharded, read tensor by tensor.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::{TensorSnapshot, TensorSnapshotError};
use safetensors::Dtype;
use safetensors::tensor::Metadata;

use crate::WeightsError;

/// Where one tensor lives on disk.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    /// Index into [`Checkpoint::files`].
    file: usize,
    /// Stored dtype.
    pub dtype: Dtype,
    /// Stored shape.
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

/// The tensor index of a safetensors checkpoint: names, dtypes, shapes and file
/// offsets, with no tensor data read yet.
///
/// Opening reads only the headers. Tensors are read one at a time when a module
/// asks for them ([`Checkpoint::load_into`](crate::Checkpoint::load_into)), so
/// loading never holds a second full copy of the weights: the peak is the
/// module plus the largest single tensor.
///
/// ```no_run
/// # fn main() -> Result<(), imagen_weights::WeightsError> {
/// let ckpt = imagen_weights::Checkpoint::open_dir("t5-v1_1-small", "model")?;
/// for key in ckpt.keys().take(3) {
///     println!("{key}: {:?}", ckpt.get(key).unwrap().shape);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Checkpoint {
    files: Vec<PathBuf>,
    tensors: BTreeMap<String, TensorEntry>,
}

/// The `weight_map` of a sharded checkpoint's `*.safetensors.index.json`.
#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens `dir/{stem}.safetensors`, or the shards listed by
    /// `dir/{stem}.safetensors.index.json` when that exists instead.
    pub fn open_dir(dir: impl AsRef<Path>, stem: &str) -> Result<Self, WeightsError> {
        let dir = dir.as_ref();
        let single = dir.join(format!("{stem}.safetensors"));
        let index = dir.join(format!("{stem}.safetensors.index.json"));
        if single.is_file() {
            Self::open(single)
        } else if index.is_file() {
            Self::open(index)
        } else {
            Err(WeightsError::NotFound {
                dir: dir.to_path_buf(),
                expected: format!("{stem}.safetensors"),
            })
        }
    }

    /// Opens the weight files of `variant` in `dir`: `{stem}.{variant}.safetensors`
    /// or `{stem}.safetensors.index.{variant}.json` (the names diffusers and
    /// transformers write for `variant="fp16"`). `None` is [`Checkpoint::open_dir`].
    pub fn open_dir_variant(
        dir: impl AsRef<Path>,
        stem: &str,
        variant: Option<&str>,
    ) -> Result<Self, WeightsError> {
        let dir = dir.as_ref();
        let Some(variant) = variant else {
            return Self::open_dir(dir, stem);
        };
        let single = dir.join(format!("{stem}.{variant}.safetensors"));
        let index = dir.join(format!("{stem}.safetensors.index.{variant}.json"));
        if single.is_file() {
            Self::open(single)
        } else if index.is_file() {
            Self::open(index)
        } else {
            Err(WeightsError::NotFound {
                dir: dir.to_path_buf(),
                expected: format!("{stem}.{variant}.safetensors"),
            })
        }
    }

    /// Opens one `.safetensors` file, or a sharded checkpoint through its
    /// `.index.json`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let is_index = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".safetensors.index.") && n.ends_with(".json"));
        if !is_index {
            let mut ckpt = Self {
                files: Vec::new(),
                tensors: BTreeMap::new(),
            };
            ckpt.add_file(path)?;
            return Ok(ckpt);
        }
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let index: ShardIndex =
            serde_json::from_str(&text).map_err(|e| WeightsError::InvalidIndex {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut shards: Vec<&String> = index.weight_map.values().collect();
        shards.sort();
        shards.dedup();
        let mut ckpt = Self {
            files: Vec::new(),
            tensors: BTreeMap::new(),
        };
        for shard in shards {
            ckpt.add_file(&dir.join(shard))?;
        }
        for (key, shard) in &index.weight_map {
            let found = ckpt
                .tensors
                .get(key)
                .is_some_and(|e| ckpt.files[e.file].ends_with(shard));
            if !found {
                return Err(WeightsError::InvalidIndex {
                    path: path.to_path_buf(),
                    reason: format!("tensor `{key}` is listed in `{shard}` but not stored there"),
                });
            }
        }
        Ok(ckpt)
    }

    /// Reads the header of one safetensors file and records its tensors.
    fn add_file(&mut self, path: &Path) -> Result<(), WeightsError> {
        let io_err = |source| WeightsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| WeightsError::InvalidFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|_| invalid(format!("file is {file_len} bytes, too short for a header")))?;
        let header_len = u64::from_le_bytes(n);
        if header_len > 100_000_000 || 8 + header_len > file_len {
            return Err(invalid(format!(
                "header length {header_len} does not fit in a file of {file_len} bytes"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io_err)?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| invalid(format!("bad header: {e}")))?;
        let data_start = 8 + header_len;
        let expected = data_start + metadata.data_len() as u64;
        if expected != file_len {
            return Err(invalid(format!(
                "header describes {expected} bytes but the file has {file_len} (truncated or corrupt)"
            )));
        }
        let file_idx = self.files.len();
        self.files.push(path.to_path_buf());
        for (key, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            self.tensors.insert(
                key,
                TensorEntry {
                    file: file_idx,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + start as u64,
                    end: data_start + end as u64,
                },
            );
        }
        Ok(())
    }

    /// All tensor keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Whether the checkpoint stores `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// Dtype and shape of one tensor.
    pub fn get(&self, key: &str) -> Option<&TensorEntry> {
        self.tensors.get(key)
    }

    /// SHIM (replaced by the weights branch).
    pub fn variant(&self) -> Option<&str> {
        None
    }

    /// The files this checkpoint reads from.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads one tensor and converts it to `dtype` (any float dtype from any
    /// stored float dtype).
    pub fn read(&self, key: &str, dtype: DType) -> Result<TensorData, WeightsError> {
        let entry = self
            .tensors
            .get(key)
            .ok_or_else(|| WeightsError::MissingTensor {
                key: key.to_string(),
                others: Vec::new(),
            })?;
        let path = &self.files[entry.file];
        let mut file = File::open(path).map_err(|source| WeightsError::Io {
            path: path.clone(),
            source,
        })?;
        read_entry(
            &mut file,
            key,
            entry,
            stored_dtype(key, path, entry.dtype)?,
            dtype,
        )
    }

    /// Lazy snapshots of every tensor, each reading its bytes from disk (and
    /// converting to `dtype`) only when the module applies it.
    /// Keys for which `keep` is false are left out (and their dtype unchecked).
    pub(crate) fn snapshots(
        &self,
        dtype: DType,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<TensorSnapshot>, WeightsError> {
        let handles: Vec<Rc<RefCell<Option<File>>>> = self
            .files
            .iter()
            .map(|_| Rc::new(RefCell::new(None)))
            .collect();
        let mut out = Vec::with_capacity(self.tensors.len());
        for (key, entry) in self.tensors.iter().filter(|(k, _)| keep(k)) {
            let path = self.files[entry.file].clone();
            let stored = stored_dtype(key, &path, entry.dtype)?;
            let handle = handles[entry.file].clone();
            let (key_c, entry_c) = (key.clone(), entry.clone());
            let data_fn = Rc::new(move || {
                let mut slot = handle.borrow_mut();
                if slot.is_none() {
                    *slot = Some(File::open(&path).map_err(|e| {
                        TensorSnapshotError::IoError(format!("{}: {e}", path.display()))
                    })?);
                }
                let file = slot.as_mut().expect("opened above");
                read_entry(file, &key_c, &entry_c, stored, dtype)
                    .map_err(|e| TensorSnapshotError::IoError(e.to_string()))
            });
            out.push(TensorSnapshot::from_closure(
                data_fn,
                dtype,
                entry.shape.clone().into(),
                key.split('.').map(str::to_string).collect(),
                Vec::new(),
                ParamId::new(),
            ));
        }
        Ok(out)
    }
}

/// The burn dtype of a stored safetensors dtype, for float tensors.
fn stored_dtype(key: &str, path: &Path, dtype: Dtype) -> Result<DType, WeightsError> {
    Ok(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        other => {
            return Err(WeightsError::UnsupportedDtype {
                key: key.to_string(),
                path: path.to_path_buf(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

fn read_entry(
    file: &mut File,
    key: &str,
    entry: &TensorEntry,
    stored: DType,
    target: DType,
) -> Result<TensorData, WeightsError> {
    let len = (entry.end - entry.start) as usize;
    let numel: usize = entry.shape.iter().product();
    if numel * stored.size() != len {
        return Err(WeightsError::Load {
            key: key.to_string(),
            reason: format!(
                "{len} bytes stored for shape {:?} of {:?}",
                entry.shape, entry.dtype
            ),
        });
    }
    let mut bytes = vec![0u8; len];
    file.seek(SeekFrom::Start(entry.start))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| WeightsError::Load {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
    Ok(TensorData::from_bytes_vec(bytes, entry.shape.clone(), stored).convert_dtype(target))
}
