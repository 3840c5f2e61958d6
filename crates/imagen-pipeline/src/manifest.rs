//! Our own cascade format: one directory, a `manifest.json` naming the text
//! encoder, each stage's U-Net directory (diffusers layout), scheduler config
//! and sampling defaults.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_diffusion::SchedulerConfig;
use imagen_text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen_unet::{UNet, UNetConfig};
use serde::{Deserialize, Serialize};

use crate::error::{io, require};
use crate::{Cascade, PipelineError, PromptStyle, Stage, StageSettings, TextSource};

/// The value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "imagen-cascade";

/// `manifest.json` of a cascade directory. Paths are relative to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The text encoder.
    pub text_encoder: TextEncoderEntry,
    /// Base stage first.
    pub stages: Vec<StageEntry>,
}

/// The text encoder of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEncoderEntry {
    /// Directory with T5 `config.json`, `model.safetensors` and `tokenizer.json`.
    pub dir: String,
    /// Padded token length.
    pub max_length: usize,
    /// Prompt normalisation.
    #[serde(default)]
    pub prompt_style: PromptStyle,
    /// Whether the U-Nets get the padding mask.
    pub text_mask: bool,
}

/// One stage of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEntry {
    /// Stage name.
    pub name: String,
    /// U-Net directory (`config.json` + `diffusion_pytorch_model.safetensors`).
    pub unet: String,
    /// The sampler's `scheduler_config.json`.
    pub scheduler: String,
    /// Super-resolution: the augmentation noise schedule's config.
    #[serde(default)]
    pub noising_scheduler: Option<String>,
    /// Output side in pixels.
    pub resolution: usize,
    /// Sampling defaults.
    pub defaults: StageSettings,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, PipelineError> {
    require(path, what)?;
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|source| PipelineError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PipelineError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| PipelineError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    std::fs::write(path, text).map_err(io(path))
}

fn copy(from: &Path, to: &Path) -> Result<(), PipelineError> {
    require(from, "a text encoder file to copy")?;
    std::fs::copy(from, to).map_err(io(to))?;
    Ok(())
}

impl<B: Backend> Cascade<B> {
    /// Loads a cascade saved by [`Cascade::save`] (or written by hand /
    /// by `imagen-train`) from `dir/manifest.json`.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, PipelineError> {
        let dir = dir.as_ref();
        require(dir, "a cascade directory")?;
        let manifest: Manifest = read_json(&dir.join("manifest.json"), "the cascade manifest")?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(crate::error::invalid(format!(
                "`{}`: format is {:?}, expected {MANIFEST_FORMAT:?}",
                dir.join("manifest.json").display(),
                manifest.format
            )));
        }
        let t = &manifest.text_encoder;
        let text_dir = dir.join(&t.dir);
        require(&text_dir, "the text encoder directory")?;
        let tokenizer = text_dir.join("tokenizer.json");
        require(&tokenizer, "the tokenizer")?;
        let text = TextEncoder::new(
            T5Tokenizer::from_file(&tokenizer)?,
            T5Encoder::from_dir(&text_dir, device)?,
            device,
        )
        .with_max_length(t.max_length);
        let mut stages = Vec::with_capacity(manifest.stages.len());
        for s in &manifest.stages {
            let unet_dir = dir.join(&s.unet);
            require(&unet_dir, &format!("stage `{}`'s U-Net directory", s.name))?;
            let unet_config = UNetConfig::from_file(unet_dir.join("config.json"))?;
            let scheduler_path = dir.join(&s.scheduler);
            require(
                &scheduler_path,
                &format!("stage `{}`'s scheduler config", s.name),
            )?;
            let noising = match &s.noising_scheduler {
                Some(p) => Some(SchedulerConfig::from_file(dir.join(p))?),
                None => None,
            };
            stages.push(Stage {
                name: s.name.clone(),
                unet: UNet::load(
                    &unet_config,
                    &imagen_weights::Checkpoint::open_dir(&unet_dir, "diffusion_pytorch_model")?,
                    device,
                )?,
                unet_config,
                scheduler: SchedulerConfig::from_file(scheduler_path)?,
                noising,
                resolution: s.resolution,
                defaults: s.defaults,
            });
        }
        let mut cascade = Self::new(text, stages, device)?;
        cascade.prompt_style = t.prompt_style;
        cascade.text_mask = t.text_mask;
        cascade.text_source = Some(TextSource {
            model_dir: text_dir,
            tokenizer,
        });
        Ok(cascade)
    }

    /// Writes the cascade to `dir` in our format: `manifest.json`,
    /// `text_encoder/` (copied from [`Cascade::text_source`]), and per stage
    /// `<name>/unet/` and `<name>/scheduler_config.json`, U-Net weights stored
    /// as `dtype` (`None`: as they are).
    pub fn save(&self, dir: impl AsRef<Path>, dtype: Option<DType>) -> Result<(), PipelineError> {
        let dir = dir.as_ref();
        let source = self
            .text_source
            .as_ref()
            .ok_or_else(|| PipelineError::MissingComponent {
                dir: dir.to_path_buf(),
                component: "text encoder source files (Cascade::text_source)".into(),
            })?;
        let text_dir = dir.join("text_encoder");
        std::fs::create_dir_all(&text_dir).map_err(io(&text_dir))?;
        copy(&source.tokenizer, &text_dir.join("tokenizer.json"))?;
        copy(
            &source.model_dir.join("config.json"),
            &text_dir.join("config.json"),
        )?;
        let weights = imagen_weights::Checkpoint::open_dir(&source.model_dir, "model")?;
        for file in weights.files() {
            let name: PathBuf = file.file_name().map(PathBuf::from).unwrap_or_default();
            copy(file, &text_dir.join(name))?;
        }
        let index = source.model_dir.join("model.safetensors.index.json");
        if index.exists() {
            copy(&index, &text_dir.join("model.safetensors.index.json"))?;
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            let stage_dir = dir.join(&s.name);
            s.unet
                .save_dir(&s.unet_config, stage_dir.join("unet"), dtype)?;
            write_json(&stage_dir.join("scheduler_config.json"), &s.scheduler)?;
            let noising_scheduler = match &s.noising {
                Some(n) => {
                    write_json(&stage_dir.join("noising_scheduler_config.json"), n)?;
                    Some(format!("{}/noising_scheduler_config.json", s.name))
                }
                None => None,
            };
            stages.push(StageEntry {
                name: s.name.clone(),
                unet: format!("{}/unet", s.name),
                scheduler: format!("{}/scheduler_config.json", s.name),
                noising_scheduler,
                resolution: s.resolution,
                defaults: s.defaults,
            });
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: 1,
            text_encoder: TextEncoderEntry {
                dir: "text_encoder".into(),
                max_length: self.text.max_length(),
                prompt_style: self.prompt_style,
                text_mask: self.text_mask,
            },
            stages,
        };
        write_json(&dir.join("manifest.json"), &manifest)
    }
}
