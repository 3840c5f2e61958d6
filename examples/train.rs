//! Train (or fine-tune) one cascade stage with `imagen-train`: the command
//! line around `imagen_train::TrainingRun`, which owns the run (resume or
//! init, the log, checkpoints, the EMA export); this file maps flags to its
//! settings and draws the progress bar and preview grids.
//!
//! ```text
//! cargo run --release --example train -- --stage base --data DIR --text-encoder T5_DIR \
//!     --out runs/base --resolution 64 --batch 8 --steps 20000 --lr 1e-4 [--resume]
//! cargo run --release --example train -- --stage sr --shapes 100000 --text-encoder T5_DIR \
//!     --out runs/sr --resolution 256 --crop 64 --lowres 16 --preset demo_sr
//! ```
//! Data: `--data DIR` (`name.png|jpg` + `name.txt`), `--jsonl FILE`
//! (`{"image": ..., "caption": ...}` per line) or `--shapes N` (the
//! procedural shapes dataset). Captions are encoded once into
//! `<out>/embeddings` (T5 never runs during training). Writes
//! `<out>/checkpoints/step-*` (the last 3), `<out>/log.csv` and, at every
//! checkpoint, `<out>/unet-ema` (diffusers layout, loadable by the pipeline).
//!
//! Data parallel (burn-collective): `--devices N` trains on N devices of this
//! machine; across machines, start `--serve-orchestrator PORT` once and run
//! on every node `--nodes M --node-rank R --orchestrator ws://HEAD:PORT
//! --node-address ws://THIS_HOST:DATA_PORT --data-port DATA_PORT` (see
//! docs/training.md). The global batch is `batch * accumulate * devices * nodes`.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::Autodiff;
use clap::{Parser, ValueEnum};
use imagen::diffusion::PredictionType;
use imagen::pipeline::{
    Cascade, GenerateRequest, Stage as CascadeStage, StageSettings, StageUNet, grid, save_png,
};
use imagen::shapes::{CaptionStyle, SamplerConfig, Shape};
use imagen::text::TextEncoder;
use imagen::train::data::{
    DataLoaderConfig, EmbeddingCache, EmbeddingCacheConfig, FolderDataset, ImageTextSource,
    JsonlDataset, ShapesDataset,
};
use imagen::train::{
    DataParallel, LrSchedule, RunConfig, StageKind, TimestepSampling, TrainConfig, Trainer,
    TrainingRun, UNetInit,
};
use imagen::unet::UNetConfig;
use imagen::{DefaultBackend, default_device};
use indicatif::{ProgressBar, ProgressStyle};

// The CLI parsers there are demo_cascade's and evaluate's.
#[allow(dead_code)]
mod demo_sampling;

type B = Autodiff<DefaultBackend>;

#[derive(Clone, Copy, ValueEnum)]
enum Stage {
    Base,
    Sr,
}

/// U-Net presets (`UNetConfig::demo_base` etc.).
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Preset {
    DemoBase,
    DemoSr,
    TinyBase,
    TinySr,
}

