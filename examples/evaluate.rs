//! DrawBench-lite: generates an image for every prompt of
//! `imagen_shapes::drawbench_lite()` (220 prompts in six categories), scores
//! each with the programmatic scorer, and writes a per-category table, the
//! per-prompt verdicts and a contact sheet. A second table gives partial
//! credit per aspect (background, object count, colours, shapes).
//!
//! ```text
//! cargo run --release --example evaluate -- --out eval/default
//! cargo run --release --example evaluate -- --guidance 1 --base-only --out eval/guidance-1
//! cargo run --release --example evaluate -- --guidance 12 --thresholding static --base-only --out eval/static-12
//! cargo run --release --example evaluate -- --noise-level 0 --out eval/no-aug
//! cargo run --release --example evaluate -- --guidance 3 --high-noise-guidance 600,7 \
//!     --guidance-interval 200,999 --base-only --out eval/high-7
//! ```
//! Every stage run is scored: the base output (64 px) and, unless
//! `--base-only`, the super-resolution output (256 px). The contact sheets
//! show every prompt at 64 px and the first 40 at higher resolutions, in
//! prompt order. `results.jsonl` holds each prompt's constraints and, per
//! stage, the verdict, the partial credit and what the scorer detected
//! (background, each object's shape, colour, footprint and template fit),
//! for failure analysis (`tools/eval/failures.py`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use imagen::diffusion::{HighNoiseGuidance, Thresholding};
use imagen::pipeline::{Cascade, GenerateRequest, SamplerKind, StageOverrides, tensor_to_images};
use imagen::shapes::{Aspects, Category, Detection, aspects, contact_sheet, drawbench_lite, score};
use imagen::{DefaultBackend, default_device};
use indicatif::{ProgressBar, ProgressStyle};

// Only the demo's base thresholding and the CLI parsers are used here.
#[allow(dead_code)]
mod demo_sampling;

