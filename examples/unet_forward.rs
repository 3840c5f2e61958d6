//! One forward pass of a diffusers IF U-Net directory on tensors from a
//! safetensors file; writes the prediction.
//!
//! ```text
//! cargo run --release --example unet_forward -- --model-dir IF-I-XL-v1.0/unet \
//!     --input in.safetensors --output out.safetensors
//! ```
//! Input tensors (f32, f16, bf16, f64, i64 or i32): `sample` `[B, C, H, W]`,
//! `timestep` (one value or one per sample), `encoder_hidden_states`
//! `[B, L, D]`, optional `encoder_attention_mask` `[B, L]` (1 = token) and
//! `class_labels` `[B]` (IF stage II's noise level). Output: `sample`.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use clap::Parser;
use half::{bf16, f16};
use imagen::unet::UNet;
use imagen::{DefaultBackend, default_device};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

type B = DefaultBackend;

#[derive(Parser)]
#[command(about = "Run one forward pass of a diffusers UNet2DConditionModel (IF layout)")]
struct Args {
    /// The `unet/` directory (config.json + diffusion_pytorch_model.safetensors).
    #[arg(long)]
    model_dir: PathBuf,
    /// Input tensors.
    #[arg(long)]
    input: PathBuf,
    /// Output file.
    #[arg(long, default_value = "unet_out.safetensors")]
    output: PathBuf,
}

/// f32 values and shape.
type Values = (Vec<f32>, Vec<usize>);

/// A tensor of the file as f32 values and its shape.
fn read(st: &SafeTensors, name: &str) -> Result<Option<Values>, String> {
    let Ok(view) = st.tensor(name) else {
        return Ok(None);
    };
    let b = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::I64 => b
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::BOOL | Dtype::U8 => b.iter().map(|&v| v as f32).collect(),
        other => return Err(format!("`{name}`: unsupported dtype {other:?}")),
    };
    Ok(Some((values, view.shape().to_vec())))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    let unet = UNet::<B>::from_dir(&args.model_dir, &device)?;
    let bytes = std::fs::read(&args.input)?;
    let st = SafeTensors::deserialize(&bytes)?;
    let need = |name: &str| {
        read(&st, name)?.ok_or_else(|| format!("`{}` has no tensor `{name}`", args.input.display()))
    };
    let (sample, shape) = need("sample")?;
    let [b, c, h, w] = shape[..] else {
        return Err(format!("`sample` must be 4-D, is {shape:?}").into());
    };
    let sample = Tensor::<B, 4>::from_data(TensorData::new(sample, [b, c, h, w]), &device);
    let (mut t, _) = need("timestep")?;
    if t.len() == 1 {
        t = vec![t[0]; b];
    }
    let (text, tshape) = need("encoder_hidden_states")?;
    let [tb, l, d] = tshape[..] else {
        return Err(format!("`encoder_hidden_states` must be 3-D, is {tshape:?}").into());
    };
    let text = Tensor::<B, 3>::from_data(TensorData::new(text, [tb, l, d]), &device);
    let mask = read(&st, "encoder_attention_mask")?.map(|(m, s)| {
        Tensor::<B, 2>::from_data(TensorData::new(m, [s[0], s[1]]), &device).greater_elem(0.5)
    });
    let labels = read(&st, "class_labels")?.map(|(v, _)| v);

    let start = Instant::now();
    let out = unet.forward(sample, &t, text, mask, labels.as_deref());
    let data = out.into_data().convert::<f32>();
    eprintln!("forward in {:.1?}", start.elapsed());
    let shape = data.shape.to_vec();
    let view = TensorView::new(Dtype::F32, shape, data.as_bytes())?;
    safetensors::serialize_to_file([("sample", view)], None, &args.output)?;
    println!("wrote {}", args.output.display());
    Ok(())
}