#[derive(Parser)]
#[command(about = "Train a cascade stage (imagen-train)")]
struct Args {
    /// Which stage.
    #[arg(long, value_enum)]
    stage: Stage,
    /// Folder of images + captions.
    #[arg(long)]
    data: Option<PathBuf>,
    /// JSONL manifest.
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Use N procedurally generated shapes examples.
    #[arg(long)]
    shapes: Option<usize>,
    /// How often a shapes caption names the background colour, 0 to 1.
    #[arg(long, default_value_t = CaptionStyle::default().background_probability, requires = "shapes")]
    background_captions: f64,
    /// Draw a shape more (or less) often than the others, e.g.
    /// `--shape-weight star=2 --shape-weight cross=2`; unlisted shapes weigh 1.
    #[arg(long = "shape-weight", value_parser = parse_shape_weight, requires = "shapes")]
    shape_weights: Vec<(Shape, f64)>,
    /// With --shapes: relative weights of 1, 2, 3, 4 objects per scene,
    /// e.g. `--count-weights 2,4,1,1` (default uniform).
    #[arg(long, value_delimiter = ',', requires = "shapes")]
    count_weights: Vec<f64>,
    /// T5 directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    text_encoder: PathBuf,
    /// Token length.
    #[arg(long, default_value_t = 77)]
    max_length: usize,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Training resolution.
    #[arg(long, default_value_t = 64)]
    resolution: usize,
    /// Train on random crops of this side, taken after resizing to
    /// --resolution (super-resolution stages; --lowres is then the crop's
    /// low-resolution side).
    #[arg(long)]
    crop: Option<u32>,
    /// Super-resolution input side.
    #[arg(long, default_value_t = 64)]
    lowres: usize,
    /// Largest noise-augmentation level for SR training.
    #[arg(long, default_value_t = 250)]
    max_noise_level: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Micro-batches per step.
    #[arg(long, default_value_t = 1)]
    accumulate: usize,
    /// Optimiser steps.
    #[arg(long, default_value_t = 10_000)]
    steps: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Decay the learning rate along a cosine to this value (default: constant).
    #[arg(long)]
    min_lr: Option<f64>,
    /// EMA decay.
    #[arg(long, default_value_t = 0.9999)]
    ema_decay: f64,
    /// Predict `v` instead of the noise.
    #[arg(long)]
    v_prediction: bool,
    /// Min-SNR-gamma loss weighting.
    #[arg(long)]
    min_snr: Option<f64>,
    /// Weight of the variational bound in the hybrid loss of U-Nets that
    /// predict a learned variance (IF's stages).
    #[arg(long, default_value_t = 0.001)]
    vlb_weight: f64,
    /// Draw this share of timesteps from --high-noise-from upwards, where
    /// the text alone sets background and layout (default: uniform).
    #[arg(long)]
    high_noise_fraction: Option<f64>,
    /// First timestep of the high-noise range (needs --high-noise-fraction).
    #[arg(long, default_value_t = 900, requires = "high_noise_fraction")]
    high_noise_from: usize,
    /// Offset noise: add this times one Gaussian draw per image and channel
    /// to the training noise, so the text, not the noise, sets the image's
    /// mean (default 0: off; diffusers' `--noise_offset`).
    #[arg(long, default_value_t = 0.0)]
    noise_offset: f64,
    /// U-Net preset unless --unet-config or --init (default: demo_base or
    /// demo_sr, as --stage).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// A U-Net config.json.
    #[arg(long)]
    unet_config: Option<PathBuf>,
    /// Fine-tune from this diffusers unet/ directory.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Continue from the newest checkpoint in <out>/checkpoints (the same
    /// settings, but for the learning-rate schedule: --steps, --lr, --warmup,
    /// --min-lr).
    #[arg(long)]
    resume: bool,
    /// Checkpoint every N steps.
    #[arg(long, default_value_t = 1000)]
    save_every: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Every N steps, sample a grid with the EMA weights into
    /// `<out>/samples/step-N.png` (base stages; 0: never).
    #[arg(long, default_value_t = 0)]
    sample_every: usize,
    /// Prompts of the sample grid, separated by `|` (default: the first 8 captions).
    #[arg(long)]
    sample_prompts: Option<String>,
    /// Threads preparing each batch (decoding, rendering, resizing).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Captions per T5 forward while building the embedding cache.
    #[arg(long, default_value_t = 32)]
    encode_batch: usize,
    /// Data-parallel devices of this machine (one trainer thread each).
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Machines taking part (multi-node data parallel).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// This machine's index among --nodes.
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// The global orchestrator, `ws://host:port` (multi-node).
    #[arg(long)]
    orchestrator: Option<String>,
    /// Where the other nodes reach this one, `ws://host:data-port` (multi-node).
    #[arg(long)]
    node_address: Option<String>,
    /// Port this node serves its tensors on (multi-node).
    #[arg(long, default_value_t = 3001)]
    data_port: u16,
    /// Run burn-collective's global orchestrator on this port (alone, or
    /// beside this node's training when --nodes is given).
    #[arg(long)]
    serve_orchestrator: Option<u16>,
    /// The address the orchestrator listens on: loopback by default; the
    /// IP of a private interface every node reaches for several machines.
    /// Its endpoint is unauthenticated (docs/training.md, trust model).
    #[arg(long, default_value = "127.0.0.1")]
    orchestrator_bind: std::net::IpAddr,
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), AnyError> {
    imagen::tune_allocator();
    let args = Args::parse();
    if let Some(port) = args.serve_orchestrator {
        let address = std::net::SocketAddr::new(args.orchestrator_bind, port);
        if args.nodes == 1 {
            eprintln!("orchestrator listening on {address}");
            return Ok(imagen::train::serve_orchestrator_on(address)?);
        }
        std::thread::spawn(move || {
            if let Err(err) = imagen::train::serve_orchestrator_on(address) {
                eprintln!("error: orchestrator: {err}");
            }
        });
    }
    let device = default_device();
    let source: Box<dyn ImageTextSource> = match (&args.data, &args.jsonl, args.shapes) {
        (Some(dir), None, None) => Box::new(FolderDataset::open(dir)?),
        (None, Some(path), None) => Box::new(JsonlDataset::open(path)?),
        (None, None, Some(n)) => Box::new(ShapesDataset::new(
            SamplerConfig {
                captions: CaptionStyle {
                    background_probability: args.background_captions,
                },
                shape_weights: args.shape_weights.clone(),
                count_weights: args.count_weights.clone(),
                ..SamplerConfig::default()
            },
            args.seed,
            n,
            args.resolution as u32,
        )?),
        _ => return Err("give exactly one of --data, --jsonl, --shapes".into()),
    };
    eprintln!("{} examples", source.len());

    let encoder = TextEncoder::<DefaultBackend>::from_dir(&args.text_encoder, &device)?
        .with_max_length(args.max_length);
    let start = Instant::now();
    let cache = EmbeddingCache::build(
        &source,
        &encoder,
        args.out.join("embeddings"),
        &EmbeddingCacheConfig::default().with_batch_size(args.encode_batch),
    )?;
    eprintln!(
        "{} captions encoded in {:.1?} ({} truncated)",
        cache.len(),
        start.elapsed(),
        cache.truncated()
    );
    // Kept only to sample preview grids.
    let encoder = (args.sample_every > 0).then_some(encoder);
    let config = run_config(&args, cache.d_model())?;
    let data = Data {
        source: source.as_ref(),
        cache: &cache,
    };

    let world = args.devices * args.nodes;
    if world == 1 {
        return train(&args, &config, data, None, device, encoder);
    }
    let orchestrator = args.orchestrator.as_deref();
    let node_address = args.node_address.as_deref();
    let mut peers = Vec::with_capacity(args.devices);
    for d in 0..args.devices {
        peers.push(match (args.nodes, orchestrator, node_address) {
            (1, _, _) => DataParallel::local(d, args.devices),
            (n, Some(o), Some(a)) => {
                DataParallel::multi_node(args.node_rank, n, d, args.devices, o, a, args.data_port)?
            }
            _ => return Err("--nodes needs --orchestrator and --node-address".into()),
        });
    }
    let mut encoder = encoder;
    std::thread::scope(|scope| {
        let handles: Vec<_> = peers
            .into_iter()
            .map(|peer| {
                let (args, config) = (&args, &config);
                let encoder = if peer.rank == 0 { encoder.take() } else { None };
                let device = imagen::device(peer.device_index);
                scope.spawn(move || train(args, config, data, Some(peer), device, encoder))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| AnyError::from("a trainer thread panicked"))?
            })
            .collect::<Result<Vec<()>, AnyError>>()
    })?;
    Ok(())
}

