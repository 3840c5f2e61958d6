//! Which weight files of a directory hold a component: the plain files, or one
//! of the *variants* (`fp16`, `bf16`, `ema`...) that diffusers and
//! transformers save beside them.
//!
//! The names recognised for a file stem `S` (`model`,
//! `diffusion_pytorch_model`) and a variant `V`:
//!
//! | file                          | what it is                                          |
//! |-------------------------------|-----------------------------------------------------|
//! | `S.safetensors`               | plain, single file                                  |
//! | `S.safetensors.index.json`    | plain, sharded                                      |
//! | `S.V.safetensors`             | variant `V`, single file                            |
//! | `S.safetensors.index.V.json`  | variant `V`, sharded (transformers, diffusers)      |
//! | `S.safetensors.V.index.json`  | variant `V`, sharded (legacy diffusers)             |
//!
//! Shard files (`S-00001-of-00002.safetensors`, `S.V-00001-of-00002.safetensors`,
//! `S-00001-of-00002.V.safetensors`) are never taken for a set of their own:
//! they are read through the index that names them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::WeightsError;

/// How a set of weight files is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// One `.safetensors` file.
    Single,
    /// Shards listed by a `*.index*.json` file.
    Sharded,
}

/// One set of weight files of a component in a directory: the plain files or
/// one variant, single or sharded. [`Checkpoint::variants_in`] lists them and
/// [`Checkpoint::open_files`] opens one.
///
/// [`Checkpoint::variants_in`]: crate::Checkpoint::variants_in
/// [`Checkpoint::open_files`]: crate::Checkpoint::open_files
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightFiles {
    variant: Option<String>,
    layout: Layout,
    path: PathBuf,
    name: String,
    /// Sort rank among sets of the same variant and layout: the current
    /// index name before the legacy diffusers one.
    rank: u8,
}

impl WeightFiles {
    /// The variant (`Some("fp16")`), or `None` for the plain files.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// Single file or sharded.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The file to open: the `.safetensors` file, or the shard index.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name of [`WeightFiles::path`].
    pub fn file_name(&self) -> &str {
        &self.name
    }

    fn sort_key(&self) -> (bool, Option<&str>, Layout, u8, &str) {
        (
            self.variant.is_some(),
            self.variant.as_deref(),
            self.layout,
            self.rank,
            &self.name,
        )
    }
}

impl fmt::Display for WeightFiles {
    /// `` `model.fp16.safetensors` (variant fp16) ``,
    /// `` `model.safetensors.index.json` (plain, sharded) ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.variant {
            Some(v) => format!("variant {v}"),
            None => "plain".to_string(),
        };
        let layout = match self.layout {
            Layout::Single => "",
            Layout::Sharded => ", sharded",
        };
        write!(f, "`{}` ({what}{layout})", self.name)
    }
}

/// What a directory holds for one stem.
pub(crate) struct Scan {
    /// The recognised sets, plain first, then variants by name; within one
    /// variant single before sharded.
    pub(crate) sets: Vec<WeightFiles>,
    /// Names of every file that looks like weights (any stem, any format),
    /// sorted: what the directory holds when no set matched.
    pub(crate) weight_files: Vec<String>,
}

impl Scan {
    /// What the directory holds, for an error message: the sets of the stem,
    /// or else its other weight files (at most 20 named).
    pub(crate) fn held(&self) -> Vec<String> {
        if !self.sets.is_empty() {
            return self.sets.iter().map(ToString::to_string).collect();
        }
        const SHOWN: usize = 20;
        let mut held: Vec<String> = self
            .weight_files
            .iter()
            .take(SHOWN)
            .map(|n| format!("`{n}`"))
            .collect();
        if self.weight_files.len() > SHOWN {
            held.push(format!("{} more", self.weight_files.len() - SHOWN));
        }
        held
    }

    /// The distinct variant names, sorted.
    pub(crate) fn variant_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sets.iter().filter_map(|s| s.variant.clone()).collect();
        names.dedup();
        names
    }
}

