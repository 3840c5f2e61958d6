//! Inpainting (or image-to-image without `--mask`) with the base stage of a
//! cascade: white mask pixels are regenerated, black ones kept.
//!
//! ```text
//! cargo run --release --example inpaint -- --image in.png --mask mask.png \
//!     [--model-dir DIR | --if-stage1 DIR] --strength 1.0 "a yellow star"
//! ```

mod common;

use std::path::PathBuf;

use clap::Parser;
use imagen::pipeline::{Cascade, Edit, Residency, load_mask, load_rgb};
use imagen::{DefaultBackend, default_device};

#[derive(Parser)]
#[command(about = "Inpaint or edit an image with a cascade's base stage")]
struct Args {
    #[command(flatten)]
    request: common::RequestArgs,
    /// The image to edit.
    #[arg(long)]
    image: PathBuf,
    /// Mask (white = regenerate); without it, image-to-image.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// How far into the noise to start, (0, 1].
    #[arg(long, default_value_t = 1.0)]
    strength: f64,
    /// Cascade directory in our format (default: the shipped demo cascade).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Use a DeepFloyd IF stage I directory instead.
    #[arg(long)]
    if_stage1: Option<PathBuf>,
    #[command(flatten)]
    load: common::LoadArgs,
}

fn main() -> std::process::ExitCode {
    imagen::tune_allocator();
    common::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), common::AnyError> {
    let device = default_device();
    let cascade = match &args.if_stage1 {
        Some(dir) => {
            let options = args.load.options(Residency::Sequential);
            Cascade::<DefaultBackend>::from_pretrained_if_with(dir, None, &options, &device)?
        }
        None => Cascade::<DefaultBackend>::load_with(
            args.model_dir
                .clone()
                .unwrap_or_else(imagen::demo_model_dir),
            &args.load.options(Residency::Resident),
            &device,
        )?,
    };
    common::report_components(&cascade);
    let image = load_rgb(&args.image)?;
    let edit = match &args.mask {
        Some(mask) => Edit::Inpaint {
            image,
            mask: load_mask(mask)?,
            strength: args.strength,
        },
        None => Edit::Img2Img {
            image,
            strength: args.strength,
        },
    };
    let req = args.request.request(&cascade)?.stop_after(0).edit(edit);
    let out = cascade.generate(&req, &mut common::progress_bars())?;
    common::report_timings(&out.timings);
    common::write_images(&out, &args.request.output)
}
