//! The T5 tokenizer: a `tokenizer.json` or a SentencePiece `spiece.model`,
//! padded and truncated to a fixed length.

use std::path::Path;

use tokenizers::{PostProcessor, Tokenizer, TruncationDirection};

use crate::TextError;
use crate::spiece::{SentencePieceModel, T5SpecialTokens};

/// Token ids and masks of a batch, each row exactly `max_length` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// `[batch][max_length]` token ids, padded with the pad id.
    pub input_ids: Vec<Vec<u32>>,
    /// `[batch][max_length]`: 1 for real tokens (EOS included), 0 for padding.
    pub attention_mask: Vec<Vec<u32>>,
    /// One entry per prompt that did not fit.
    pub truncated: Vec<Truncation>,
    /// One entry per prompt with words the vocabulary does not know (they
    /// became the unknown token, so the model never sees them).
    pub unknown: Vec<UnknownWords>,
}

/// Words of one prompt that the tokenizer mapped to its unknown token
/// (`<unk>`): nothing the encoder can read. The caller decides whether to warn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWords {
    /// Index of the prompt in the batch.
    pub index: usize,
    /// The pieces of the prompt that became `<unk>`, in order.
    pub words: Vec<String>,
}

impl std::fmt::Display for UnknownWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.words.iter().map(|w| format!("`{w}`")).collect();
        write!(
            f,
            "prompt {} has words the tokenizer does not know, dropped as <unk>: {}",
            self.index,
            quoted.join(", ")
        )
    }
}

/// A prompt that was cut to fit `max_length` (T5 pipelines do the same; the
/// caller decides whether to warn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Index of the prompt in the batch.
    pub index: usize,
    /// Tokens the prompt needed, special tokens included.
    pub needed: usize,
    /// Tokens kept (`max_length`).
    pub kept: usize,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prompt {} needs {} tokens and was truncated to {}",
            self.index, self.needed, self.kept
        )
    }
}

/// The longest added token `T5Tokenizer::from_file` reads, in bytes (T5's
/// are a dozen: `<extra_id_99>`).
const MAX_ADDED_TOKEN_BYTES: usize = 256;

/// A Hugging Face T5 tokenizer used the way transformers' T5 tokenizer is
/// called by text-to-image pipelines: `padding="max_length"`,
/// `truncation=True`, special tokens (T5's `</s>`) kept.
///
/// Loads a `tokenizer.json` ([`from_file`](Self::from_file)), a SentencePiece
/// `spiece.model` ([`from_spiece`](Self::from_spiece)), or whichever of the two
/// a Hugging Face directory has ([`from_dir`](Self::from_dir)).
///
/// ```no_run
/// let tok = imagen_text::T5Tokenizer::from_dir("IF-I-XL-v1.0/tokenizer")?;
/// let batch = tok.encode(&["a red circle above a blue square"], 77)?;
/// assert_eq!(batch.input_ids[0].len(), 77);
/// # Ok::<(), imagen_text::TextError>(())
/// ```
#[derive(Debug, Clone)]
pub struct T5Tokenizer {
    inner: Tokenizer,
    pad_id: u32,
}

