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
    #[error(
        "unsupported U-Net config value {field} = {value}{}: {reason}",
        in_file(path.as_deref())
    )]
    UnsupportedConfig {
        /// The `config.json` key.
        field: &'static str,
        /// The `config.json` it was read from, when it came from a file
        /// ([`UNetConfig::from_file`](crate::UNetConfig::from_file) sets it).
        path: Option<PathBuf>,
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
        path: None,
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}

/// ` in `PATH``, or nothing when the value did not come from a file.
fn in_file(path: Option<&std::path::Path>) -> String {
    path.map(|p| format!(" in `{}`", p.display()))
        .unwrap_or_default()
}

impl UNetError {
    /// Names `path` in an [`UNetError::UnsupportedConfig`] that does not
    /// name a file yet; other errors are returned as they are.
    pub(crate) fn in_file(mut self, path: &std::path::Path) -> Self {
        if let Self::UnsupportedConfig {
            path: named @ None, ..
        } = &mut self
        {
            *named = Some(path.to_path_buf());
        }
        self
    }
}
