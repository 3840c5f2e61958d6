//! Models held in memory, or loaded when a step needs them and dropped after:
//! how a cascade too large for the machine's memory still runs.
//!
//! DeepFloyd IF is T5-XXL (4.76B parameters) + IF-I-XL (4.3B) + IF-II-L
//! (1.2B): about 40 GB in f32, 20 GB in bf16. Held together they do not fit a
//! 16 or 24 GB machine; one at a time, the peak is the largest of them.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_text::{T5Config, T5Encoder, T5Tokenizer, TextEncoder};
use imagen_unet::{UNet, UNetConfig};
use imagen_weights::{Checkpoint, LoadOptions};

use crate::PipelineError;

/// When a cascade's models are in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Residency {
    /// Every component is loaded up front and kept: no loading inside a
    /// call, but memory for all of them at once.
    #[default]
    Resident,
    /// Each component is loaded when its step needs it and dropped when the
    /// step is done: the text encoder runs (prompts and negative prompts in
    /// one go) and is freed before the first U-Net loads; each stage's U-Net
    /// lives for its stage. The peak is the largest component; each call
    /// reads the weights again. Headers are read at load, so missing files,
    /// variants and dtypes fail at once, not in the middle of a call.
    Sequential,
}

/// A model in memory, or the files to load it from each time it is used.
#[derive(Debug)]
pub enum Loadable<T, S> {
    /// Loaded once and kept.
    Resident(T),
    /// Loaded from `S` for each use and dropped after.
    OnDemand(S),
}

/// Something that loads a model of type `T` onto a device.
pub trait Source<B: Backend> {
    /// The model it loads.
    type Model;
    /// Reads the model from disk.
    fn load(&self, device: &B::Device) -> Result<Self::Model, PipelineError>;
}

impl<T, S> Loadable<T, S> {
    /// Whether the model stays in memory between uses.
    pub fn is_resident(&self) -> bool {
        matches!(self, Self::Resident(_))
    }

    /// Calls `f` with the model: the resident one, or one loaded for this
    /// call and dropped when `f` returns.
    pub fn with<B: Backend, R>(
        &self,
        device: &B::Device,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, PipelineError>
    where
        S: Source<B, Model = T>,
    {
        Ok(self.with_timed(device, f)?.0)
    }

    /// [`Loadable::with`], also returning how long loading took (zero for
    /// a resident model).
    pub fn with_timed<B: Backend, R>(
        &self,
        device: &B::Device,
        f: impl FnOnce(&T) -> R,
    ) -> Result<(R, std::time::Duration), PipelineError>
    where
        S: Source<B, Model = T>,
    {
        match self {
            Self::Resident(model) => Ok((f(model), std::time::Duration::ZERO)),
            Self::OnDemand(source) => {
                let start = std::time::Instant::now();
                let model = source.load(device)?;
                let load = start.elapsed();
                Ok((f(&model), load))
            }
        }
    }
}

/// The files of a text encoder loaded on demand: tokenizer, config and the
/// checkpoint's tensor index (headers only).
#[derive(Debug)]
pub struct TextFiles {
    /// The tokenizer: a `tokenizer.json`, or a directory holding one or a
    /// SentencePiece `spiece.model` (as the published T5 and IF repositories).
    pub tokenizer: PathBuf,
    /// The T5 `config.json`, parsed.
    pub config: T5Config,
    /// The weights' tensor index.
    pub checkpoint: Checkpoint,
    /// The compute dtype the weights convert to.
    pub dtype: DType,
    /// Padded token length.
    pub max_length: usize,
}

impl<B: Backend> Source<B> for TextFiles {
    type Model = TextEncoder<B>;

    fn load(&self, device: &B::Device) -> Result<TextEncoder<B>, PipelineError> {
        let model = T5Encoder::load_with(&self.config, &self.checkpoint, self.dtype, device)?;
        let tokenizer = read_tokenizer(&self.tokenizer, self.config.vocab_size)?;
        Ok(TextEncoder::new(tokenizer, model, device).with_max_length(self.max_length))
    }
}

/// The files of a U-Net loaded on demand.
#[derive(Debug)]
pub struct UNetFiles {
    /// The U-Net's config.
    pub config: UNetConfig,
    /// The weights' tensor index.
    pub checkpoint: Checkpoint,
    /// The compute dtype the weights convert to.
    pub dtype: DType,
}

impl<B: Backend> Source<B> for UNetFiles {
    type Model = UNet<B>;

