//! The one error type of this crate.

/// Why a caption could not be parsed, a scene built or a configuration used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapesError {
    /// A caption word is not what the grammar allows at that point.
    #[error("word {position} of the caption is `{found}`, expected {expected}")]
    UnexpectedWord {
        /// 0-based index of the offending token (commas and full stops count).
        position: usize,
        /// The token found.
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// The caption ended where the grammar needs more words.
    #[error("the caption ends early, expected {expected}")]
    UnexpectedEnd {
        /// What the grammar needs next.
        expected: &'static str,
    },
    /// Constraints that are inconsistent (bad group index, zero count, too many objects).
    #[error("invalid constraints: {0}")]
    InvalidConstraints(String),
    /// Constraints that are valid but cannot be said in the caption grammar.
    #[error("constraints cannot be written as a caption: {0}")]
    Unexpressible(String),
    /// No non-overlapping layout satisfying the constraints was found.
    #[error("no layout satisfying the constraints was found in {attempts} attempts")]
    Unrealizable {
        /// How many layouts were tried.
        attempts: usize,
    },
    /// A scene that breaks the dataset's rules (object count, overlap, canvas bounds).
    #[error("invalid scene: {0}")]
    InvalidScene(String),
    /// A line of a prompt file is not a valid [`EvalPrompt`](crate::EvalPrompt).
    #[error("line {line} of the prompt file: {message}")]
    PromptFile {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        message: String,
    },
    /// A sampler configuration that cannot produce any scene.
    #[error("invalid sampler config: {0}")]
    InvalidConfig(String),
}
