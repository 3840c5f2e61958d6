//! Our own cascade format: one directory, a `manifest.json` naming the text
//! encoder, each stage's U-Net directory (diffusers layout), scheduler config
//! and sampling defaults.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_diffusion::SchedulerConfig;
use imagen_weights::LoadOptions;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, io, require};
use crate::loadable::{stage_unet, text_model};
use crate::{
    Cascade, CascadeOptions, PipelineError, PromptStyle, Stage, StageSettings, TextSource,
};

/// The manifest versions this crate reads.
const MANIFEST_VERSION: u32 = 1;

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
    /// Weight-file variant to read (`"fp16"`); `None`: the plain files or
    /// the only variant present. A variant in the load options wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
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
    /// Weight-file variant of the U-Net, as [`TextEncoderEntry::variant`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `dir/relative`, refusing a manifest path that is absolute or climbs out
/// of the cascade directory (`..`): a downloaded manifest must not read
/// files elsewhere on the machine.
fn inside(dir: &Path, relative: &str, what: &str) -> Result<PathBuf, PipelineError> {
    let path = Path::new(relative);
    let escapes = path.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if relative.is_empty() || escapes {
        return Err(invalid(format!(
            "`{}`: {what} path {relative:?} must be relative and stay inside the cascade directory",
            dir.join("manifest.json").display()
        )));
    }
    Ok(dir.join(path))
}

/// Reads a scheduler config and builds its training tables, which every
/// sampler and the noise augmentation need: a config without valid ones
/// (a `beta_end` of 2, no timesteps) is refused here, naming the file,
/// rather than when sampling starts.
fn scheduler_config(path: &Path) -> Result<SchedulerConfig, PipelineError> {
    let config = SchedulerConfig::from_file(path)?;
    config
        .schedule()
        .map_err(|e| invalid(format!("`{}`: {e}", path.display())))?;
    Ok(config)
}

/// [`inside`], and what is there must be a directory (or, with `file`, a
/// file): a missing or wrong one names the manifest that points to it.
fn component(dir: &Path, relative: &str, what: &str, file: bool) -> Result<PathBuf, PipelineError> {
    let path = inside(dir, relative, what)?;
    let manifest = dir.join("manifest.json");
    if !path.exists() {
        return Err(PipelineError::NotFound {
            path,
            what: format!("{what}, named in `{}`", manifest.display()),
        });
    }
    if path.is_file() != file {
        let kind = if file { "a file" } else { "a directory" };
        return Err(invalid(format!(
            "`{}`: {what} `{}` is not {kind}",
            manifest.display(),
            path.display()
        )));
    }
    Ok(path)
}