/// What every data-parallel peer reads.
#[derive(Clone, Copy)]
struct Data<'a> {
    source: &'a dyn ImageTextSource,
    cache: &'a EmbeddingCache,
}

/// The run the flags describe; `text_dim` is the cached text's width.
fn run_config(args: &Args, text_dim: usize) -> Result<RunConfig, AnyError> {
    let stage = match args.stage {
        Stage::Base => StageKind::Base,
        Stage::Sr => StageKind::SuperResolution {
            lowres: args.lowres,
            max_noise_level: args.max_noise_level,
        },
    };
    let side = args.crop.map_or(args.resolution, |c| c as usize);
    let mut train = TrainConfig::new(stage, side);
    train.batch_size = args.batch;
    train.grad_accumulation = args.accumulate;
    train.steps = args.steps;
    train.lr = args.lr;
    train.warmup_steps = args.warmup;
    train.seed = args.seed;
    train.ema_decay = args.ema_decay;
    train.min_snr_gamma = args.min_snr;
    train.vlb_weight = args.vlb_weight;
    train.noise_offset = args.noise_offset;
    if let Some(fraction) = args.high_noise_fraction {
        train.timestep_sampling = TimestepSampling::HighNoise {
            fraction,
            from: args.high_noise_from,
        };
    }
    if let Some(min_lr) = args.min_lr {
        train.lr_schedule = LrSchedule::Cosine { min_lr };
    }
    if args.v_prediction {
        train.objective = PredictionType::VPrediction;
    }
    let init = match (&args.init, &args.unet_config) {
        (Some(dir), _) => UNetInit::Pretrained(dir.clone()),
        (None, Some(path)) => UNetInit::Config(UNetConfig::from_file(path)?),
        (None, None) => UNetInit::Config(preset(args.preset, args.stage, text_dim)?),
    };
    let mut data = DataLoaderConfig::new(args.batch, args.resolution as u32).with_seed(args.seed);
    data.crop = args.crop;
    data.workers = args.workers;
    Ok(RunConfig::new(train, init, &args.out)
        .with_data(data)
        .with_save_every(args.save_every)
        .with_resume(args.resume))
}