/// Lists the files of `dir` and sorts out the weight sets of `stem`.
pub(crate) fn scan(dir: &Path, stem: &str) -> Result<Scan, WeightsError> {
    let io_err = |source| WeightsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut sets = Vec::new();
    let mut weight_files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        // `is_file` follows symbolic links, as in the Hugging Face cache.
        if !path.is_file() {
            continue;
        }
        if looks_like_weights(&name) {
            weight_files.push(name.clone());
        }
        if let Some((variant, layout, rank)) = classify(stem, &name) {
            sets.push(WeightFiles {
                variant,
                layout,
                path,
                name,
                rank,
            });
        }
    }
    sets.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    weight_files.sort();
    Ok(Scan { sets, weight_files })
}

/// The variant, layout and rank of file `name` if it is a set of `stem`.
fn classify(stem: &str, name: &str) -> Option<(Option<String>, Layout, u8)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    match rest {
        "safetensors" => return Some((None, Layout::Single, 0)),
        "safetensors.index.json" => return Some((None, Layout::Sharded, 0)),
        _ => {}
    }
    let variant = |v: &str| (is_variant_name(v)).then(|| v.to_string());
    if let Some(v) = rest
        .strip_prefix("safetensors.index.")
        .and_then(|r| r.strip_suffix(".json"))
    {
        return Some((Some(variant(v)?), Layout::Sharded, 0));
    }
    if let Some(v) = rest
        .strip_prefix("safetensors.")
        .and_then(|r| r.strip_suffix(".index.json"))
    {
        return Some((Some(variant(v)?), Layout::Sharded, 1));
    }
    let v = rest.strip_suffix(".safetensors")?;
    if is_shard_name(v) {
        return None;
    }
    Some((Some(variant(v)?), Layout::Single, 0))
}

/// Whether `v` can be a variant name: not empty, no leading or trailing dot,
/// and not the `index` part of an index name.
fn is_variant_name(v: &str) -> bool {
    !v.is_empty() && !v.starts_with('.') && !v.ends_with('.') && !v.split('.').any(|p| p == "index")
}

/// Whether the part of a file name between stem and extension is a shard
/// number: `…-00001-of-00002` or `00001-of-00002`.
fn is_shard_name(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let Some((head, total)) = v.rsplit_once("-of-") else {
        return false;
    };
    let part = head.rsplit_once('-').map_or(head, |(_, p)| p);
    digits(part) && digits(total)
}

/// Whether file `name` looks like model weights in some format, to show what
/// a directory holds when the expected files are absent.
fn looks_like_weights(name: &str) -> bool {
    const EXTENSIONS: [&str; 9] = [
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".msgpack",
        ".h5",
        ".onnx",
        ".gguf",
    ];
    EXTENSIONS.iter().any(|e| name.ends_with(e))
        || (name.ends_with(".json") && name.contains(".index"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_classified_as_transformers_and_diffusers_write_them() {
        let c = |n| classify("model", n);
        assert_eq!(c("model.safetensors"), Some((None, Layout::Single, 0)));
        assert_eq!(
            c("model.safetensors.index.json"),
            Some((None, Layout::Sharded, 0))
        );
        let fp16 = Some("fp16".to_string());
        assert_eq!(
            c("model.fp16.safetensors"),
            Some((fp16.clone(), Layout::Single, 0))
        );
        assert_eq!(
            c("model.safetensors.index.fp16.json"),
            Some((fp16.clone(), Layout::Sharded, 0))
        );
        assert_eq!(
            c("model.safetensors.fp16.index.json"),
            Some((fp16, Layout::Sharded, 1))
        );
    }

    #[test]
    fn shards_and_other_stems_are_not_sets() {
        for name in [
            "model-00001-of-00002.safetensors",
            "model.fp16-00001-of-00002.safetensors",
            "model-00001-of-00002.fp16.safetensors",
            "model.00001-of-00002.safetensors",
            "diffusion_pytorch_model.safetensors",
            "model_other.safetensors",
            "model..safetensors",
            "model.safetensors.index..json",
            "model.bin",
            "config.json",
        ] {
            assert_eq!(classify("model", name), None, "{name}");
        }
    }
}
