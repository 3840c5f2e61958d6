//! `JsonlDataset`: a manifest with one `{"image": ..., "caption": ...}` per line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::DataError;
use super::source::{ImageFiles, forward_source};

/// One manifest line; other keys are ignored.
#[derive(Deserialize)]
struct Line {
    image: String,
    caption: String,
}

/// Images listed in a JSON Lines manifest:
///
/// ```text
/// {"image": "images/0001.png", "caption": "a red circle above a blue square"}
/// {"image": "/data/other/0002.jpg", "caption": "two green stars"}
/// ```
///
/// Relative image paths are relative to the manifest's folder. Blank lines
/// are ignored; captions are trimmed. Images are read when asked for, so a
/// missing file surfaces as one unreadable example, not at opening.
///
/// ```no_run
/// use imagen_train::data::{ImageTextSource, JsonlDataset};
/// let data = JsonlDataset::open("train.jsonl")?;
/// println!("{} examples, first: {}", data.len(), data.caption(0)?);
/// # Ok::<(), imagen_train::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JsonlDataset {
    path: PathBuf,
    examples: ImageFiles,
}

impl JsonlDataset {
    /// Reads and parses the manifest.
    ///
    /// # Errors
    /// [`DataError::Io`] when it cannot be read, [`DataError::Manifest`]
    /// (with the 1-based line number) for a line that is not an object with
    /// string fields `image` and `caption`, or has an empty `image`;
    /// [`DataError::Empty`] when no line is left.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(DataError::io(path))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut examples = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| DataError::Manifest {
                path: path.to_path_buf(),
                line: number + 1,
                reason,
            };
            let parsed: Line = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if parsed.image.trim().is_empty() {
                return Err(bad("the image path is empty".into()));
            }
            examples.push((base.join(parsed.image), parsed.caption.trim().to_string()));
        }
        if examples.is_empty() {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(JsonlDataset {
            path: path.to_path_buf(),
            examples: ImageFiles(examples),
        })
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image file of example `index`, resolved against the manifest's folder.
    pub fn image_path(&self, index: usize) -> Option<&Path> {
        self.examples.image_path(index)
    }
}

forward_source! {
    [] JsonlDataset => |s| s.examples;
}