impl T5Tokenizer {
    /// Loads `tokenizer.json`. The pad id comes from its padding settings, or
    /// else from its `<pad>` token.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TextError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(TextError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let err = |reason: String| TextError::Tokenizer {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // The tokenizers crate panics (`expect`) on some malformed files
        // instead of failing: a JSON syntax error inside the decoder, a bad
        // precompiled charsmap. Check the syntax first, so that the message
        // says where it is, and catch what remains: a user's file must not
        // abort the program.
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| err(format!("not valid JSON: {e}")))?;
        // The tokenizers crate takes time quadratic in an added token's
        // length to load it (1 000 characters: 1 s; 20 000: 78 s, found by
        // the fuzz tests). Real added tokens are short.
        #[derive(serde::Deserialize)]
        struct Added {
            #[serde(default)]
            added_tokens: Vec<Content>,
        }
        #[derive(serde::Deserialize)]
        struct Content {
            content: String,
        }
        if let Ok(added) = serde_json::from_str::<Added>(&text)
            && let Some((i, t)) = added
                .added_tokens
                .iter()
                .enumerate()
                .find(|(_, t)| t.content.len() > MAX_ADDED_TOKEN_BYTES)
        {
            return Err(err(format!(
                "added token {i} is {} bytes long; at most {MAX_ADDED_TOKEN_BYTES} are read",
                t.content.len()
            )));
        }
        let mut inner = std::panic::catch_unwind(|| text.parse::<Tokenizer>())
            .map_err(|panic| {
                err(format!(
                    "the tokenizers crate could not read it ({})",
                    panic_text(&*panic)
                ))
            })?
            .map_err(|e| err(e.to_string()))?;
        // Some inconsistencies load and panic on first use: a template
        // naming a special token its `special_tokens` lack (found by the
        // fuzz tests). One prompt through every stage finds them here,
        // where the file can be named.
        // (An error on it is left to the prompts that meet it.)
        let _probe: tokenizers::Result<tokenizers::Encoding> = std::panic::catch_unwind(|| {
            let enc = inner.encode("a", false)?;
            inner.post_process(enc, None, true)
        })
        .map_err(|panic| {
            err(format!(
                "the tokenizers crate fails on a test prompt ({})",
                panic_text(&*panic)
            ))
        })?;
        let pad_id = match inner.get_padding() {
            Some(p) => p.pad_id,
            None => inner
                .token_to_id("<pad>")
                .ok_or_else(|| err("no padding settings and no `<pad>` token".into()))?,
        };
        // Truncation and padding are applied per call, to the caller's length.
        inner
            .with_truncation(None)
            .map_err(|e| err(e.to_string()))?;
        inner.with_padding(None);
        Ok(Self { inner, pad_id })
    }

    /// Loads the tokenizer of a Hugging Face directory: `dir/tokenizer.json`
    /// when it exists, else `dir/spiece.model` with `dir/tokenizer_config.json`
    /// when that exists (the layout of the DeepFloyd IF and `google/t5-v1_1-*`
    /// repositories, which ship no `tokenizer.json`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, TextError> {
        let dir = dir.as_ref();
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            return Self::from_file(json);
        }
        let spiece = dir.join("spiece.model");
        if spiece.is_file() {
            let config = dir.join("tokenizer_config.json");
            return Self::from_spiece(&spiece, config.is_file().then_some(config.as_path()));
        }
        Err(TextError::Tokenizer {
            path: dir.to_path_buf(),
            reason: "the directory has neither `tokenizer.json` nor `spiece.model`".into(),
        })
    }

    /// Builds the tokenizer transformers' `T5Tokenizer.from_pretrained` builds
    /// from a SentencePiece `spiece.model` (see [`SentencePieceModel`]), with
    /// `extra_ids` sentinels and special tokens from `tokenizer_config`, or
    /// transformers' defaults (100 sentinels, `</s>`, `<pad>`, `<unk>`) without
    /// one. The pad id is that of the config's `pad_token`.
    pub fn from_spiece(
        spiece_model: impl AsRef<Path>,
        tokenizer_config: Option<&Path>,
    ) -> Result<Self, TextError> {
        let path = spiece_model.as_ref();
        let special = match tokenizer_config {
            Some(config) => T5SpecialTokens::from_file(config)?,
            None => T5SpecialTokens::default(),
        };
        let model = SentencePieceModel::from_file(path)?;
        let inner = model.t5_tokenizer(&special, path)?;
        let pad_id = inner
            .token_to_id(&special.pad_token)
            .ok_or_else(|| TextError::Tokenizer {
                path: path.to_path_buf(),
                reason: format!("no id for the pad token {:?}", special.pad_token),
            })?;
        Ok(Self { inner, pad_id })
    }

    /// The largest id this tokenizer produces, added tokens (T5's sentinels)
    /// included.
    pub fn max_id(&self) -> u32 {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Checks that every id this tokenizer produces has a row in a model's
    /// embedding table of `vocab_size` rows (T5's `config.json`
    /// `vocab_size`; T5's 32,100 tokens fit its 32,128 rows). `path` names
    /// the tokenizer in the error. Without this check a mismatched tokenizer
    /// would index past the table at encode time.
    pub fn check_vocab_size(&self, vocab_size: usize, path: &Path) -> Result<(), TextError> {
        let max_id = self.max_id();
        if max_id as usize >= vocab_size {
            return Err(TextError::VocabSize {
                path: path.to_path_buf(),
                max_id,
                vocab_size,
            });
        }
        Ok(())
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenizes `prompts`, truncating each to `max_length` tokens including
    /// the special tokens the tokenizer appends (so a cut prompt still ends in
    /// EOS), and padding to `max_length`. An empty prompt gives just EOS.
    pub fn encode(&self, prompts: &[&str], max_length: usize) -> Result<TokenBatch, TextError> {
        if prompts.is_empty() {
            return Err(TextError::EmptyInput);
        }
        let special = self
            .inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_length <= special {
            return Err(TextError::MaxLengthTooSmall {
                max_length,
                special,
            });
        }
        let mut batch = TokenBatch {
            input_ids: Vec::with_capacity(prompts.len()),
            attention_mask: Vec::with_capacity(prompts.len()),
            truncated: Vec::new(),
            unknown: Vec::new(),
        };
        let unk_id = self.inner.token_to_id("<unk>");
        for (index, prompt) in prompts.iter().enumerate() {
            let encode_err = |e: tokenizers::Error| TextError::Encode {
                index,
                reason: e.to_string(),
            };
            // The tokenizers crate panics on some inconsistent files that
            // load (a probe at load catches the ones known); a panic on a
            // prompt is this prompt's error, not the program's end.
            let guarded = |f: &dyn Fn() -> tokenizers::Result<tokenizers::Encoding>| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or_else(|panic| {
                        Err(
                            format!("the tokenizers crate panicked: {}", panic_text(&*panic))
                                .into(),
                        )
                    })
                    .map_err(encode_err)
            };
            let mut enc = guarded(&|| self.inner.encode(*prompt, false))?;
            if let Some(unk) = unk_id {
                let words: Vec<String> = enc
                    .get_ids()
                    .iter()
                    .zip(enc.get_offsets())
                    .filter(|(id, _)| **id == unk)
                    .map(|(_, &(start, end))| {
                        prompt.get(start..end).unwrap_or("?").trim().to_string()
                    })
                    .collect();
                if !words.is_empty() {
                    batch.unknown.push(UnknownWords { index, words });
                }
            }
            let budget = max_length - special;
            if enc.len() > budget {
                batch.truncated.push(Truncation {
                    index,
                    needed: enc.len() + special,
                    kept: max_length,
                });
                enc.truncate(budget, 0, TruncationDirection::Right);
                // The cut-off tail is not used. Left in, the post-processor
                // would combine it with every `$A` of its template, and a
                // tokenizer.json whose template repeats `$A` makes that
                // exponential (found by the fuzz tests: 101 copies hung).
                drop(enc.take_overflowing());
            }
            let enc = guarded(&|| self.inner.post_process(enc.clone(), None, true))?;
            let mut ids = enc.get_ids().to_vec();
            let mut mask = vec![1u32; ids.len()];
            ids.resize(max_length, self.pad_id);
            mask.resize(max_length, 0);
            batch.input_ids.push(ids);
            batch.attention_mask.push(mask);
        }
        Ok(batch)
    }
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
