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
use crate::variants::{self, WeightFiles};

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
    /// The variant these files are (`fp16`), `None` for plain files.
    variant: Option<String>,
}

/// The `weight_map` of a sharded checkpoint's `*.safetensors.index.json`.
#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Opens the weights of `stem` in `dir` with no variant asked for:
    /// [`Checkpoint::open_dir_variant`] with `None`.
    ///
    /// That is `dir/{stem}.safetensors` or the shards listed by
    /// `dir/{stem}.safetensors.index.json`; when neither exists and the
    /// directory holds exactly one variant (`{stem}.fp16.safetensors`...),
    /// that one. [`Checkpoint::variant`] tells which was read.
    pub fn open_dir(dir: impl AsRef<Path>, stem: &str) -> Result<Self, WeightsError> {
        Self::open_dir_variant(dir, stem, None)
    }

    /// Opens the weights of `stem` in `dir`, in the variant asked for.
    ///
    /// `Some(variant)` reads `{stem}.{variant}.safetensors`, or the shards
    /// listed by `{stem}.safetensors.index.{variant}.json` (the names
    /// transformers and diffusers write for `variant="fp16"`; the legacy
    /// diffusers index `{stem}.safetensors.{variant}.index.json` is read
    /// too). Shard file names are taken from the index, whatever their form.
    ///
    /// `None` reads the plain files when the directory has them, else its
    /// only variant; with several variants and no plain files it fails with
    /// [`WeightsError::AmbiguousVariant`] rather than guess. Library code
    /// does not print, so the choice is reported by [`Checkpoint::variant`]
    /// for the caller to tell its user.
    ///
    /// When a directory holds both a single file and a shard index for the
    /// same variant, the single file is read.
    ///
    /// # Errors
    ///
    /// [`WeightsError::NotFound`] (naming the directory, the files looked
    /// for and what the directory holds) when nothing matches;
    /// [`WeightsError::AmbiguousVariant`] when `None` finds several variants
    /// and no plain files; [`WeightsError::Io`] when `dir` cannot be listed; the errors of
    /// [`Checkpoint::open`] for the files chosen.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), imagen_weights::WeightsError> {
    /// use imagen_weights::Checkpoint;
    /// let unet = Checkpoint::open_dir_variant("IF-I-M-v1.0/unet", "diffusion_pytorch_model", Some("fp16"))?;
    /// assert_eq!(unet.variant(), Some("fp16"));
    /// # Ok(()) }
    /// ```
    pub fn open_dir_variant(
        dir: impl AsRef<Path>,
        stem: &str,
        variant: Option<&str>,
    ) -> Result<Self, WeightsError> {
        let dir = dir.as_ref();
        let scan = variants::scan(dir, stem)?;
        let chosen = match variant {
            Some(v) => scan.sets.iter().find(|s| s.variant() == Some(v)),
            None => match scan.sets.iter().find(|s| s.variant().is_none()) {
                Some(plain) => Some(plain),
                None => {
                    let names = scan.variant_names();
                    if names.len() > 1 {
                        return Err(WeightsError::AmbiguousVariant {
                            dir: dir.to_path_buf(),
                            stem: stem.to_string(),
                            variants: names,
                        });
                    }
                    scan.sets.first()
                }
            },
        };
        match chosen {
            Some(files) => Self::open_files(files),
            None => Err(WeightsError::NotFound {
                dir: dir.to_path_buf(),
                expected: match variant {
                    Some(v) => format!(
                        "variant `{v}` (`{stem}.{v}.safetensors` or `{stem}.safetensors.index.{v}.json`)"
                    ),
                    None => format!(
                        "`{stem}.safetensors`, `{stem}.safetensors.index.json` or a single variant such as `{stem}.fp16.safetensors`"
                    ),
                },
                variant: variant.map(str::to_string),
                held: scan.held(),
            }),
        }
    }

    /// The weight sets of `stem` that `dir` holds: the plain files and each
    /// variant, single or sharded, plain first, then variants by name.
    /// Shard files are not sets of their own: they belong to the index that
    /// names them.
    ///
    /// [`Checkpoint::open_dir_variant`] chooses among these; callers can use
    /// the list to offer a choice or to say what a directory holds.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use imagen_weights::{Checkpoint, Layout};
    /// let dir = std::env::temp_dir().join(format!("imagen-weights-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let bytes = [0u8; 4];
    /// let x = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &bytes)?;
    /// safetensors::serialize_to_file([("x", x)], None, &dir.join("model.fp16.safetensors"))?;
    ///
    /// let sets = Checkpoint::variants_in(&dir, "model")?;
    /// assert_eq!(sets.len(), 1);
    /// assert_eq!(sets[0].variant(), Some("fp16"));
    /// assert_eq!(sets[0].layout(), Layout::Single);
    /// // With no plain files, the only variant is read without being asked for.
    /// assert_eq!(Checkpoint::open_dir(&dir, "model")?.variant(), Some("fp16"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn variants_in(
        dir: impl AsRef<Path>,
        stem: &str,
    ) -> Result<Vec<WeightFiles>, WeightsError> {
        Ok(variants::scan(dir.as_ref(), stem)?.sets)
    }

    /// Opens one set of weight files listed by [`Checkpoint::variants_in`],
    /// remembering its variant.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), imagen_weights::WeightsError> {
    /// use imagen_weights::Checkpoint;
    /// // Prefer bf16 weights when the directory has them.
    /// let sets = Checkpoint::variants_in("t5-v1_1-xxl", "model")?;
    /// let ckpt = match sets.iter().find(|s| s.variant() == Some("bf16")) {
    ///     Some(bf16) => Checkpoint::open_files(bf16)?,
    ///     None => Checkpoint::open_dir("t5-v1_1-xxl", "model")?,
    /// };
    /// # Ok(()) }
    /// ```
    pub fn open_files(files: &WeightFiles) -> Result<Self, WeightsError> {
        let mut ckpt = Self::open(files.path())?;
        ckpt.variant = files.variant().map(str::to_string);
        Ok(ckpt)
    }

    /// The variant read (`Some("fp16")`), `None` for plain files and for a
    /// checkpoint opened by path with [`Checkpoint::open`].
    ///
    /// [`Checkpoint::open_dir`] may pick a variant on its own (the only one a
    /// directory holds); this is how the caller learns it, to tell its user
    /// ("using variant fp16 of DIR").
    ///
    /// ```no_run
    /// # fn main() -> Result<(), imagen_weights::WeightsError> {
    /// let dir = "IF-I-M-v1.0/unet";
    /// let ckpt = imagen_weights::Checkpoint::open_dir(dir, "diffusion_pytorch_model")?;
    /// if let Some(variant) = ckpt.variant() {
    ///     eprintln!("using variant {variant} of {dir}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Opens one `.safetensors` file, or a sharded checkpoint through its
    /// index (any `.json` file: `*.safetensors.index.json`,
    /// `*.safetensors.index.fp16.json`...).
    ///
    /// Shard names in an index must be plain file names beside it: an
    /// absolute name, `..` or a path separator fails with
    /// [`WeightsError::UnsafeShardPath`] before anything is read, and a shard
    /// that is not on disk with [`WeightsError::MissingShard`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let is_index = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".json"));
        let mut ckpt = Self {
            files: Vec::new(),
            tensors: BTreeMap::new(),
            variant: None,
        };
        if !is_index {
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
        for shard in &shards {
            if !is_plain_file_name(shard) {
                return Err(WeightsError::UnsafeShardPath {
                    index: path.to_path_buf(),
                    shard: shard.to_string(),
                });
            }
        }
        for shard in shards {
            let shard_path = dir.join(shard);
            if !shard_path.is_file() {
                return Err(WeightsError::MissingShard {
                    index: path.to_path_buf(),
                    shard: shard_path,
                });
            }
            ckpt.add_file(&shard_path)?;
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

    /// The entry of `key`, or [`WeightsError::MissingTensor`] naming it.
    /// For checks before building a model from a config that the checkpoint
    /// may not hold (see [`Checkpoint::expect_shape`]).
    pub fn require(&self, key: &str) -> Result<&TensorEntry, WeightsError> {
        self.get(key).ok_or_else(|| WeightsError::MissingTensor {
            key: key.to_string(),
            others: Vec::new(),
        })
    }

    /// Checks that `key` exists with shape `expected`: the error loading
    /// would give ([`WeightsError::MissingTensor`] or
    /// [`WeightsError::ShapeMismatch`]), before a config too large for the
    /// checkpoint gets to allocate a model.
    pub fn expect_shape(&self, key: &str, expected: &[usize]) -> Result<(), WeightsError> {
        let entry = self.require(key)?;
        if entry.shape != expected {
            return Err(WeightsError::ShapeMismatch {
                key: key.to_string(),
                expected: expected.to_vec(),
                found: entry.shape.clone(),
            });
        }
        Ok(())
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

/// Whether a shard name from an index is one plain file name, to be joined to
/// the index's directory: not empty, not absolute, no `.` or `..`, no `/` or
/// `\` (a separator on Windows, refused everywhere so that an index reads
/// the same on every system), no drive prefix.
fn is_plain_file_name(name: &str) -> bool {
    use std::path::Component;
    let mut components = Path::new(name).components();
    let one_normal =
        matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
    one_normal && !name.contains(['/', '\\', '\0']) && name != "." && name != ".."
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