#[derive(Clone, Copy, ValueEnum)]
enum Threshold {
    /// The scheduler config's setting (dynamic for the demo cascade).
    Config,
    None,
    Static,
    Dynamic,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sampler {
    /// The cascade's default.
    Config,
    Ddpm,
    /// Deterministic DDIM (eta 0), as diffusers' `DDIMScheduler.step` by
    /// default: the noise of the raw model output beside the thresholded x0.
    Ddim,
    /// Deterministic DDIM with the noise re-derived from the thresholded x0
    /// (diffusers' `use_clipped_model_output=True`).
    DdimClipped,
    DpmSolver,
}

#[derive(Parser)]
#[command(about = "Score a cascade on DrawBench-lite")]
struct Args {
    /// Cascade directory (our format).
    #[arg(long, default_value = "models/demo")]
    model_dir: PathBuf,
    /// Output directory: results.md, results.jsonl, sheet-<stage>.png.
    #[arg(long, default_value = "eval/default")]
    out: PathBuf,
    /// Base-stage guidance scale, constant over every step (default: the
    /// cascade's schedule).
    #[arg(long)]
    guidance: Option<f64>,
    /// Base-stage guidance interval `LOW,HIGH`: guide only at timesteps
    /// LOW..=HIGH (default: the cascade's, every step).
    #[arg(long, value_parser = demo_sampling::parse_guidance_interval)]
    guidance_interval: Option<[usize; 2]>,
    /// Base-stage guidance at the noisiest timesteps, `FROM,SCALE`
    /// (default: the cascade's).
    #[arg(long, value_parser = demo_sampling::parse_high_noise_guidance)]
    high_noise_guidance: Option<HighNoiseGuidance>,
    /// Base-stage steps (default: the cascade's).
    #[arg(long)]
    steps: Option<usize>,
    /// Base-stage thresholding of the predicted x0.
    #[arg(long, value_enum, default_value = "config")]
    thresholding: Threshold,
    /// Base-stage sampler.
    #[arg(long, value_enum, default_value = "config")]
    sampler: Sampler,
    /// Super-resolution augmentation level (default: the cascade's).
    #[arg(long)]
    noise_level: Option<usize>,
    /// Score the base stage only.
    #[arg(long)]
    base_only: bool,
    /// Prompts per generation batch.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Only the first N prompts of each category.
    #[arg(long)]
    per_category: Option<usize>,
    /// Seed (batch i uses seed + i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    let cascade = Cascade::<DefaultBackend>::load(&args.model_dir, &device)?;
    let mut prompts = drawbench_lite();
    if let Some(n) = args.per_category {
        let mut seen: BTreeMap<Category, usize> = BTreeMap::new();
        prompts.retain(|p| {
            let c = seen.entry(p.category).or_default();
            *c += 1;
            *c <= n
        });
    }
    let last = if args.base_only {
        0
    } else {
        cascade.stages.len() - 1
    };
    let mut overrides = vec![StageOverrides::default(); cascade.stages.len()];
    overrides[0].guidance_scale = args.guidance;
    overrides[0].steps = args.steps;
    overrides[0].guidance_interval = args.guidance_interval;
    overrides[0].high_noise_guidance = args.high_noise_guidance;
    overrides[0].sampler = match args.sampler {
        Sampler::Config => None,
        Sampler::Ddpm => Some(SamplerKind::Ddpm),
        Sampler::Ddim => Some(SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: false,
        }),
        Sampler::DdimClipped => Some(SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: true,
        }),
        Sampler::DpmSolver => Some(SamplerKind::DpmSolver),
    };
    overrides[0].thresholding = match args.thresholding {
        Threshold::Config => None,
        Threshold::None => Some(Thresholding::None),
        Threshold::Static => Some(Thresholding::Static { range: 1.0 }),
        // The shipped demo cascade's own setting (models/demo), so the
        // ablation at high guidance compares it with static clipping and
        // nothing else.
        Threshold::Dynamic => {
            let demo = &demo_sampling::demo_stages()?[0].scheduler;
            Some(Thresholding::Dynamic {
                ratio: demo.dynamic_thresholding_ratio,
                max: demo.sample_max_value,
            })
        }
    };
    for o in overrides.iter_mut().skip(1) {
        o.noise_level = args.noise_level;
    }

    let bar = ProgressBar::new(prompts.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} prompts [{elapsed} < {eta}]",
    )?);
    let start = Instant::now();
    // Per stage: images and verdicts in prompt order.
    let mut images = vec![Vec::new(); last + 1];
    let mut scored: Vec<Vec<Scored>> = (0..=last).map(|_| Vec::new()).collect();
    for (i, chunk) in prompts.chunks(args.batch.max(1)).enumerate() {
        let mut req =
            GenerateRequest::batch(chunk.iter().map(|p| p.text.clone())).seed(args.seed + i as u64);
        req.stop_after = Some(last);
        req.stages = overrides.clone();
        let out = cascade.run(&req, &mut |_| {})?;
        for (stage, tensor) in out.outputs.into_iter().enumerate() {
            for (img, p) in tensor_to_images(tensor)?.into_iter().zip(chunk) {
                let verdict = score(&img, &p.constraints);
                scored[stage].push(Scored {
                    pass: verdict.pass,
                    failure: verdict.details.failure.map(|f| format!("{f:?}")),
                    aspects: aspects(&verdict.details.detection, &p.constraints),
                    detection: verdict.details.detection,
                });
                images[stage].push(img);
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    let elapsed = start.elapsed();

    std::fs::create_dir_all(&args.out)?;
    let categories: Vec<Category> = prompts
        .iter()
        .map(|p| p.category)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut table = String::new();
    writeln!(
        table,
        "| stage | {} | overall |",
        categories
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(table, "|---|{}---|", "---|".repeat(categories.len()))?;
    for (stage, stage_scored) in scored.iter().enumerate() {
        let rate = |keep: &dyn Fn(Category) -> bool| {
            let (n, k) = prompts
                .iter()
                .zip(stage_scored)
                .filter(|(p, _)| keep(p.category))
                .fold((0, 0), |(n, k), (_, s)| (n + 1, k + usize::from(s.pass)));
            percent(k, n)
        };
        let cells: Vec<String> = categories.iter().map(|&c| rate(&|p| p == c)).collect();
        writeln!(
            table,
            "| {} ({} px) | {} | {} |",
            cascade.stages[stage].name,
            cascade.stages[stage].resolution,
            cells.join(" | "),
            rate(&|_| true)
        )?;
        // Every prompt at 64 px; the first 40 above (a full 256 px sheet is ~20 MB).
        let shown = if cascade.stages[stage].resolution > 64 {
            &images[stage][..images[stage].len().min(40)]
        } else {
            &images[stage][..]
        };
        let sheet = contact_sheet(shown, 20, shown[0].width(), 2);
        sheet.save(
            args.out
                .join(format!("sheet-{}.png", cascade.stages[stage].name)),
        )?;
    }
    // Partial credit per aspect, over the prompts that constrain it.
    writeln!(
        table,
        "\nPartial credit (lenient, one aspect at a time; `imagen_shapes::aspects`):\n"
    )?;
    writeln!(table, "| stage | {} |", Aspects::NAMES.join(" | "))?;
    writeln!(table, "|---|{}", "---|".repeat(Aspects::NAMES.len()))?;
    for (stage, stage_scored) in scored.iter().enumerate() {
        let cells: Vec<String> = (0..Aspects::NAMES.len())
            .map(|k| {
                let verdicts: Vec<bool> = stage_scored
                    .iter()
                    .filter_map(|s| s.aspects.named()[k].1)
                    .collect();
                percent(verdicts.iter().filter(|&&v| v).count(), verdicts.len())
            })
            .collect();
        writeln!(
            table,
            "| {} ({} px) | {} |",
            cascade.stages[stage].name,
            cascade.stages[stage].resolution,
            cells.join(" | ")
        )?;
    }
    let settings = format!(
        "model {}, seed {}, base guidance {}, guidance interval {}, high-noise guidance {}, base steps {}, base sampler {}, thresholding {}, SR noise level {}; {} prompts in {:.1?}",
        args.model_dir.display(),
        args.seed,
        args.guidance.map_or("default".into(), |g| g.to_string()),
        args.guidance_interval
            .map_or("default".into(), |v| format!("{}..={}", v[0], v[1])),
        args.high_noise_guidance
            .map_or("default".into(), |h| format!("{} from {}", h.scale, h.from)),
        args.steps.map_or("default".into(), |g| g.to_string()),
        match args.sampler {
            Sampler::Config => "default",
            Sampler::Ddpm => "ddpm",
            Sampler::Ddim => "ddim",
            Sampler::DdimClipped => "ddim (clipped model output)",
            Sampler::DpmSolver => "dpm-solver",
        },
        match args.thresholding {
            Threshold::Config => "config",
            Threshold::None => "none",
            Threshold::Static => "static",
            Threshold::Dynamic => "dynamic",
        },
        args.noise_level.map_or("default".into(), |g| g.to_string()),
        prompts.len(),
        elapsed
    );
    std::fs::write(
        args.out.join("results.md"),
        format!("{settings}\n\n{table}"),
    )?;
    let mut jsonl = String::new();
    for (i, p) in prompts.iter().enumerate() {
        let verdicts: Vec<serde_json::Value> = (0..=last).map(|s| scored[s][i].json()).collect();
        let line = serde_json::json!({"category": format!("{:?}", p.category), "prompt": p.text, "constraints": p.constraints, "stages": verdicts});
        writeln!(jsonl, "{line}")?;
    }
    std::fs::write(args.out.join("results.jsonl"), jsonl)?;
    println!("{settings}\n\n{table}");
    println!("wrote {}", args.out.display());
    Ok(())
}

/// One image's verdict: pass or the first failed check, the partial credit
/// and what the scorer detected.
struct Scored {
    pass: bool,
    failure: Option<String>,
    aspects: Aspects,
    detection: Detection,
}

impl Scored {
    /// Its `results.jsonl` record (`failure` is "" on a pass).
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "pass": self.pass,
            "failure": self.failure.as_deref().unwrap_or_default(),
            "aspects": self.aspects,
            "detection": self.detection,
        })
    }
}

/// `k` of `n` as "12.5% (k/n)".
fn percent(k: usize, n: usize) -> String {
    format!("{:.1}% ({k}/{n})", 100.0 * k as f64 / n.max(1) as f64)
}
