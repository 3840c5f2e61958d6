//! Text to image with a cascade in our format (`manifest.json`), by default
//! the demo model shipped in `models/demo`.
//!
//! ```text
//! cargo run --release --example generate -- "a red circle above a blue square"
//! cargo run --release --example generate -- --model-dir DIR --steps 50,25 --guidance 5,3 \
//!     --negative "blurry" --images 4 --seed 7 --output out.png "two green triangles"
//! ```
//! Backends: `--features wgpu` or `--features cuda` (default: the CPU).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use imagen::pipeline::Cascade;
use imagen::{DefaultBackend, default_device};

/// Where `generate` looks when no `--model-dir` is given.
const DEFAULT_MODEL: &str = "models/demo";

#[derive(Parser)]
#[command(about = "Generate images from a prompt with an Imagen cascade")]
struct Args {
    #[command(flatten)]
    request: common::RequestArgs,
    /// Cascade directory (our format, with manifest.json).
    #[arg(long, default_value = DEFAULT_MODEL)]
    model_dir: PathBuf,
    /// Stop after this stage (0 = base resolution only).
    #[arg(long)]
    stop_after: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    if !args.model_dir.join("manifest.json").exists()
        && args.model_dir.as_path() == std::path::Path::new(DEFAULT_MODEL)
    {
        return Err(format!(
            "no model in `{DEFAULT_MODEL}`: the demo cascade is not shipped yet. Pass \
             --model-dir DIR (a cascade saved by Cascade::save), or use the if_generate \
             example with DeepFloyd IF directories"
        )
        .into());
    }
    let device = default_device();
    let start = Instant::now();
    let cascade = Cascade::<DefaultBackend>::load(&args.model_dir, &device)?;
    eprintln!(
        "loaded {} in {:.1?}",
        args.model_dir.display(),
        start.elapsed()
    );
    let mut req = args.request.request(cascade.stages.len());
    req.stop_after = args.stop_after;
    let start = Instant::now();
    let out = cascade.generate(&req, &mut common::progress_bars())?;
    eprintln!(
        "generated {} image(s) in {:.1?}",
        out.images.len(),
        start.elapsed()
    );
    common::write_images(&out, &args.request.output)
}
