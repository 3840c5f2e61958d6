//! The GPU timings of `tools/bench/gpu.sh` in one program that can be built
//! once (`--release --features cuda`) and carried to a machine without a
//! Rust toolchain: every path is given at run time, every shape is run
//! (and so autotuned) before it is timed, and each result is one JSON line
//! in the format of `tools/bench/*_torch.py`, which `tools/bench/gpu_table.py`
//! turns into the table of `docs/performance.md`.
//!
//! ```text
//! cargo run --release --features cuda --example gpu_bench -- --only unet_f32,t5_base
//! cargo run --example gpu_bench -- --tiny --runs 1      # plumbing check on the CPU
//! ```
//!
//! Workloads (`--only`, comma separated; default all):
//! - `unet_f32`, `unet_f16`, `unet_bf16`: one guided forward of the 110.7M
//!   IF-layout U-Net of `benches/unet_step.rs` (64 x 64, batch 2, 77 tokens
//!   of width 768), loaded in that compute dtype through `UNet::load_with`;
//! - `t5_base`, `t5_xxl`: T5 v1.1 base- and XXL-sized encoders, 1 x 77 (f32);
//! - `train_27m`: one training step of `benches/train_step.rs` (27.2M
//!   IF-layout U-Net, batch 8, 64 x 64, AdamW + clip + EMA);
//! - `generate`: the demo cascade (`models/demo`) generating one image with
//!   its default steps, as `examples/generate.rs` does (load not timed).
//!
//! `--tiny` swaps in small shapes (T5 small for both encoders, the demo base
//! U-Net, 16 x 16 or 32 x 32 inputs, two demo steps) so the whole plumbing
//! runs in seconds on a CPU. Backend: `imagen::DefaultBackend` (`cuda`,
//! `wgpu`, or the CPU by default).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Distribution, Int, Tensor, TensorData};
use clap::Parser;
use imagen::pipeline::{Cascade, CascadeOptions, GenerateRequest, Residency, StageOverrides};
use imagen::text::{T5Config, T5Encoder};
use imagen::train::{NullText, StageKind, TrainBatch, TrainConfig, Trainer};
use imagen::unet::{UNet, UNetConfig};
use imagen::weights::Checkpoint;
use imagen::{DefaultBackend, default_device};

type B = DefaultBackend;

const ALL: &[&str] = &[
    "unet_f32",
    "unet_f16",
    "unet_bf16",
    "t5_base",
    "t5_xxl",
    "train_27m",
    "generate",
];

