//! The Imagen text-to-image cascade on burn: a frozen T5 text encoder
//! (`imagen-text`), a base U-Net and super-resolution U-Nets (`imagen-unet`),
//! sampled by `imagen-diffusion`. Orchestration only: the numerics live in
//! those crates.
//!
//! - [`Cascade`]: text encoder + stages; [`Cascade::generate`] runs a
//!   [`GenerateRequest`] (prompts, negative prompts, images per prompt, seed,
//!   per-stage [`StageOverrides`], stopping early, image-to-image and
//!   inpainting through [`Edit`]).
//! - Loading: [`Cascade::from_pretrained_if`] for local DeepFloyd IF
//!   directories (diffusers layout); [`Cascade::load`] / [`Cascade::save`] for
//!   our own format ([`Manifest`]).
//! - Images: [`tensor_to_images`], [`grid`], [`save_png`], [`resize`].
//!
//! The same code runs on any burn backend: `Cascade<Flex>`, `Cascade<Wgpu>`,
//! `Cascade<Cuda>`.
#![warn(missing_docs)]

mod cascade;
mod deepfloyd;
mod embeddings;
mod error;
mod images;
mod loadable;
mod manifest;
mod prompt;
mod request;
mod settings;
mod stage;

pub use cascade::{
    Cascade, Generated, StageOutputs, StageProgress, StageTiming, TextSource, Timings,
};
pub use embeddings::TextStates;
pub use error::PipelineError;
pub use images::{
    grid, image_to_tensor, load_mask, load_rgb, mask_to_tensor, resize, resize_to, save_png,
    tensor_to_images,
};
pub use loadable::{
    CascadeOptions, ComponentReport, Loadable, Residency, Source, StageUNet, TextFiles, TextModel,
    UNetFiles,
};
pub use manifest::{MANIFEST_FORMAT, Manifest, StageEntry, TextEncoderEntry};
pub use prompt::PromptStyle;
pub use request::{Edit, GenerateRequest, StartFrom};
pub use settings::{SamplerKind, StageOverrides, StageSettings};
pub use stage::Stage;