    fn load(&self, device: &B::Device) -> Result<UNet<B>, PipelineError> {
        Ok(UNet::load_with(
            &self.config,
            &self.checkpoint,
            self.dtype,
            device,
        )?)
    }
}

/// A cascade's text encoder, resident or on demand.
pub type TextModel<B> = Loadable<TextEncoder<B>, TextFiles>;

/// A stage's U-Net, resident or on demand.
pub type StageUNet<B> = Loadable<UNet<B>, UNetFiles>;

/// What was loaded for one component, and from where: the caller can say
/// which variant a directory's files were read as (chosen without being
/// told when the directory holds only one) and in which dtype the
/// component computes.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    /// `"text_encoder"`, or the stage's name.
    pub component: String,
    /// The directory the weights were read from.
    pub dir: PathBuf,
    /// The weight files.
    pub files: Vec<PathBuf>,
    /// The variant read (`"fp16"`), `None` for the plain files.
    pub variant: Option<String>,
    /// Whether the variant was picked without being asked for.
    pub variant_inferred: bool,
    /// The compute dtype.
    pub dtype: DType,
    /// Whether the model stays in memory ([`Residency::Resident`]).
    pub resident: bool,
}

impl std::fmt::Display for ComponentReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = match self.variant.as_deref() {
            Some(v) if self.variant_inferred => {
                format!("variant `{v}` (the only one in the directory)")
            }
            Some(v) => format!("variant `{v}`"),
            None => "plain weight files".to_string(),
        };
        write!(
            f,
            "{}: {files} from `{}`, computing in {:?}, {}",
            self.component,
            self.dir.display(),
            self.dtype,
            if self.resident {
                "resident"
            } else {
                "loaded when needed"
            }
        )
    }
}

/// Opens `dir`'s `stem` weights for `options`, returning the checkpoint (tensor
/// index only), the compute dtype and the report.
pub(crate) fn open_component<B: Backend>(
    component: &str,
    dir: &Path,
    stem: &str,
    options: &LoadOptions,
    residency: Residency,
    device: &B::Device,
) -> Result<(Checkpoint, DType, ComponentReport), PipelineError> {
    let dtype = options.resolve_dtype::<B>(device)?;
    let checkpoint = Checkpoint::open_dir_variant(dir, stem, options.variant.as_deref())?;
    let variant = checkpoint.variant().map(str::to_string);
    let report = ComponentReport {
        component: component.to_string(),
        dir: dir.to_path_buf(),
        files: checkpoint.files().to_vec(),
        variant_inferred: options.variant.is_none() && variant.is_some(),
        variant,
        dtype,
        resident: residency == Residency::Resident,
    };
    Ok((checkpoint, dtype, report))
}

/// A tokenizer file, or a tokenizer directory (`tokenizer.json` or
/// `spiece.model`), checked against the model's `vocab_size`.
pub(crate) fn read_tokenizer(path: &Path, vocab_size: usize) -> Result<T5Tokenizer, PipelineError> {
    let tokenizer = if path.is_dir() {
        T5Tokenizer::from_dir(path)?
    } else {
        T5Tokenizer::from_file(path)?
    };
    tokenizer.check_vocab_size(vocab_size, path)?;
    Ok(tokenizer)
}

