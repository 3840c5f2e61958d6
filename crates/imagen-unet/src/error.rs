//! The one error type of this crate.

use std::path::PathBuf;

/// Why a U-Net could not be configured, built or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UNetError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON for a U-Net config.
    #[error("cannot parse U-Net config `{path}`: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A config value this implementation does not support.
    #[error("unsupported U-Net config value {field} = {value}: {reason}")]
    UnsupportedConfig {
        /// The `config.json` key.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is supported instead.
        reason: String,
    },
    /// Weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] imagen_weights::WeightsError),
}

pub(crate) fn unsupported(
    field: &'static str,
    value: impl std::fmt::Debug,
    reason: impl Into<String>,
) -> UNetError {
    UNetError::UnsupportedConfig {
        field,
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}
