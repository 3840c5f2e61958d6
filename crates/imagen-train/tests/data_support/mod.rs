//! Helpers shared by the `data_*` integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_flex::Flex;
use image::{Rgb, RgbImage};
use imagen_text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen_train::data::{DataError, ImageTextSource};

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("imagen-train-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small image whose pixels depend on `tag`.
pub fn test_image(width: u32, height: u32, tag: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([tag, (x * 16) as u8, (y * 16) as u8])
    })
}

/// The tiny random T5 of the pipeline fixtures.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../imagen-pipeline/tests/fixtures/if_stage1")
}

/// The tiny T5 with `max_length` tokens.
pub fn tiny_encoder(max_length: usize) -> TextEncoder<Flex> {
    let dir = fixture_dir();
    let tokenizer = T5Tokenizer::from_file(dir.join("tokenizer/tokenizer.json")).unwrap();
    let model = T5Encoder::from_dir(dir.join("text_encoder"), &Default::default()).unwrap();
    TextEncoder::new(tokenizer, model, &Default::default()).with_max_length(max_length)
}

/// Captions with generated images; indices in `broken` have unreadable images.
pub struct Captions {
    pub captions: Vec<String>,
    pub broken: Vec<usize>,
}

impl Captions {
    pub fn new(captions: &[&str]) -> Captions {
        Captions {
            captions: captions.iter().map(|c| c.to_string()).collect(),
            broken: Vec::new(),
        }
    }
}

impl ImageTextSource for Captions {
    fn len(&self) -> usize {
        self.captions.len()
    }

    fn caption(&self, index: usize) -> Result<String, DataError> {
        self.captions
            .get(index)
            .cloned()
            .ok_or(DataError::IndexOutOfRange {
                index,
                len: self.captions.len(),
            })
    }

    fn image(&self, index: usize) -> Result<RgbImage, DataError> {
        if self.broken.contains(&index) {
            return Err(DataError::EmptyImage {
                width: 0,
                height: 0,
            });
        }
        self.caption(index)?;
        Ok(test_image(6, 4, index as u8))
    }
}
