//! The one error type of this crate.

use std::path::PathBuf;

/// Why a checkpoint could not be read or applied to a module.
///
/// Every variant names the file or the tensor key at fault, so that a user
/// pointing the loader at the wrong directory sees what went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// A file could not be opened or read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A directory holds none of the weight files looked for: no weights of
    /// the stem at all, or not the variant asked for.
    #[error(
        "no checkpoint in `{dir}`: looked for {expected}; {}",
        held_suffix(held)
    )]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
        /// The file names looked for, in words.
        expected: String,
        /// The variant asked for, `None` for the plain files or any single variant.
        variant: Option<String>,
        /// What the directory holds instead: its weight sets for the stem
        /// (`` `model.fp16.safetensors` (variant fp16) ``), or else its other
        /// weight files. Empty when it holds none.
        held: Vec<String>,
    },
    /// No variant was asked for, the directory holds no plain weight files
    /// and several variants: which to read is the caller's choice.
    #[error(
        "`{dir}` holds several variants of `{stem}` and no plain `{stem}.safetensors`: {}; choose one (for example with `LoadOptions::variant`)",
        variants.join(", ")
    )]
    AmbiguousVariant {
        /// The directory.
        dir: PathBuf,
        /// The file stem (`model`, `diffusion_pytorch_model`).
        stem: String,
        /// The variants it holds, sorted.
        variants: Vec<String>,
    },
    /// A shard named by a sharded checkpoint's index is not on disk.
    #[error("shard `{shard}` named in `{index}` does not exist")]
    MissingShard {
        /// The index file.
        index: PathBuf,
        /// The shard file that is missing.
        shard: PathBuf,
    },
    /// A shard index names a shard by a path that does not stay beside the
    /// index (absolute, `..`, or with a path separator). Such a name is
    /// never opened: a downloaded index must not make the loader read
    /// arbitrary files.
    #[error(
        "shard index `{index}` names shard `{shard}`, which is not a plain file name beside the index; refusing to read it"
    )]
    UnsafeShardPath {
        /// The index file.
        index: PathBuf,
        /// The shard name as the index gives it.
        shard: String,
    },
    /// A file is not a valid safetensors file (bad header, truncated data...).
    #[error("`{path}` is not a valid safetensors file: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sharded checkpoint's `*.index.json` could not be understood.
    #[error("invalid shard index `{path}`: {reason}")]
    InvalidIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor is stored in a dtype that cannot be converted to a float tensor.
    #[error(
        "tensor `{key}` in `{path}` has dtype {dtype}, which cannot be loaded as a float tensor"
    )]
    UnsupportedDtype {
        /// The checkpoint key.
        key: String,
        /// The file holding it.
        path: PathBuf,
        /// The stored dtype.
        dtype: String,
    },
    /// The model needs tensors that the checkpoint does not have.
    #[error(
        "tensor `{key}` is missing from the checkpoint{}",
        others_suffix(others)
    )]
    MissingTensor {
        /// The first missing key, as the checkpoint would name it.
        key: String,
        /// The other missing keys.
        others: Vec<String>,
    },
    /// The checkpoint has tensors the model does not use.
    #[error(
        "tensor `{key}` in the checkpoint is not used by the model{}",
        others_suffix(others)
    )]
    UnexpectedTensor {
        /// The first unused key.
        key: String,
        /// The other unused keys.
        others: Vec<String>,
    },
    /// A tensor's shape differs from the one the model (built from its config) expects.
    #[error(
        "tensor `{key}` has shape {found:?} in the checkpoint, but the model expects {expected:?}"
    )]
    ShapeMismatch {
        /// The checkpoint key.
        key: String,
        /// The shape the model expects, in the checkpoint's layout.
        expected: Vec<usize>,
        /// The shape stored in the checkpoint.
        found: Vec<usize>,
    },
    /// A tensor could not be read or converted.
    #[error("cannot load tensor `{key}`: {reason}")]
    Load {
        /// The checkpoint key.
        key: String,
        /// What failed.
        reason: String,
    },
    /// A compute dtype that is not a float type, or that the backend cannot hold.
    #[error(
        "cannot compute in {dtype} on the {backend} backend: choose f32, f16 or bf16 where the backend supports it"
    )]
    UnsupportedComputeDtype {
        /// The dtype asked for.
        dtype: String,
        /// The backend's name.
        backend: String,
    },
    /// A key-remapping rule is not a valid regular expression.
    #[error("invalid key-remapping pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// The regex error.
        reason: String,
    },
}

fn held_suffix(held: &[String]) -> String {
    if held.is_empty() {
        "the directory holds no weight files".to_string()
    } else {
        format!("the directory holds {}", held.join(", "))
    }
}

fn others_suffix(others: &[String]) -> String {
    match others.len() {
        0 => String::new(),
        n => format!(
            " (and {n} more: {})",
            others
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
