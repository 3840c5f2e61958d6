//! Assembles a cascade directory (`manifest.json`, our format) from a text
//! encoder directory and trained U-Nets, e.g. the demo cascade:
//!
//! ```text
//! cargo run --release --example demo_cascade -- --text runs/text \
//!     --base runs/base/unet-ema --sr runs/sr/unet-ema --out models/demo
//! ```
//! The stages sample with the schedule they were trained with (`imagen-train`'s
//! default, `squaredcos_cap_v2` over 1000 steps, predicting the noise, or `v` with
//! `--v-prediction`, `--base-v-prediction` or `--sr-v-prediction`), over
//! trailing-spaced timesteps when predicting v, leading ones when predicting
//! the noise (`demo_sampling::timestep_spacing`); weights are stored in f16.
//! Everything else a flag does not set (steps, guidance, sampler,
//! augmentation level, each stage's thresholding and noising schedule) is
//! the shipped demo cascade's (`models/demo`), so that its values live in
//! one place.

use std::path::PathBuf;

use burn::tensor::DType;
use clap::Parser;
use imagen::diffusion::{SchedulerConfig, TimestepSpacing};
use imagen::pipeline::{Cascade, Stage, StageSettings, StageUNet, TextSource};
use imagen::text::TextEncoder;
use imagen::unet::{UNet, UNetConfig};
use imagen::{DefaultBackend, default_device};

mod demo_sampling;

