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
    #[error("unsupported T5 config value {field} = {value}: {reason}")]
    UnsupportedConfig {
        /// The `config.json` key.
        field: &'static str,
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
