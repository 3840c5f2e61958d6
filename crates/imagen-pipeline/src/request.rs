//! What one call to [`crate::Cascade::generate`] asks for.

use burn::tensor::TensorData;
use image::{GrayImage, RgbImage};

use crate::{StageOverrides, TextStates};

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
    /// The base stage's `(height, width)` in pixels (`None`: the stage's
    /// square resolution); each later stage scales both by its factor, as
    /// diffusers' `IFPipeline` `height` / `width`.
    pub size: Option<(usize, usize)>,
    /// Text states of the prompts, computed ahead of time (diffusers'
    /// `prompt_embeds`): the text encoder is not run for them, and
    /// `prompts` may be empty (otherwise it must have one entry per row).
    pub prompt_embeds: Option<TextStates>,
    /// Text states of the negative prompts (one row, or one per prompt);
    /// `None` encodes [`GenerateRequest::negative_prompts`].
    pub negative_prompt_embeds: Option<TextStates>,
    /// Start at a super-resolution stage from given images instead of from
    /// the base stage (diffusers' `IFSuperResolutionPipeline(image=...)`).
    pub start_from: Option<StartFrom>,
}

/// Images a super-resolution stage starts from, as if the stage before it
/// had produced them.
#[derive(Debug, Clone)]
pub struct StartFrom {
    /// The stage to start at (a super-resolution stage).
    pub stage: usize,
    /// `[prompts, 3, height, width]` floats in `[-1, 1]`, one per prompt.
    pub image: TensorData,
}

impl StartFrom {
    /// The image's shape (`[0; 4]` if it is not 4-D).
    pub fn dims(&self) -> [usize; 4] {
        self.image.shape.as_slice().try_into().unwrap_or([0; 4])
    }
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
            size: None,
            prompt_embeds: None,
            negative_prompt_embeds: None,
            start_from: None,
        }
    }

    /// Starts at super-resolution stage `stage` from `image`
    /// (`[prompts, 3, h, w]` in `[-1, 1]`), skipping the stages before it:
    /// upscaling an existing image. `h` and `w` must scale to sizes the
    /// stage's U-Net divides.
    pub fn start_from(mut self, stage: usize, image: TensorData) -> Self {
        self.start_from = Some(StartFrom { stage, image });
        self
    }

    /// A request for text states computed ahead of time, one image per row.
    pub fn from_embeddings(states: TextStates) -> Self {
        Self {
            prompt_embeds: Some(states),
            ..Self::batch(Vec::<String>::new())
        }
    }

    /// Sets the base stage's height and width in pixels.
    pub fn size(mut self, height: usize, width: usize) -> Self {
        self.size = Some((height, width));
        self
    }

    /// Uses precomputed text states for the prompts.
    pub fn prompt_embeds(mut self, states: TextStates) -> Self {
        self.prompt_embeds = Some(states);
        self
    }

    /// Uses precomputed text states for the negative prompts.
    pub fn negative_prompt_embeds(mut self, states: TextStates) -> Self {
        self.negative_prompt_embeds = Some(states);
        self
    }

    /// Number of prompts: rows of [`GenerateRequest::prompt_embeds`] when
    /// given, else [`GenerateRequest::prompts`].
    pub fn prompt_count(&self) -> usize {
        self.prompt_embeds
            .as_ref()
            .map_or(self.prompts.len(), TextStates::len)
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
        self.stages.get(i).cloned().unwrap_or_default()
    }
}
