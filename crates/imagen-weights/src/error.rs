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
    /// No checkpoint file was found in a directory.
    #[error("no checkpoint in `{dir}`: expected `{expected}` or `{expected}.index.json`")]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
        /// The file name looked for.
        expected: String,
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
