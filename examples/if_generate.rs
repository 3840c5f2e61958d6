//! DeepFloyd IF stage I (and II) from local diffusers directories.
//!
//! ```text
//! cargo run --release --example if_generate -- --stage1 IF-I-XL-v1.0 \
//!     [--stage2 IF-II-L-v1.0] --dtype bf16 --timesteps smart100,smart50 \
//!     --height 64 --width 96 "a photo of a corgi"
//! ```
//! The directories are what `IFPipeline.save_pretrained` writes (or a Hugging
//! Face snapshot): `model_index.json`, `text_encoder/`, `tokenizer/`,
//! `unet/`, `scheduler/`, with the plain weight files or a variant such as
//! IF's published `fp16` files (`--variant fp16`; a directory holding only
//! one variant is read without being told). T5-XXL (4.76B parameters),
//! IF-I-XL (4.3B) and IF-II-L (1.2B) are about 40 GB in f32 and 20 GB in
//! bf16, so by default each model is loaded when its step needs it and freed
//! after (`--resident` keeps them all).

mod common;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use common::AnyError;
use imagen::pipeline::{Cascade, Residency};
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
    #[command(flatten)]
    load: common::LoadArgs,
}

fn main() -> ExitCode {
    imagen::tune_allocator();
    common::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), AnyError> {
    let device = default_device();
    let start = Instant::now();
    let options = args.load.options(Residency::Sequential);
    let cascade = Cascade::<DefaultBackend>::from_pretrained_if_with(
        &args.stage1,
        args.stage2.as_deref(),
        &options,
        &device,
    )?;
    eprintln!("opened in {:.1?}", start.elapsed());
    common::report_components(&cascade);
    let req = args.request.request(&cascade)?;
    let start = Instant::now();
    let out = cascade.generate(&req, &mut common::progress_bars())?;
    common::report_timings(&out.timings);
    eprintln!("generated in {:.1?}", start.elapsed());
    common::write_images(&out, &args.request.output)
}