#[derive(Parser)]
#[command(about = "Assemble a cascade directory from trained parts")]
struct Args {
    /// T5 directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    text: PathBuf,
    /// Token length the stages were trained with.
    #[arg(long, default_value_t = 40)]
    max_length: usize,
    /// Base U-Net directory (diffusers layout).
    #[arg(long)]
    base: PathBuf,
    /// Base resolution.
    #[arg(long, default_value_t = 64)]
    base_resolution: usize,
    /// Super-resolution U-Net directory.
    #[arg(long)]
    sr: Option<PathBuf>,
    /// Super-resolution output side.
    #[arg(long, default_value_t = 256)]
    sr_resolution: usize,
    /// Both U-Nets predict v (default: the noise).
    #[arg(long)]
    v_prediction: bool,
    /// The base U-Net predicts v.
    #[arg(long)]
    base_v_prediction: bool,
    /// The super-resolution U-Net predicts v.
    #[arg(long)]
    sr_v_prediction: bool,
    /// Timestep spacing of both samplers (`leading`, `trailing`, `linspace`;
    /// default: `trailing` for a stage that predicts v, `leading` for one
    /// that predicts the noise): `trailing` and `linspace` start at the last
    /// training timestep, where the noise really is pure; `leading` starts
    /// below it.
    #[arg(long)]
    timestep_spacing: Option<String>,
    /// Default base steps and guidance (default: the shipped demo's).
    #[arg(long)]
    base_steps: Option<usize>,
    #[arg(long)]
    base_guidance: Option<f64>,
    /// Base guidance at the noisiest timesteps, `FROM,SCALE`, or `none`
    /// (default: the shipped demo's).
    #[arg(long)]
    base_high_noise_guidance: Option<String>,
    /// Guide the base only at timesteps `LOW,HIGH`, or `none` for every step
    /// (default: the shipped demo's).
    #[arg(long)]
    base_guidance_interval: Option<String>,
    /// Default super-resolution steps, guidance and augmentation level
    /// (default: the shipped demo's).
    #[arg(long)]
    sr_steps: Option<usize>,
    #[arg(long)]
    sr_guidance: Option<f64>,
    #[arg(long)]
    sr_noise_level: Option<usize>,
    /// Output cascade directory.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    let prediction = |v: bool| if v { "v_prediction" } else { "epsilon" };
    let spacing: Option<TimestepSpacing> = args
        .timestep_spacing
        .as_deref()
        .map(|name| serde_json::from_value(serde_json::json!(name)))
        .transpose()?;
    let demo = demo_sampling::demo_stages()?;
    let (demo_base, demo_sr) = (&demo[0], demo.get(1).ok_or("models/demo has no SR stage")?);
    // Each stage thresholds x0 as the shipped demo's does (Imagen's dynamic
    // thresholding, bound 1.5, in the base; clipping to [-1, 1] in
    // super-resolution).
    let schedule = |demo: &SchedulerConfig, v: bool| -> serde_json::Result<SchedulerConfig> {
        let mut config: SchedulerConfig = serde_json::from_value(serde_json::json!({
            "beta_schedule": "squaredcos_cap_v2",
            "prediction_type": prediction(v),
        }))?;
        config.timestep_spacing =
            spacing.unwrap_or_else(|| demo_sampling::timestep_spacing(config.prediction_type));
        demo_sampling::copy_thresholding(demo, &mut config);
        Ok(config)
    };
    let (base_schedule, sr_schedule) = (
        schedule(
            &demo_base.scheduler,
            args.v_prediction || args.base_v_prediction,
        )?,
        schedule(
            &demo_sr.scheduler,
            args.v_prediction || args.sr_v_prediction,
        )?,
    );
    let noising = demo_sr
        .noising
        .clone()
        .ok_or("models/demo's SR stage has no noising scheduler")?;
    let stage = |name: &str,
                 dir: &PathBuf,
                 resolution,
                 defaults|
     -> Result<Stage<DefaultBackend>, Box<dyn std::error::Error>> {
        let unet_config = UNetConfig::from_file(dir.join("config.json"))?;
        let unet = UNet::from_dir(dir, &device)?;
        let sr = unet_config.class_embed_type.is_some();
        Ok(Stage {
            name: name.into(),
            unet: StageUNet::Resident(unet),
            unet_config,
            scheduler: if sr {
                sr_schedule.clone()
            } else {
                base_schedule.clone()
            },
            noising: sr.then(|| noising.clone()),
            resolution,
            defaults,
        })
    };
    let high_noise_guidance = match args.base_high_noise_guidance.as_deref() {
        None => demo_base.defaults.high_noise_guidance,
        Some("none") => None,
        Some(arg) => Some(demo_sampling::parse_high_noise_guidance(arg)?),
    };
    let guidance_interval = match args.base_guidance_interval.as_deref() {
        None => demo_base.defaults.guidance_interval,
        Some("none") => None,
        Some(arg) => Some(demo_sampling::parse_guidance_interval(arg)?),
    };
    let mut stages = vec![stage(
        "base",
        &args.base,
        args.base_resolution,
        StageSettings {
            steps: args.base_steps.unwrap_or(demo_base.defaults.steps),
            guidance_scale: args
                .base_guidance
                .unwrap_or(demo_base.defaults.guidance_scale),
            guidance_interval,
            high_noise_guidance,
            ..demo_base.defaults
        },
    )?];
    if let Some(sr) = &args.sr {
        stages.push(stage(
            "sr",
            sr,
            args.sr_resolution,
            StageSettings {
                steps: args.sr_steps.unwrap_or(demo_sr.defaults.steps),
                guidance_scale: args.sr_guidance.unwrap_or(demo_sr.defaults.guidance_scale),
                noise_level: args.sr_noise_level.or(demo_sr.defaults.noise_level),
                ..demo_sr.defaults
            },
        )?);
    }
    let text = TextEncoder::<DefaultBackend>::from_dir(&args.text, &device)?
        .with_max_length(args.max_length);
    let mut cascade = Cascade::new(text, stages, &device)?;
    cascade.text_source = Some(TextSource {
        model_dir: args.text.clone(),
        tokenizer: args.text.join("tokenizer.json"),
    });
    cascade.save(&args.out, Some(DType::F16))?;
    let bytes: u64 = walk(&args.out)?;
    println!(
        "wrote {} ({:.1} MB)",
        args.out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// Total size of the files under `dir`.
fn walk(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += if entry.file_type()?.is_dir() {
            walk(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}
