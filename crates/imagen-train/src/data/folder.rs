//! `FolderDataset`: a directory of `name.png|jpg|jpeg` images with `name.txt` captions.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::DataError;
use super::source::{ImageFiles, forward_source};

/// Image extensions recognised (case-insensitive).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// A flat folder of images, each with a caption file of the same stem:
/// `cat.png` + `cat.txt`.
///
/// Captions are read (and trimmed) when the folder is opened; images when
/// asked for. Examples are sorted by file name, so indices are stable.
/// Images without a caption, captions without an image and second images
/// of one stem (`a.png` next to `a.jpg`: the first by name wins) are
/// skipped and counted. Subfolders and other files are ignored.
///
/// ```no_run
/// use imagen_train::data::{FolderDataset, ImageTextSource};
/// let data = FolderDataset::open("my_images")?;
/// assert!(data.len() > 0);
/// let (caption, image) = (data.caption(0)?, data.image(0)?);
/// # Ok::<(), imagen_train::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FolderDataset {
    dir: PathBuf,
    examples: ImageFiles,
    skipped_images: usize,
    skipped_captions: usize,
}

/// Files of one stem found in the folder.
#[derive(Default)]
struct Stem {
    images: Vec<PathBuf>,
    caption: Option<PathBuf>,
}

impl FolderDataset {
    /// Lists `dir` and reads every caption.
    ///
    /// # Errors
    /// [`DataError::Io`] when the folder or a caption file cannot be read
    /// (captions must be UTF-8), [`DataError::Empty`] without a single pair.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DataError> {
        let dir = dir.as_ref();
        let mut stems: BTreeMap<OsString, Stem> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(DataError::io(dir))? {
            let path = entry.map_err(DataError::io(dir))?.path();
            let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
                continue;
            };
            let ext = ext.to_string_lossy().to_ascii_lowercase();
            let is_image = IMAGE_EXTENSIONS.contains(&ext.as_str());
            if !(is_image || ext == "txt") || !path.is_file() {
                continue;
            }
            let slot = stems.entry(stem.to_os_string()).or_default();
            if is_image {
                slot.images.push(path);
            } else {
                slot.caption = Some(path);
            }
        }
        let mut examples = Vec::new();
        let (mut skipped_images, mut skipped_captions) = (0, 0);
        for (_, mut stem) in stems {
            stem.images.sort();
            match (stem.images.first(), stem.caption) {
                (Some(image), Some(caption_path)) => {
                    let caption = std::fs::read_to_string(&caption_path)
                        .map_err(DataError::io(&caption_path))?;
                    examples.push((image.clone(), caption.trim().to_string()));
                    skipped_images += stem.images.len() - 1;
                }
                (Some(_), None) => skipped_images += stem.images.len(),
                (None, _) => skipped_captions += 1,
            }
        }
        if examples.is_empty() {
            return Err(DataError::Empty {
                path: dir.to_path_buf(),
            });
        }
        Ok(FolderDataset {
            dir: dir.to_path_buf(),
            examples: ImageFiles(examples),
            skipped_images,
            skipped_captions,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image file of example `index`.
    pub fn image_path(&self, index: usize) -> Option<&Path> {
        self.examples.image_path(index)
    }

    /// Images left out: no caption file, or a second image of the same stem.
    pub fn skipped_images(&self) -> usize {
        self.skipped_images
    }

    /// Caption files left out because no image has their stem.
    pub fn skipped_captions(&self) -> usize {
        self.skipped_captions
    }
}

forward_source! {
    [] FolderDataset => |s| s.examples;
}