/// A text encoder from `dir` (T5 `config.json` + weights) and `tokenizer`.
pub(crate) fn text_model<B: Backend>(
    dir: &Path,
    tokenizer: PathBuf,
    max_length: usize,
    options: &LoadOptions,
    residency: Residency,
    device: &B::Device,
) -> Result<(TextModel<B>, ComponentReport), PipelineError> {
    let config_path = dir.join("config.json");
    crate::error::require(&config_path, "the text encoder's config.json")?;
    crate::error::require(&tokenizer, "the tokenizer")?;
    let config = T5Config::from_file(&config_path)?;
    let (checkpoint, dtype, report) =
        open_component::<B>("text_encoder", dir, "model", options, residency, device)?;
    let files = TextFiles {
        tokenizer,
        config,
        checkpoint,
        dtype,
        max_length,
    };
    let model = match residency {
        Residency::Resident => Loadable::Resident(Source::<B>::load(&files, device)?),
        Residency::Sequential => {
            // Fail now on a tokenizer that cannot be read, not mid-call.
            read_tokenizer(&files.tokenizer, files.config.vocab_size)?;
            Loadable::OnDemand(files)
        }
    };
    Ok((model, report))
}

/// A stage's U-Net from a diffusers `unet/` directory.
pub(crate) fn stage_unet<B: Backend>(
    name: &str,
    dir: &Path,
    options: &LoadOptions,
    residency: Residency,
    device: &B::Device,
) -> Result<(StageUNet<B>, UNetConfig, ComponentReport), PipelineError> {
    let config_path = dir.join("config.json");
    crate::error::require(&config_path, &format!("stage `{name}`'s U-Net config"))?;
    let config = UNetConfig::from_file(&config_path)?;
    let (checkpoint, dtype, report) = open_component::<B>(
        name,
        dir,
        "diffusion_pytorch_model",
        options,
        residency,
        device,
    )?;
    let files = UNetFiles {
        config: config.clone(),
        checkpoint,
        dtype,
    };
    let unet = match residency {
        Residency::Resident => Loadable::Resident(Source::<B>::load(&files, device)?),
        Residency::Sequential => Loadable::OnDemand(files),
    };
    Ok((unet, config, report))
}

/// How [`crate::Cascade::from_pretrained_if_with`] and
/// [`crate::Cascade::load_with`] load a cascade: residency, and per
/// component the weight variant and compute dtype.
///
/// ```
/// use burn::tensor::DType;
/// use imagen_pipeline::{CascadeOptions, Residency};
/// use imagen_weights::LoadOptions;
/// // IF's published half-precision files, computed in bf16, one model at a time.
/// let options = CascadeOptions::default()
///     .residency(Residency::Sequential)
///     .variant("fp16")
///     .dtype(DType::BF16);
/// assert_eq!(options.stage_options(1), &LoadOptions::default().variant("fp16").dtype(DType::BF16));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CascadeOptions {
    /// Whether models stay in memory.
    pub residency: Residency,
    /// The text encoder's variant and dtype.
    pub text: LoadOptions,
    /// Each stage's variant and dtype (index = stage); stages past the end
    /// use [`CascadeOptions::default_stage`].
    pub stages: Vec<LoadOptions>,
    /// The options of stages not listed in [`CascadeOptions::stages`].
    pub default_stage: LoadOptions,
}

impl CascadeOptions {
    /// Sets the residency.
    pub fn residency(mut self, residency: Residency) -> Self {
        self.residency = residency;
        self
    }

    /// Reads `variant` for every component.
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        let variant = variant.into();
        self.text.variant = Some(variant.clone());
        self.default_stage.variant = Some(variant.clone());
        for s in &mut self.stages {
            s.variant = Some(variant.clone());
        }
        self
    }

    /// Computes every component in `dtype`.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.text.dtype = Some(dtype);
        self.default_stage.dtype = Some(dtype);
        for s in &mut self.stages {
            s.dtype = Some(dtype);
        }
        self
    }

    /// Sets the text encoder's options.
    pub fn text(mut self, options: LoadOptions) -> Self {
        self.text = options;
        self
    }

    /// Sets stage `stage`'s options.
    pub fn stage(mut self, stage: usize, options: LoadOptions) -> Self {
        if self.stages.len() <= stage {
            self.stages.resize(stage + 1, self.default_stage.clone());
        }
        self.stages[stage] = options;
        self
    }

    /// The options of stage `stage`.
    pub fn stage_options(&self, stage: usize) -> &LoadOptions {
        self.stages.get(stage).unwrap_or(&self.default_stage)
    }
}
