//! A word-level `tokenizer.json` learnt from a caption corpus.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::TrainError;

/// T5's special tokens, at T5's ids: padding 0, end of sequence 1, unknown 2;
/// then the sentinel that masks a token during pre-training.
pub const SPECIAL_TOKENS: [&str; 4] = ["<pad>", "</s>", "<unk>", "<extra_id_0>"];

/// The words of `captions` as the tokenizer splits them: lowercased, runs of
/// word characters, and runs of punctuation (the `Whitespace` pre-tokenizer).
fn words(caption: &str) -> impl Iterator<Item = String> + '_ {
    caption
        .split(|c: char| c.is_whitespace())
        .flat_map(|chunk| {
            let mut parts = Vec::new();
            let mut current = String::new();
            let mut word = None;
            for c in chunk.chars().flat_map(char::to_lowercase) {
                let is_word = c.is_alphanumeric() || c == '_';
                if word.is_some_and(|w| w != is_word) {
                    parts.push(std::mem::take(&mut current));
                }
                word = Some(is_word);
                current.push(c);
            }
            if !current.is_empty() {
                parts.push(current);
            }
            parts
        })
}

/// Learns a word-level vocabulary from `captions` and writes it as a
/// Hugging Face `tokenizer.json` that behaves like T5's: lowercasing,
/// whitespace/punctuation splitting, `</s>` appended, `<pad>` = 0, unknown
/// words to `<unk>`. Words are ordered by frequency (ties alphabetically),
/// so the file is a pure function of the corpus. Words seen fewer than
/// `min_count` times are left out. Returns the vocabulary size.
///
/// A closed caption language needs no sub-word model: every word is one
/// token, which keeps the demo text encoder small.
///
/// ```
/// let dir = std::env::temp_dir().join("imagen-doc-tokenizer");
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("tokenizer.json");
/// let n = imagen_train::text::write_word_tokenizer(
///     ["a red circle", "two blue squares, left"],
///     1,
///     &path,
/// )?;
/// assert_eq!(n, 4 + 8); // specials; a red circle two blue squares , left
/// let tok = imagen_text::T5Tokenizer::from_file(&path)?;
/// let ids = tok.encode(&["A red square!"], 6)?.input_ids;
/// // `square` and `!` are unknown (2), then </s> (1) and <pad> (0).
/// assert_eq!(&ids[0][2..], &[2, 2, 1, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`TrainError::InvalidConfig`] for a corpus without words,
/// [`TrainError::Io`] when the file cannot be written.
pub fn write_word_tokenizer<'a>(
    captions: impl IntoIterator<Item = &'a str>,
    min_count: usize,
    path: impl AsRef<Path>,
) -> Result<usize, TrainError> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for caption in captions {
        for word in words(caption) {
            *counts.entry(word).or_default() += 1;
        }
    }
    let mut vocab: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(w, n)| *n >= min_count.max(1) && !SPECIAL_TOKENS.contains(&w.as_str()))
        .collect();
    if vocab.is_empty() {
        return Err(TrainError::InvalidConfig(
            "the tokenizer corpus holds no words".into(),
        ));
    }
    vocab.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let ids: serde_json::Map<String, Value> = SPECIAL_TOKENS
        .iter()
        .map(|s| s.to_string())
        .chain(vocab.into_iter().map(|(w, _)| w))
        .enumerate()
        .map(|(id, w)| (w, json!(id)))
        .collect();
    let size = ids.len();
    let added: Vec<Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(id, s)| {
            json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let eos = json!({"SpecialToken": {"id": "</s>", "type_id": 0}});
    let seq = |id: &str| json!({"Sequence": {"id": id, "type_id": 0}});
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [seq("A"), eos],
            "pair": [seq("A"), eos, seq("B"), eos],
            "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}},
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<unk>"},
    });
    let path = path.as_ref();
    let text = serde_json::to_string_pretty(&tokenizer).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_whitespace_pre_tokenizer() {
        let w: Vec<String> = words("Two RED circles, left-most.").collect();
        assert_eq!(w, ["two", "red", "circles", ",", "left", "-", "most", "."]);
    }

    #[test]
    fn orders_by_frequency_and_drops_rare_words() {
        let dir = std::env::temp_dir().join("imagen-tokenizer-order");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        let n = write_word_tokenizer(["b a a", "c a b"], 2, &path).unwrap();
        assert_eq!(n, 6);
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["model"]["vocab"]["a"], 4);
        assert_eq!(json["model"]["vocab"]["b"], 5);
        assert!(json["model"]["vocab"].get("c").is_none());
        assert!(write_word_tokenizer([" ", ""], 1, &path).is_err());
    }
}
