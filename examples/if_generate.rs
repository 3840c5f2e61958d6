//! DeepFloyd IF stage I (and II) from local diffusers directories.
//!
//! ```text
//! cargo run --release --example if_generate -- --stage1 IF-I-XL-v1.0 \
//!     [--stage2 IF-II-L-v1.0] --steps 100,50 --guidance 7,4 "a photo of a corgi"
//! ```
//! The directories are what `IFPipeline.save_pretrained` writes (or a Hugging
//! Face snapshot): `model_index.json`, `text_encoder/`, `tokenizer/`,
//! `unet/`, `scheduler/`. T5-XXL and IF-I-XL are large: about 45 GB of f32.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use imagen::pipeline::Cascade;
use imagen::{DefaultBackend, default_device};

#[derive(Parser)]
#[command(about = "Run DeepFloyd IF from local diffusers directories")]
struct Args {
    #[command(flatten)]
    request: common::RequestArgs,
    /// Stage I directory (IFPipeline).
    #[arg(long)]
    stage1: PathBuf,
    /// Stage II directory (IFSuperResolutionPipeline).
    #[arg(long)]
    stage2: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    let start = Instant::now();
    let cascade = Cascade::<DefaultBackend>::from_pretrained_if(
        &args.stage1,
        args.stage2.as_deref(),
        &device,
    )?;
    eprintln!("loaded in {:.1?}", start.elapsed());
    let req = args.request.request(cascade.stages.len());
    let start = Instant::now();
    let out = cascade.generate(&req, &mut common::progress_bars())?;
    eprintln!("generated in {:.1?}", start.elapsed());
    common::write_images(&out, &args.request.output)
}
