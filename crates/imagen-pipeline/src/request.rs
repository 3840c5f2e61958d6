//! What one call to [`crate::Cascade::generate`] asks for.

use image::{GrayImage, RgbImage};

use crate::StageOverrides;

/// An edit of an existing image instead of generation from noise (base stage).
#[derive(Debug, Clone)]
pub enum Edit {
    /// Image-to-image: start from `image` noised to the sampler's timestep at
    /// `strength` (0 keeps the image, 1 ignores it).
    Img2Img {
        /// The starting image (resized to the base resolution).
        image: RgbImage,
        /// In `(0, 1]`.
        strength: f64,
    },
    /// Inpainting: regenerate where `mask` is white; elsewhere `image` is
    /// re-imposed (noised to the current timestep) after every step.
    Inpaint {
        /// The image (resized to the base resolution).
        image: RgbImage,
        /// White (255) = regenerate, black (0) = keep; resized likewise.
        mask: GrayImage,
        /// As for image-to-image; 1 starts the masked region from pure noise.
        strength: f64,
    },
}

/// A generation request. `GenerateRequest::new("a red circle")` gives one
/// image at the cascade's defaults; the fields change the rest.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Prompts, one or many.
    pub prompts: Vec<String>,
    /// Negative prompts: none (the empty prompt, as IF), one for all prompts,
    /// or one per prompt.
    pub negative_prompts: Vec<String>,
    /// Images per prompt.
    pub images_per_prompt: usize,
    /// Seed of all noise; stage `i` draws from `seed + i` unless overridden.
    pub seed: u64,
    /// Run stages `0..=stop_after` only (e.g. `Some(0)`: 64x64 only).
    pub stop_after: Option<usize>,
    /// Per-stage overrides, index = stage (missing entries: defaults).
    pub stages: Vec<StageOverrides>,
    /// An image to edit instead of starting from noise.
    pub edit: Option<Edit>,
}

impl GenerateRequest {
    /// One image of `prompt` with seed 0 and the cascade's defaults.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self::batch([prompt])
    }

    /// One image per prompt.
    pub fn batch(prompts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            prompts: prompts.into_iter().map(Into::into).collect(),
            negative_prompts: Vec::new(),
            images_per_prompt: 1,
            seed: 0,
            stop_after: None,
            stages: Vec::new(),
            edit: None,
        }
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets one negative prompt for all prompts.
    pub fn negative(mut self, prompt: impl Into<String>) -> Self {
        self.negative_prompts = vec![prompt.into()];
        self
    }

    /// Sets the number of images per prompt.
    pub fn images_per_prompt(mut self, n: usize) -> Self {
        self.images_per_prompt = n;
        self
    }

    /// Stops after stage `stage` (0 = base only).
    pub fn stop_after(mut self, stage: usize) -> Self {
        self.stop_after = Some(stage);
        self
    }

    /// Overrides settings of stage `stage`.
    pub fn stage(mut self, stage: usize, overrides: StageOverrides) -> Self {
        if self.stages.len() <= stage {
            self.stages.resize(stage + 1, StageOverrides::default());
        }
        self.stages[stage] = overrides;
        self
    }

    /// Edits an image instead of starting from noise.
    pub fn edit(mut self, edit: Edit) -> Self {
        self.edit = Some(edit);
        self
    }

    /// The overrides of stage `i`.
    pub fn overrides(&self, i: usize) -> StageOverrides {
        self.stages.get(i).copied().unwrap_or_default()
    }
}