/// `--preset`, by default the demo preset of the stage. The demo presets
/// train their own stage only.
fn preset(preset: Option<Preset>, stage: Stage, text_dim: usize) -> Result<UNetConfig, AnyError> {
    Ok(match (preset, stage) {
        (Some(Preset::DemoBase) | None, Stage::Base) => UNetConfig::demo_base(text_dim),
        (Some(Preset::DemoSr) | None, Stage::Sr) => UNetConfig::demo_sr(text_dim),
        (Some(Preset::TinyBase), _) => UNetConfig::tiny_base(text_dim),
        (Some(Preset::TinySr), _) => UNetConfig::tiny_sr(text_dim),
        (Some(Preset::DemoBase), Stage::Sr) => {
            return Err("--preset demo_base trains --stage base".into());
        }
        (Some(Preset::DemoSr), Stage::Base) => {
            return Err("--preset demo_sr trains --stage sr".into());
        }
    })
}

/// Trains one peer (the only one without `parallel`). Rank 0 alone writes
/// the log, checkpoints, EMA weights and preview grids.
fn train(
    args: &Args,
    config: &RunConfig,
    data: Data<'_>,
    parallel: Option<DataParallel>,
    device: burn::tensor::Device<DefaultBackend>,
    encoder: Option<TextEncoder<DefaultBackend>>,
) -> Result<(), AnyError> {
    let lead = parallel.as_ref().is_none_or(|p| p.rank == 0);
    let config = config.clone();
    let run = match parallel {
        Some(peer) => {
            TrainingRun::<B, _>::start_parallel(config, data.source, data.cache, peer, &device)?
        }
        None => TrainingRun::start(config, data.source, data.cache, &device)?,
    };
    if lead && let Some(checkpoint) = run.resumed_from() {
        eprintln!("resuming from {}", checkpoint.display());
    }
    let mut run = match (encoder, args.stage) {
        (Some(encoder), Stage::Base) if lead => {
            let prompts: Vec<String> = match &args.sample_prompts {
                Some(p) => p.split('|').map(|s| s.trim().to_string()).collect(),
                None => (0..data.source.len().min(8))
                    .map(|i| data.source.caption(i))
                    .collect::<Result<_, _>>()?,
            };
            let mut cascade = preview_cascade(encoder, run.trainer(), args.resolution, &device)?;
            let samples = args.out.join("samples");
            run.with_preview(args.sample_every, move |trainer| {
                cascade.stages[0].unet = StageUNet::Resident(trainer.ema.clone());
                let out = cascade.generate(
                    &GenerateRequest::batch(prompts.clone()).seed(0),
                    &mut |_| {},
                )?;
                std::fs::create_dir_all(&samples)?;
                save_png(
                    &grid(&out.images, 4)?,
                    samples.join(format!("step-{:08}.png", trainer.step)),
                )?;
                Ok(())
            })
        }
        (Some(_), Stage::Sr) => {
            eprintln!("note: --sample-every draws grids for base stages only");
            run
        }
        _ => run,
    };

    let bar = if lead {
        ProgressBar::new(args.steps as u64)
    } else {
        ProgressBar::hidden()
    }
    .with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} loss {msg} [{elapsed} < {eta}]",
    )?);
    bar.set_position(run.trainer().step as u64);
    while !run.is_done() {
        let step = run.step()?;
        bar.set_message(format!("{:.4}", step.report.loss));
        bar.inc(1);
    }
    bar.finish();
    let ema_dir = run.config().ema_dir();
    let finished = run.finish()?;
    if lead {
        if finished.skipped_corrupt > 0 {
            eprintln!(
                "warning: skipped {} unreadable images",
                finished.skipped_corrupt
            );
        }
        eprintln!("wrote {}", ema_dir.display());
    }
    Ok(())
}