#[derive(Parser)]
#[command(about = "Time the GPU workloads of tools/bench/gpu.sh, one JSON line each")]
struct Args {
    /// Workloads to run, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Untimed runs of each workload first (the first autotunes its shapes).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed runs of each workload (the median is reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Stop timing a workload after this many seconds (at least one run).
    #[arg(long, default_value_t = 30.0)]
    max_seconds: f64,
    /// Small shapes, for checking the plumbing on a CPU.
    #[arg(long)]
    tiny: bool,
    /// The repository root (benches/configs, models/demo). Default: the
    /// current directory.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

/// What one workload measured.
struct Timing {
    first_ms: f64,
    times_ms: Vec<f64>,
}

fn main() -> std::process::ExitCode {
    imagen::tune_allocator();
    let args = Args::parse();
    let names: Vec<String> = if args.only.is_empty() {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.only.clone()
    };
    let mut failed = false;
    for name in &names {
        if !ALL.contains(&name.as_str()) {
            eprintln!("unknown workload `{name}` (known: {})", ALL.join(", "));
            failed = true;
            continue;
        }
        let start = Instant::now();
        let result = run(name, &args);
        let (status, timing, detail) = match result {
            Ok((t, d)) => ("ok", Some(t), d),
            Err(e) => {
                failed = true;
                ("error", None, e)
            }
        };
        let mut line = serde_json::json!({
            "impl": "burn",
            "name": name,
            "backend": backend_name(),
            "tiny": args.tiny,
            "status": status,
            "detail": detail,
            "total_s": start.elapsed().as_secs_f64(),
        });
        if let Some(t) = timing {
            let mut sorted = t.times_ms.clone();
            sorted.sort_by(f64::total_cmp);
            line["first_ms"] = t.first_ms.into();
            line["runs"] = sorted.len().into();
            line["median_ms"] = median(&sorted).into();
            line["min_ms"] = sorted[0].into();
        }
        println!("{line}");
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

fn backend_name() -> String {
    let device = default_device();
    format!("{} ({device:?})", B::name(&device))
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Warms `f` (`warmup` runs, at least one: autotuning happens there), then
/// times it `runs` times or until `max_seconds` have passed.
fn time<F: FnMut() -> Result<(), String>>(args: &Args, mut f: F) -> Result<Timing, String> {
    let t = Instant::now();
    f()?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    for _ in 1..args.warmup.max(1) {
        f()?;
    }
    let budget = Duration::from_secs_f64(args.max_seconds);
    let start = Instant::now();
    let mut times_ms = Vec::new();
    while times_ms.len() < args.runs.max(1) && (times_ms.is_empty() || start.elapsed() < budget) {
        let t = Instant::now();
        f()?;
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing { first_ms, times_ms })
}

fn run(name: &str, args: &Args) -> Result<(Timing, String), String> {
    let device = default_device();
    match name {
        "unet_f32" => unet(args, DType::F32, &device),
        "unet_f16" => unet(args, DType::F16, &device),
        "unet_bf16" => unet(args, DType::BF16, &device),
        "t5_base" | "t5_xxl" => t5(args, name == "t5_xxl", &device),
        "train_27m" => train(args, &device),
        "generate" => generate(args, &device),
        _ => Err(format!("unknown workload {name}")),
    }
}

/// The U-Net step in `dtype`: random f32 weights written to a diffusers
/// directory once and loaded back with `UNet::load_with`, as users load.
fn unet(
    args: &Args,
    dtype: DType,
    device: &burn::tensor::Device<B>,
) -> Result<(Timing, String), String> {
    if !B::supports_dtype(device, dtype) {
        return Err(format!("{dtype:?} is not supported on this device"));
    }
    let (config, side, width) = if args.tiny {
        (UNetConfig::demo_base(64), 16, 64)
    } else {
        let path = args.root.join("benches/configs/if_like_unet.json");
        let config =
            UNetConfig::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        (config, 64, 768)
    };
    let dir = std::env::temp_dir().join(format!(
        "imagen-gpu-bench-unet-{}-{dtype:?}",
        std::process::id()
    ));
    config
        .init::<B>(device)
        .map_err(|e| e.to_string())?
        .save_dir(&config, &dir, None)
        .map_err(|e| e.to_string())?;
    let ckpt = Checkpoint::open_dir(&dir, "diffusion_pytorch_model").map_err(|e| e.to_string())?;
    let unet = UNet::<B>::load_with(&config, &ckpt, dtype, device).map_err(|e| e.to_string())?;
    drop(ckpt);
    std::fs::remove_dir_all(&dir).ok();
    let x = Tensor::<B, 4>::random([2, 3, side, side], Distribution::Normal(0.0, 1.0), device);
    let text = Tensor::<B, 3>::random([2, 77, width], Distribution::Normal(0.0, 1.0), device);
    let timing = time(args, || {
        unet.forward(x.clone(), &[500.0, 500.0], text.clone(), None, None)
            .into_data();
        Ok(())
    })?;
    Ok((
        timing,
        format!("{side}x{side}, batch 2, 77 tokens of {width}, {dtype:?}"),
    ))
}

/// A T5 v1.1 encoder (random weights, f32), 1 x 77 tokens.
fn t5(
    args: &Args,
    xxl: bool,
    device: &burn::tensor::Device<B>,
) -> Result<(Timing, String), String> {
    let (cfg, label) = match (args.tiny, xxl) {
        (true, _) => (T5Config::t5_v1_1_small(), "v1.1 small (tiny run)"),
        (false, false) => (T5Config::t5_v1_1_base(), "v1.1 base"),
        (false, true) => (T5Config::t5_v1_1_xxl(), "v1.1 XXL"),
    };
    let model: T5Encoder<B> = cfg.init(device).map_err(|e| e.to_string())?;
    let ids: Vec<i64> = (0..77)
        .map(|i| (i as i64 * 397 + 11) % cfg.vocab_size as i64)
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(ids, [1, 77])
            .convert::<<B as burn::tensor::backend::BackendTypes>::IntElem>(),
        device,
    );
    let mask: Tensor<B, 2, Bool> =
        Tensor::from_data(TensorData::new(vec![true; 77], [1, 77]), device);
    let timing = time(args, || {
        model.forward(ids.clone(), mask.clone()).into_data();
        Ok(())
    })?;
    Ok((timing, format!("T5 {label}, 1 x 77, f32")))
}

/// One training step (forward, backward, clip, AdamW, EMA).
fn train(args: &Args, device: &burn::tensor::Device<B>) -> Result<(Timing, String), String> {
    type A = Autodiff<B>;
    const TOKENS: usize = 40;
    const WIDTH: usize = 128;
    let (unet_config, batch, side) = if args.tiny {
        (UNetConfig::demo_base(WIDTH), 2, 32)
    } else {
        let path = args.root.join("benches/configs/train_if_small.json");
        let config =
            UNetConfig::from_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        (config, 8, 64)
    };
    let unet = unet_config.init::<A>(device).map_err(|e| e.to_string())?;
    let mut config = TrainConfig::new(StageKind::Base, side);
    config.batch_size = batch;
    config.warmup_steps = 0;
    let mut trainer = Trainer::new(config, unet_config, unet).map_err(|e| e.to_string())?;
    let data = [TrainBatch {
        images: Tensor::<A, 4>::random(
            [batch, 3, side, side],
            Distribution::Uniform(-1.0, 1.0),
            device,
        ),
        text: Tensor::random(
            [batch, TOKENS, WIDTH],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        text_mask: Tensor::<A, 2, Int>::ones([batch, TOKENS], device),
    }];
    let null = NullText {
        text: Tensor::zeros([1, TOKENS, WIDTH], device),
        mask: Tensor::ones([1, TOKENS], device),
    };
    let timing = time(args, || {
        trainer
            .train_step(&data, &null)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    Ok((
        timing,
        format!("batch {batch}, {side}x{side}, {TOKENS} tokens of {WIDTH}, f32"),
    ))
}

/// The demo cascade's `generate`: one image, default steps (2 per stage with
/// `--tiny`), seeded; loading is not timed.
fn generate(args: &Args, device: &burn::tensor::Device<B>) -> Result<(Timing, String), String> {
    let dir = args.root.join("models/demo");
    let options = CascadeOptions::default().residency(Residency::Resident);
    let cascade = Cascade::<B>::load_with(&dir, &options, device)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut req = GenerateRequest::new("a red circle above a blue square").seed(0);
    if args.tiny {
        for stage in 0..cascade.stages.len() {
            req = req.stage(
                stage,
                StageOverrides {
                    steps: Some(2),
                    ..Default::default()
                },
            );
        }
    }
    let steps: Vec<String> = cascade
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = req
                .stages
                .get(i)
                .and_then(|o| o.steps)
                .unwrap_or(s.defaults.steps);
            format!("{} {}px {n} steps", s.name, s.resolution)
        })
        .collect();
    let timing = time(args, || {
        cascade
            .generate(&req, &mut |_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    Ok((timing, format!("demo cascade: {}", steps.join(", "))))
}
