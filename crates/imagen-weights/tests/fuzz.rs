//! Bad input at scale for the safetensors loader (issue 39, part 3): single
//! files and sharded checkpoints with their index, mutated (truncated,
//! bytes flipped, header shapes / offsets / dtypes changed, NaN data,
//! hostile shard names). Each case opens the directory and reads every
//! tensor; see `fuzz_support` for what is checked and `docs/robustness.md`
//! for the runs. `IMAGEN_FUZZ_SECS=600` runs each target for ten minutes.

#[path = "fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use fuzz_support::{Target, run};
use imagen_weights::Checkpoint;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

/// Little-endian bytes of `n` values of `dtype` (any small values).
fn bytes(dtype: Dtype, n: usize) -> Vec<u8> {
    let size = match dtype {
        Dtype::F64 => 8,
        Dtype::F32 => 4,
        _ => 2,
    };
    (0..n * size).map(|i| (i * 37 % 251) as u8 & 0x3F).collect()
}

/// Writes a safetensors file holding `tensors` (name, dtype, shape).
fn write(path: &Path, tensors: &[(&str, Dtype, Vec<usize>)]) {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, d, s)| bytes(*d, s.iter().product()))
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, d, s), b)| (*name, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// A scratch fixture directory (written by this test, not committed): one
/// file of four tensors in the four float dtypes the loader reads, and the
/// same tensors in two shards with their index.
fn fixtures() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imagen-weights-fuzz-src-{}", std::process::id()));
    let single = dir.join("single");
    let sharded = dir.join("sharded");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::create_dir_all(&sharded).unwrap();
    let a = ("enc.wq.weight", Dtype::F32, vec![8, 4]);
    let b = ("enc.norm.weight", Dtype::F16, vec![8]);
    let c = ("enc.wo.weight", Dtype::BF16, vec![4, 2, 3]);
    let d = ("enc.scale", Dtype::F64, vec![]);
    write(
        &single.join("model.safetensors"),
        &[a.clone(), b.clone(), c.clone(), d.clone()],
    );
    write(&sharded.join("model-00001-of-00002.safetensors"), &[a, b]);
    write(&sharded.join("model-00002-of-00002.safetensors"), &[c, d]);
    std::fs::write(
        sharded.join("model.safetensors.index.json"),
        r#"{
  "metadata": {"total_size": 200},
  "weight_map": {
    "enc.wq.weight": "model-00001-of-00002.safetensors",
    "enc.norm.weight": "model-00001-of-00002.safetensors",
    "enc.wo.weight": "model-00002-of-00002.safetensors",
    "enc.scale": "model-00002-of-00002.safetensors"
  }
}"#,
    )
    .unwrap();
    dir
}

/// Opens the checkpoint of `dir` and reads every tensor as f32.
fn open_and_read(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ckpt = Checkpoint::open_dir(dir, "model")?;
    let keys: Vec<String> = ckpt.keys().map(str::to_string).collect();
    for key in keys {
        let data = ckpt.read(&key, DType::F32)?;
        // The bytes must be what the shape says.
        let n: usize = data.shape.iter().product();
        assert_eq!(data.to_vec::<f32>().map(|v| v.len()).ok(), Some(n));
    }
    Ok(())
}

#[test]
fn fuzz_safetensors_single() {
    let src = fixtures();
    run(Target::new(
        "safetensors_single",
        src.join("single"),
        &["model.safetensors"],
        corpus(),
        open_and_read,
    )
    .ci_cases(400));
}

#[test]
fn fuzz_safetensors_sharded() {
    let src = fixtures();
    run(Target::new(
        "safetensors_sharded",
        src.join("sharded"),
        &[
            "model.safetensors.index.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ],
        corpus(),
        open_and_read,
    )
    .ci_cases(400));
}