/// A one-stage cascade sampling the EMA U-Net as the trainer sees it: the
/// training noise schedule with the shipped demo cascade's base-stage
/// sampling defaults (`models/demo`: DPM-Solver++, guidance, dynamic
/// thresholding) and `demo_sampling::timestep_spacing`.
fn preview_cascade(
    encoder: TextEncoder<DefaultBackend>,
    trainer: &Trainer<B>,
    resolution: usize,
    device: &burn::tensor::Device<DefaultBackend>,
) -> Result<Cascade<DefaultBackend>, AnyError> {
    let demo_base = demo_sampling::demo_stages()?.swap_remove(0);
    let mut scheduler = trainer.config.noise_schedule.clone();
    scheduler.prediction_type = trainer.config.objective;
    // Sample as models/demo does.
    demo_sampling::copy_thresholding(&demo_base.scheduler, &mut scheduler);
    scheduler.timestep_spacing = demo_sampling::timestep_spacing(scheduler.prediction_type);
    let stage = CascadeStage {
        name: "preview".into(),
        unet: StageUNet::Resident(trainer.ema.clone()),
        unet_config: trainer.unet_config.clone(),
        scheduler,
        noising: None,
        resolution,
        defaults: StageSettings {
            noise_level: None,
            ..demo_base.defaults
        },
    };
    Ok(Cascade::new(encoder, vec![stage], device)?)
}

/// `SHAPE=WEIGHT`, e.g. `star=2`, for `--shape-weight`.
fn parse_shape_weight(arg: &str) -> Result<(Shape, f64), String> {
    let (noun, weight) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not SHAPE=WEIGHT"))?;
    let shape = Shape::from_noun(noun.trim())
        .map(|(shape, _)| shape)
        .ok_or_else(|| format!("`{noun}` is not a shape"))?;
    let weight = weight
        .trim()
        .parse()
        .map_err(|e| format!("weight `{weight}`: {e}"))?;
    Ok((shape, weight))
}
