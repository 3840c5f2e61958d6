//! What the generation examples share: per-stage CLI options and progress bars.

use std::path::Path;

use std::path::PathBuf;

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen::diffusion::if_timesteps;
use imagen::pipeline::{
    Cascade, CascadeOptions, GenerateRequest, Generated, Residency, StageOverrides, StageProgress,
    save_png,
};
use imagen::weights::LoadOptions;
use indicatif::{ProgressBar, ProgressStyle};

/// The error type of the examples' `main`.
pub type AnyError = Box<dyn std::error::Error>;

/// Per-stage settings given as comma lists (`--steps 50,25`); an empty or
/// missing entry keeps the stage's default.
#[derive(clap::Args, Debug, Default)]
pub struct StageArgs {
    /// Sampler steps per stage, e.g. `100,50`.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<usize>,
    /// Guidance scale per stage, e.g. `7,4`.
    #[arg(long, value_delimiter = ',')]
    pub guidance: Vec<f64>,
    /// Noise-augmentation level per super-resolution stage (IF: 250).
    #[arg(long, value_delimiter = ',')]
    pub noise_level: Vec<usize>,
    /// A named timestep list per stage instead of evenly spaced steps:
    /// DeepFloyd IF's `fast27`, `smart27`, `smart50`, `smart100`,
    /// `smart185`, `super27`, `super40`, `super100`; e.g. `smart100,smart50`
    /// (an empty entry keeps the stage's `--steps`).
    #[arg(long, value_delimiter = ',')]
    pub timesteps: Vec<String>,
}

impl StageArgs {
    /// The overrides of every stage in `0..stages`.
    pub fn overrides(&self, stages: usize) -> Result<Vec<StageOverrides>, AnyError> {
        if self.timesteps.len() > stages {
            return Err(format!(
                "--timesteps names {} lists for a cascade of {stages} stages",
                self.timesteps.len()
            )
            .into());
        }
        (0..stages)
            .map(|i| {
                let timesteps = match self.timesteps.get(i).map(|s| s.trim()) {
                    None | Some("") => None,
                    Some(name) => Some(if_timesteps(name)?.to_vec()),
                };
                Ok(StageOverrides {
                    steps: self.steps.get(i).copied(),
                    guidance_scale: self.guidance.get(i).copied(),
                    noise_level: self.noise_level.get(i).copied(),
                    timesteps,
                    ..Default::default()
                })
            })
            .collect()
    }
}

/// How the models are loaded: weight variant, compute dtype, residency.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Compute dtype of every component: f32, f16 or bf16 (weights convert
    /// once at load from whatever the files hold). Default: the backend's
    /// float type.
    #[arg(long, value_parser = parse_dtype)]
    pub dtype: Option<DType>,
    /// Compute dtype of the text encoder alone (overrides `--dtype`).
    #[arg(long, value_parser = parse_dtype)]
    pub text_dtype: Option<DType>,
    /// Weight-file variant to read, e.g. `fp16` (`model.fp16.safetensors`).
    /// Default: the plain files, or the only variant a directory holds.
    #[arg(long)]
    pub variant: Option<String>,
    /// Keep every model in memory for the whole run instead of loading each
    /// when its step needs it and freeing it after.
    #[arg(long, conflicts_with = "sequential")]
    pub resident: bool,
    /// Load each model when its step needs it and free it after (peak
    /// memory: the largest model).
    #[arg(long)]
    pub sequential: bool,
}

impl LoadArgs {
    /// The cascade options, with `default` residency unless a flag says otherwise.
    pub fn options(&self, default: Residency) -> CascadeOptions {
        let residency = if self.resident {
            Residency::Resident
        } else if self.sequential {
            Residency::Sequential
        } else {
            default
        };
        let component = LoadOptions {
            variant: self.variant.clone(),
            dtype: self.dtype,
        };
        CascadeOptions {
            residency,
            text: LoadOptions {
                dtype: self.text_dtype.or(self.dtype),
                ..component.clone()
            },
            stages: Vec::new(),
            default_stage: component,
        }
    }
}

