//! How prompts are normalised before tokenization.

use serde::{Deserialize, Serialize};

/// Prompt preprocessing before the tokenizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    /// Used as given.
    #[default]
    AsIs,
    /// Lowercased and trimmed: what DeepFloyd IF's pipelines do with
    /// `clean_caption=False`. (IF's full `clean_caption` also strips URLs,
    /// HTML and some punctuation with `ftfy` / `bs4`; that is not done here.)
    LowercaseStrip,
}

impl PromptStyle {
    /// Applies the style to one prompt.
    pub fn apply(self, prompt: &str) -> String {
        match self {
            Self::AsIs => prompt.to_string(),
            Self::LowercaseStrip => prompt.to_lowercase().trim().to_string(),
        }
    }
}
