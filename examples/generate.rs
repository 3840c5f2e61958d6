//! Text to image with a cascade in our format (`manifest.json`), by default
//! the demo model shipped in `models/demo`.
//!
//! ```text
//! cargo run --release --example generate -- "a red circle above a blue square"
//! cargo run --release --example generate -- --model-dir DIR --steps 50,25 --guidance 5,3 \
//!     --negative "blurry" --images 4 --seed 7 --height 64 --width 96 --dtype bf16 \
//!     --output out.png "two green triangles"
//! ```
//! Backends: `--features wgpu` or `--features cuda` (default: the CPU).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use common::AnyError;
use imagen::pipeline::{Cascade, Residency};
use imagen::{DefaultBackend, default_device};

#[derive(Parser)]
#[command(about = "Generate images from a prompt with an Imagen cascade")]
struct Args {
    #[command(flatten)]
    request: common::RequestArgs,
    /// Cascade directory (our format, with manifest.json). Default: the demo
    /// cascade shipped with this crate (`models/demo`), wherever this is run from.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    #[command(flatten)]
    load: common::LoadArgs,
    /// Stop after this stage (0 = base resolution only).
    #[arg(long)]
    stop_after: Option<usize>,
}

fn main() -> ExitCode {
    imagen::tune_allocator();
    common::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), AnyError> {
    let model_dir = args.model_dir.unwrap_or_else(imagen::demo_model_dir);
    if !model_dir.join("manifest.json").is_file() {
        return Err(format!(
            "`{}` holds no manifest.json: pass --model-dir DIR (a cascade saved by \
             Cascade::save), or use the if_generate example with DeepFloyd IF directories",
            model_dir.display()
        )
        .into());
    }
    let device = default_device();
    let start = Instant::now();
    let options = args.load.options(Residency::Resident);
    let cascade = Cascade::<DefaultBackend>::load_with(&model_dir, &options, &device)?;
    eprintln!("loaded {} in {:.1?}", model_dir.display(), start.elapsed());
    common::report_components(&cascade);
    let mut req = args.request.request(&cascade)?;
    req.stop_after = args.stop_after;
    let start = Instant::now();
    let out = cascade.generate(&req, &mut common::progress_bars())?;
    common::report_timings(&out.timings);
    eprintln!(
        "generated {} image(s) in {:.1?}",
        out.images.len(),
        start.elapsed()
    );
    common::write_images(&out, &args.request.output)
}