/// `f32`, `f16` or `bf16`.
pub fn parse_dtype(arg: &str) -> Result<DType, String> {
    match arg.to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" => Ok(DType::F32),
        "f16" | "fp16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => Err(format!(
            "`{other}` is not a compute dtype: f32, f16 or bf16"
        )),
    }
}

/// Reports what each component was loaded from (variant, dtype, residency).
pub fn report_components<B: Backend>(cascade: &Cascade<B>) {
    for report in &cascade.reports {
        eprintln!("{report}");
    }
}

/// The request options every generation example takes.
#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    /// The prompt.
    pub prompt: String,
    /// Negative prompt (default: the empty prompt).
    #[arg(long)]
    pub negative: Option<String>,
    /// Number of images.
    #[arg(long, default_value_t = 1)]
    pub images: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Height of the base stage's images in pixels (default: its square
    /// size); later stages scale it by their factor.
    #[arg(long)]
    pub height: Option<usize>,
    /// Width of the base stage's images in pixels (default: its square size).
    #[arg(long)]
    pub width: Option<usize>,
    #[command(flatten)]
    pub stages: StageArgs,
    /// Output PNG (several images: `<stem>-<i>.png`).
    #[arg(long, default_value = "imagen.png")]
    pub output: PathBuf,
}

impl RequestArgs {
    /// The request for `cascade`.
    pub fn request<B: Backend>(&self, cascade: &Cascade<B>) -> Result<GenerateRequest, AnyError> {
        let mut req = GenerateRequest::new(&self.prompt)
            .images_per_prompt(self.images)
            .seed(self.seed);
        if let Some(n) = &self.negative {
            req = req.negative(n);
        }
        if self.height.is_some() || self.width.is_some() {
            let side = cascade.stages[0].resolution;
            req = req.size(self.height.unwrap_or(side), self.width.unwrap_or(side));
        }
        req.stages = self.stages.overrides(cascade.stages.len())?;
        Ok(req)
    }
}

/// A progress callback drawing one bar per stage.
pub fn progress_bars() -> impl FnMut(StageProgress) {
    let mut bar: Option<(usize, ProgressBar)> = None;
    move |p: StageProgress| {
        if bar.as_ref().is_none_or(|(stage, _)| *stage != p.stage) {
            if let Some((_, old)) = bar.take() {
                old.finish();
            }
            let b = ProgressBar::new(p.total as u64).with_style(
                ProgressStyle::with_template("stage {msg} [{bar:30}] {pos}/{len} {per_sec}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_message(format!("{}/{}", p.stage + 1, p.stages));
            bar = Some((p.stage, b));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.step as u64);
            if p.step == p.total {
                b.finish();
            }
        }
    }
}

/// Prints where a call's time went: loading and running each component.
pub fn report_timings(timings: &imagen::pipeline::Timings) {
    if !timings.text_load.is_zero() || !timings.text_encode.is_zero() {
        eprintln!(
            "text encoder: load {:.1?}, encode {:.1?}",
            timings.text_load, timings.text_encode
        );
    }
    for (i, s) in timings.stages.iter().enumerate() {
        let per_step = s.sampling / s.steps.max(1) as u32;
        eprintln!(
            "stage {}: load {:.1?}, {} steps in {:.1?} ({per_step:.2?} per step)",
            i + 1,
            s.load,
            s.steps,
            s.sampling
        );
    }
}

/// Writes the images as `output` (one image) or `stem-<i>.png`, and reports
/// truncated prompts.
pub fn write_images(out: &Generated, output: &Path) -> Result<(), AnyError> {
    for t in &out.truncated {
        eprintln!("warning: {t}");
    }
    for u in &out.unknown {
        eprintln!("warning: {u}");
    }
    if out.images.len() == 1 {
        save_png(&out.images[0], output)?;
        println!("wrote {}", output.display());
        return Ok(());
    }
    let stem = output.with_extension("");
    for (i, img) in out.images.iter().enumerate() {
        let path = format!("{}-{i}.png", stem.display());
        save_png(img, &path)?;
        println!("wrote {path}");
    }
    Ok(())
}

/// Ends an example: on error, prints the message and each cause on its own
/// line (`error: ...`, `  caused by: ...`), as a command-line user expects,
/// instead of Rust's debug form, and exits with status 1.
pub fn finish(result: Result<(), AnyError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}
