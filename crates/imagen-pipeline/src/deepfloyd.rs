//! Local DeepFloyd IF directories in the diffusers layout.

use std::path::Path;

use burn::tensor::backend::Backend;
use imagen_diffusion::SchedulerConfig;
use imagen_weights::LoadOptions;
use serde_json::Value;

use crate::error::{io, require};
use crate::loadable::{stage_unet, text_model};
use crate::{
    Cascade, CascadeOptions, ComponentReport, PipelineError, PromptStyle, Residency, SamplerKind,
    Stage, StageSettings, TextSource,
};

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
    (options, residency): (&LoadOptions, Residency),
    device: &B::Device,
) -> Result<(Stage<B>, ComponentReport), PipelineError> {
    let unet_dir = component(dir, index, "unet")?;
    let (unet, unet_config, report) = stage_unet::<B>(name, &unet_dir, options, residency, device)?;
    let noising = if has(index, "image_noising_scheduler") {
        Some(scheduler(&component(
            dir,
            index,
            "image_noising_scheduler",
        )?)?)
    } else {
        None
    };
    let stage = Stage {
        name: name.to_string(),
        resolution: unet_config.sample_size.unwrap_or(64),
        unet,
        unet_config,
        scheduler: scheduler(&component(dir, index, "scheduler")?)?,
        noising,
        defaults,
    };
    Ok((stage, report))
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
    ///
    /// Everything resident, in the backend's float type, from the plain
    /// weight files or the only variant a directory holds; see
    /// [`Cascade::from_pretrained_if_with`] for the rest.
    pub fn from_pretrained_if(
        stage1_dir: impl AsRef<Path>,
        stage2_dir: Option<&Path>,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        Self::from_pretrained_if_with(stage1_dir, stage2_dir, &CascadeOptions::default(), device)
    }

    /// [`Cascade::from_pretrained_if`] with `options`: the weight variant and
    /// compute dtype of each component, and whether they stay resident.
    ///
    /// ```no_run
    /// use burn::tensor::DType;
    /// use burn_flex::Flex;
    /// use imagen_pipeline::{Cascade, CascadeOptions, GenerateRequest, Residency};
    /// // IF's published fp16 files, computed in bf16, one model in memory at a time.
    /// let options = CascadeOptions::default()
    ///     .variant("fp16")
    ///     .dtype(DType::BF16)
    ///     .residency(Residency::Sequential);
    /// let cascade = Cascade::<Flex>::from_pretrained_if_with(
    ///     "IF-I-XL-v1.0",
    ///     Some("IF-II-L-v1.0".as_ref()),
    ///     &options,
    ///     &Default::default(),
    /// )?;
    /// for report in &cascade.reports {
    ///     eprintln!("{report}");
    /// }
    /// let out = cascade.generate(&GenerateRequest::new("a corgi").size(64, 96), &mut |_| {})?;
    /// # Ok::<(), imagen_pipeline::PipelineError>(())
    /// ```
    pub fn from_pretrained_if_with(
        stage1_dir: impl AsRef<Path>,
        stage2_dir: Option<&Path>,
        options: &CascadeOptions,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let dir = stage1_dir.as_ref();
        let index = model_index(dir)?;
        let text_dir = component(dir, &index, "text_encoder")?;
        // `tokenizer.json`, or the SentencePiece `spiece.model` the published
        // repositories ship.
        let tokenizer_path = component(dir, &index, "tokenizer")?;
        let residency = options.residency;
        let (text, text_report) = text_model::<B>(
            &text_dir,
            tokenizer_path.clone(),
            77,
            &options.text,
            residency,
            device,
        )?;
        let mut reports = vec![text_report];
        let mut stages = Vec::new();
        let (stage1, report) = stage(
            "stage1",
            dir,
            &index,
            Self::IF_STAGE1_DEFAULTS,
            (options.stage_options(0), residency),
            device,
        )?;
        stages.push(stage1);
        reports.push(report);
        if let Some(dir2) = stage2_dir {
            let index2 = model_index(dir2)?;
            let (stage2, report) = stage(
                "stage2",
                dir2,
                &index2,
                Self::IF_STAGE2_DEFAULTS,
                (options.stage_options(1), residency),
                device,
            )?;
            stages.push(stage2);
            reports.push(report);
        }
        let mut cascade = Self::from_parts(text, stages, reports, device)?;
        cascade.prompt_style = PromptStyle::LowercaseStrip;
        cascade.text_mask = false;
        cascade.text_source = Some(TextSource {
            model_dir: text_dir,
            tokenizer: tokenizer_path,
        });
        Ok(cascade)
    }
}