/// `options` with the manifest's variant where the options name none.
fn with_variant(options: &LoadOptions, variant: &Option<String>) -> LoadOptions {
    let mut options = options.clone();
    if options.variant.is_none() {
        options.variant.clone_from(variant);
    }
    options
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

/// Copies a tokenizer (a `tokenizer.json`, or a directory with one or with
/// `spiece.model` and its configs) into `text_dir`.
fn copy_tokenizer(from: &Path, text_dir: &Path) -> Result<(), PipelineError> {
    if !from.is_dir() {
        return copy(from, &text_dir.join("tokenizer.json"));
    }
    let mut copied = false;
    for name in [
        "tokenizer.json",
        "spiece.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let file = from.join(name);
        if file.is_file() && (name != "spiece.model" || !from.join("tokenizer.json").is_file()) {
            copy(&file, &text_dir.join(name))?;
            copied |= matches!(name, "tokenizer.json" | "spiece.model");
        }
    }
    if copied {
        Ok(())
    } else {
        Err(PipelineError::NotFound {
            path: from.to_path_buf(),
            what: "a tokenizer (tokenizer.json or spiece.model) to copy".into(),
        })
    }
}

impl<B: Backend> Cascade<B> {
    /// Loads a cascade saved by [`Cascade::save`] (or written by hand /
    /// by `imagen-train`) from `dir/manifest.json`, everything resident in
    /// the backend's float type.
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, PipelineError> {
        Self::load_with(dir, &CascadeOptions::default(), device)
    }

    /// [`Cascade::load`] with `options`: per component variant and compute
    /// dtype, and whether models stay resident.
    pub fn load_with(
        dir: impl AsRef<Path>,
        options: &CascadeOptions,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let dir = dir.as_ref();
        require(dir, "a cascade directory")?;
        let manifest_path = dir.join("manifest.json");
        let manifest: Manifest = read_json(&manifest_path, "the cascade manifest")?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(invalid(format!(
                "`{}`: format is {:?}, expected {MANIFEST_FORMAT:?}",
                manifest_path.display(),
                manifest.format
            )));
        }
        if manifest.version != MANIFEST_VERSION {
            return Err(invalid(format!(
                "`{}`: manifest version {} is not one this version of imagen-pipeline reads ({MANIFEST_VERSION})",
                manifest_path.display(),
                manifest.version
            )));
        }
        // Stage names are directory names in `Cascade::save` and keys of
        // per-stage options: one stage each. (A manifest repeating a stage
        // 100 times loaded it 100 times; found by the fuzz tests.)
        let mut names = std::collections::HashSet::new();
        if let Some(s) = manifest.stages.iter().find(|s| !names.insert(&s.name)) {
            return Err(invalid(format!(
                "`{}`: stage name {:?} appears twice",
                manifest_path.display(),
                s.name
            )));
        }
        let residency = options.residency;
        let t = &manifest.text_encoder;
        let text_dir = component(dir, &t.dir, "text encoder", false)?;
        // `tokenizer.json`, or `spiece.model` for a cascade saved from IF files.
        let tokenizer = text_dir.clone();
        let (text, report) = text_model::<B>(
            &text_dir,
            tokenizer.clone(),
            t.max_length,
            &with_variant(&options.text, &t.variant),
            residency,
            device,
        )?;
        let mut reports = vec![report];
        let mut stages = Vec::with_capacity(manifest.stages.len());
        for (i, s) in manifest.stages.iter().enumerate() {
            let unet_dir = component(dir, &s.unet, &format!("stage `{}`'s U-Net", s.name), false)?;
            let scheduler_path = component(
                dir,
                &s.scheduler,
                &format!("stage `{}`'s scheduler", s.name),
                true,
            )?;
            let noising = match &s.noising_scheduler {
                Some(p) => Some(scheduler_config(&component(
                    dir,
                    p,
                    &format!("stage `{}`'s noising scheduler", s.name),
                    true,
                )?)?),
                None => None,
            };
            let scheduler = scheduler_config(&scheduler_path)?;
            let (unet, unet_config, report) = stage_unet::<B>(
                &s.name,
                &unet_dir,
                &with_variant(options.stage_options(i), &s.variant),
                residency,
                device,
            )?;
            reports.push(report);
            stages.push(Stage {
                name: s.name.clone(),
                unet,
                unet_config,
                scheduler,
                noising,
                resolution: s.resolution,
                defaults: s.defaults,
            });
        }
        // What the cascade refuses here (a resolution the U-Net cannot
        // take...) is a value of the manifest.
        let mut cascade = Self::from_parts(text, stages, reports, device).map_err(|e| match e {
            PipelineError::InvalidRequest(msg) => {
                invalid(format!("`{}`: {msg}", manifest_path.display()))
            }
            other => other,
        })?;
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
        copy_tokenizer(&source.tokenizer, &text_dir)?;
        copy(
            &source.model_dir.join("config.json"),
            &text_dir.join("config.json"),
        )?;
        let text_variant = self
            .reports
            .iter()
            .find(|r| r.component == "text_encoder")
            .and_then(|r| r.variant.clone());
        let weights = imagen_weights::Checkpoint::open_dir_variant(
            &source.model_dir,
            "model",
            text_variant.as_deref(),
        )?;
        for file in weights.files() {
            let name: PathBuf = file.file_name().map(PathBuf::from).unwrap_or_default();
            copy(file, &text_dir.join(name))?;
        }
        let index_name = match &text_variant {
            Some(v) => format!("model.safetensors.index.{v}.json"),
            None => "model.safetensors.index.json".to_string(),
        };
        let index = source.model_dir.join(&index_name);
        if index.exists() {
            copy(&index, &text_dir.join(&index_name))?;
        }
        let mut stages = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            // A stage name becomes a directory: it must not climb out of `dir`.
            let stage_dir = inside(dir, &s.name, "stage name")?;
            s.unet.with(&self.device, |unet| {
                unet.save_dir(&s.unet_config, stage_dir.join("unet"), dtype)
            })??;
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
                variant: None,
            });
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            text_encoder: TextEncoderEntry {
                dir: "text_encoder".into(),
                max_length: self.max_length(),
                prompt_style: self.prompt_style,
                text_mask: self.text_mask,
                variant: text_variant,
            },
            stages,
        };
        write_json(&dir.join("manifest.json"), &manifest)
    }
}
