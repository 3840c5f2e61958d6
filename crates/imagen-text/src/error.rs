//! The one error type of this crate.

use std::path::PathBuf;

/// Why a text encoder could not be built, loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or lacks a required field.
    #[error("cannot parse T5 config `{path}`: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A config value this implementation does not support.
    #[error(
        "unsupported T5 config value {field} = {value}{}: {reason}",
        in_file(path.as_deref())
    )]
    UnsupportedConfig {
        /// The `config.json` key.
        field: &'static str,
        /// The `config.json` it was read from, when it came from a file
        /// ([`T5Config::from_file`](crate::T5Config::from_file) sets it).
        path: Option<PathBuf>,
        /// Its value.
        value: String,
        /// What is supported instead.
        reason: String,
    },
    /// `tokenizer.json` could not be loaded.
    #[error("cannot load tokenizer `{path}`: {reason}")]
    Tokenizer {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The tokenizer produces ids the model's embedding table has no row
    /// for: a tokenizer of another model.
    #[error(
        "tokenizer `{path}` produces ids up to {max_id}, but the model's vocab_size is {vocab_size} \
         (a tokenizer of another model?)"
    )]
    VocabSize {
        /// The tokenizer file or directory.
        path: PathBuf,
        /// The largest id in the tokenizer's vocabulary, added tokens included.
        max_id: u32,
        /// The model's `vocab_size` (`config.json`).
        vocab_size: usize,
    },
    /// Tokenization of a prompt failed.
    #[error("cannot tokenize prompt {index}: {reason}")]
    Encode {
        /// Index of the prompt in the batch.
        index: usize,
        /// What failed.
        reason: String,
    },
    /// No prompts were given.
    #[error("no prompts to encode: the prompt list is empty")]
    EmptyInput,
    /// `max_length` cannot hold the special tokens.
    #[error("max_length {max_length} is too small: the tokenizer adds {special} special token(s)")]
    MaxLengthTooSmall {
        /// The requested length.
        max_length: usize,
        /// Special tokens added per sequence.
        special: usize,
    },
    /// Weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] imagen_weights::WeightsError),
}

/// ` in `PATH``, or nothing when the value did not come from a file.
fn in_file(path: Option<&std::path::Path>) -> String {
    path.map(|p| format!(" in `{}`", p.display()))
        .unwrap_or_default()
}

impl TextError {
    /// Names `path` in an [`TextError::UnsupportedConfig`] that does not
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
