//! Encode prompts with a T5 encoder from a Hugging Face directory and write
//! `last_hidden_state` and `attention_mask` to a safetensors file.
//!
//! ```text
//! cargo run --release --example encode -- \
//!     --model-dir crates/imagen-text/tests/fixtures/t5_gated \
//!     --prompt "a red circle above a blue square" --output out.safetensors
//! ```
//! Any directory laid out like a Hugging Face T5 checkpoint works
//! (`config.json`, `model.safetensors` or sharded, `tokenizer.json`), e.g. a
//! local copy of `google/t5-v1_1-xxl` or DeepFloyd IF's `text_encoder/` with
//! its `tokenizer/tokenizer.json` copied beside it.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use imagen::text::TextEncoder;
use imagen::{DefaultBackend, default_device};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

#[derive(Parser)]
#[command(about = "Encode prompts with a T5 encoder (imagen-text)")]
struct Args {
    /// Directory with config.json, model.safetensors (or shards) and tokenizer.json.
    #[arg(long)]
    model_dir: PathBuf,
    /// A prompt; repeat for a batch.
    #[arg(long = "prompt", required = true)]
    prompts: Vec<String>,
    /// Padded sequence length (DeepFloyd IF: 77, Imagen: 128).
    #[arg(long, default_value_t = 77)]
    max_length: usize,
    /// Output safetensors file.
    #[arg(long, default_value = "embeddings.safetensors")]
    output: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    let start = Instant::now();
    let encoder = TextEncoder::<DefaultBackend>::from_dir(&args.model_dir, &device)?
        .with_max_length(args.max_length);
    eprintln!(
        "loaded {} in {:.2?}",
        args.model_dir.display(),
        start.elapsed()
    );

    let prompts: Vec<&str> = args.prompts.iter().map(String::as_str).collect();
    let start = Instant::now();
    let out = encoder.encode(&prompts)?;
    for warning in &out.truncated {
        eprintln!("warning: {warning}");
    }
    let shape = out.embeddings.dims();
    let hidden: Vec<f32> = out.embeddings.into_data().convert::<f32>().to_vec()?;
    let mask: Vec<i64> = out.mask.int().into_data().convert::<i64>().to_vec()?;
    eprintln!("encoded {:?} in {:.2?}", shape, start.elapsed());

    let hidden_bytes: Vec<u8> = hidden.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mask_bytes: Vec<u8> = mask.iter().flat_map(|m| m.to_le_bytes()).collect();
    let tensors = [
        (
            "last_hidden_state",
            TensorView::new(Dtype::F32, shape.to_vec(), &hidden_bytes)?,
        ),
        (
            "attention_mask",
            TensorView::new(Dtype::I64, vec![shape[0], shape[1]], &mask_bytes)?,
        ),
    ];
    safetensors::serialize_to_file(tensors, None, &args.output)?;
    println!("wrote {}", args.output.display());
    Ok(())
}
