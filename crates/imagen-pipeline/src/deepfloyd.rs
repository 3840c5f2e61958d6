//! Local DeepFloyd IF directories in the diffusers layout.

use std::path::Path;

use burn::tensor::backend::Backend;
use imagen_diffusion::SchedulerConfig;
use imagen_text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen_unet::{UNet, UNetConfig};
use imagen_weights::Checkpoint;
use serde_json::Value;

use crate::error::{io, require};
use crate::{Cascade, PipelineError, PromptStyle, SamplerKind, Stage, StageSettings, TextSource};

/// Reads `model_index.json` and returns it (checked to exist and parse).
fn model_index(dir: &Path) -> Result<Value, PipelineError> {
    require(dir, "a DeepFloyd IF pipeline directory")?;
    let path = dir.join("model_index.json");
    require(&path, "the pipeline's model_index.json")?;
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    serde_json::from_str(&text).map_err(|source| PipelineError::Json { path, source })
}

/// Whether `model_index.json` lists component `name` (not `[null, null]`).
fn has(index: &Value, name: &str) -> bool {
    index
        .get(name)
        .and_then(Value::as_array)
        .is_some_and(|v| v.first().is_some_and(|c| !c.is_null()))
}

fn component(dir: &Path, index: &Value, name: &str) -> Result<std::path::PathBuf, PipelineError> {
    if !has(index, name) {
        return Err(PipelineError::MissingComponent {
            dir: dir.to_path_buf(),
            component: format!("`{name}` in model_index.json"),
        });
    }
    let path = dir.join(name);
    require(&path, &format!("the `{name}` component"))?;
    Ok(path)
}

fn scheduler(dir: &Path) -> Result<SchedulerConfig, PipelineError> {
    let path = dir.join("scheduler_config.json");
    require(&path, "a scheduler config")?;
    Ok(SchedulerConfig::from_file(path)?)
}

fn stage<B: Backend>(
    name: &str,
    dir: &Path,
    index: &Value,
    defaults: StageSettings,
    device: &B::Device,
) -> Result<Stage<B>, PipelineError> {
    let unet_dir = component(dir, index, "unet")?;
    let config_path = unet_dir.join("config.json");
    require(&config_path, "the U-Net config")?;
    let unet_config = UNetConfig::from_file(&config_path)?;
    let weights = Checkpoint::open_dir(&unet_dir, "diffusion_pytorch_model")?;
    let unet = UNet::load(&unet_config, &weights, device)?;
    let noising = if has(index, "image_noising_scheduler") {
        Some(scheduler(&component(
            dir,
            index,
            "image_noising_scheduler",
        )?)?)
    } else {
        None
    };
    Ok(Stage {
        name: name.to_string(),
        resolution: unet_config.sample_size.unwrap_or(64),
        unet,
        unet_config,
        scheduler: scheduler(&component(dir, index, "scheduler")?)?,
        noising,
        defaults,
    })
}

impl<B: Backend> Cascade<B> {
    /// diffusers' `IFPipeline` defaults: 100 DDPM steps, guidance 7.
    pub const IF_STAGE1_DEFAULTS: StageSettings = StageSettings {
        steps: 100,
        guidance_scale: 7.0,
        sampler: SamplerKind::Ddpm,
        noise_level: None,
        guidance_interval: None,
        high_noise_guidance: None,
    };

    /// diffusers' `IFSuperResolutionPipeline` defaults: 50 DDPM steps,
    /// guidance 4, noise level 250.
    pub const IF_STAGE2_DEFAULTS: StageSettings = StageSettings {
        steps: 50,
        guidance_scale: 4.0,
        sampler: SamplerKind::Ddpm,
        noise_level: Some(250),
        guidance_interval: None,
        high_noise_guidance: None,
    };

    /// Loads DeepFloyd IF stage I (and optionally stage II) from local
    /// diffusers directories (`model_index.json`, `text_encoder/`,
    /// `tokenizer/`, `unet/`, `scheduler/`, stage II's
    /// `image_noising_scheduler/`), as `IFPipeline` /
    /// `IFSuperResolutionPipeline` run them: 77 tokens, prompts lowercased and
    /// trimmed (IF's `clean_caption=False` path), no text mask given to the
    /// U-Nets, the stage-I text embeddings reused by stage II, bilinear
    /// (`align_corners = true`) upsampling of the stage-I output.
    pub fn from_pretrained_if(
        stage1_dir: impl AsRef<Path>,
        stage2_dir: Option<&Path>,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let dir = stage1_dir.as_ref();
        let index = model_index(dir)?;
        let text_dir = component(dir, &index, "text_encoder")?;
        let tokenizer_path = component(dir, &index, "tokenizer")?.join("tokenizer.json");
        require(&tokenizer_path, "the tokenizer's tokenizer.json")?;
        let text = TextEncoder::new(
            T5Tokenizer::from_file(&tokenizer_path)?,
            T5Encoder::from_dir(&text_dir, device)?,
            device,
        )
        .with_max_length(77);
        let mut stages = vec![stage(
            "stage1",
            dir,
            &index,
            Self::IF_STAGE1_DEFAULTS,
            device,
        )?];
        if let Some(dir2) = stage2_dir {
            let index2 = model_index(dir2)?;
            stages.push(stage(
                "stage2",
                dir2,
                &index2,
                Self::IF_STAGE2_DEFAULTS,
                device,
            )?);
        }
        let mut cascade = Self::new(text, stages, device)?;
        cascade.prompt_style = PromptStyle::LowercaseStrip;
        cascade.text_mask = false;
        cascade.text_source = Some(TextSource {
            model_dir: text_dir,
            tokenizer: tokenizer_path,
        });
        Ok(cascade)
    }
}
