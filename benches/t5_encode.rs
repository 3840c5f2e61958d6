//! T5 encoder forward pass, 1 x 77 tokens, randomly initialised T5 v1.1 small
//! and base shapes, on the backend chosen by cargo features; and
//! `t5_dtype/*`: T5 v1.1 base at 2 x 77 tokens loaded in each compute dtype
//! (f32, bf16, f16 with transformers' f32 `wo`) through the real loader.
//!
//! `cargo bench --bench t5_encode` (flex) or
//! `cargo bench --bench t5_encode --no-default-features --features ndarray`.
//! Threads: `RAYON_NUM_THREADS`. `tools/bench/compare.py` runs this beside
//! PyTorch and writes the ratios quoted in `docs/performance.md`.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use imagen::text::{T5Config, T5Encoder};
use imagen::weights::Checkpoint;
use imagen::{DefaultBackend, default_device};

type B = DefaultBackend;

fn encode(c: &mut Criterion) {
    encode_on::<B>(c, "", &default_device());
    // With both GPU features the default is CUDA: time wgpu beside it.
    #[cfg(all(feature = "wgpu", feature = "cuda"))]
    encode_on::<burn::backend::Wgpu>(c, "wgpu_", &Default::default());
}

fn encode_on<B: Backend>(c: &mut Criterion, prefix: &str, device: &B::Device) {
    let device = device.clone();
    let mut group = c.benchmark_group("t5_encode");
    group.sample_size(20);
    for (name, cfg) in [
        ("v1_1_small_1x77", T5Config::t5_v1_1_small()),
        ("v1_1_base_1x77", T5Config::t5_v1_1_base()),
    ] {
        let name = format!("{prefix}{name}");
        let model = cfg.init::<B>(&device).expect("valid preset");
        let (ids, mask) = tokens::<B>(&cfg, 1, &device);
        group.bench_function(&name, |b| {
            b.iter(|| model.forward(ids.clone(), mask.clone()).into_data())
        });
    }
    group.finish();
}

/// `[batch, 77]` token ids and an all-true mask.
fn tokens<B: Backend>(
    cfg: &T5Config,
    batch: usize,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
    let ids: Vec<i64> = (0..batch * 77)
        .map(|i| (i as i64 * 397 + 11) % cfg.vocab_size as i64)
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(ids, [batch, 77])
            .convert::<<B as burn::tensor::backend::BackendTypes>::IntElem>(),
        device,
    );
    let mask = Tensor::from_data(TensorData::new(vec![true; batch * 77], [batch, 77]), device);
    (ids, mask)
}

/// T5 v1.1 base, 2 x 77 tokens (a guided prompt pair), in each compute dtype.
/// The random f32 weights go through a safetensors file and
/// `T5Encoder::load_with`, so every dtype runs the network users load.
fn dtypes(c: &mut Criterion) {
    let device = default_device();
    let cfg = T5Config::t5_v1_1_base();
    let path = std::env::temp_dir().join(format!(
        "imagen-bench-t5-base-{}.safetensors",
        std::process::id()
    ));
    cfg.init::<B>(&device)
        .expect("valid preset")
        .save(&path, None)
        .expect("write the random checkpoint");
    let ckpt = Checkpoint::open(&path).expect("read it back");
    let (ids, mask) = tokens::<B>(&cfg, 2, &device);
    let mut group = c.benchmark_group("t5_dtype");
    group.sample_size(10);
    for (name, dtype) in [
        ("f32", DType::F32),
        ("bf16", DType::BF16),
        ("f16", DType::F16),
    ] {
        let model = T5Encoder::<B>::load_with(&cfg, &ckpt, dtype, &device).expect("load");
        group.bench_function(format!("v1_1_base_2x77_{name}"), |b| {
            b.iter(|| model.forward(ids.clone(), mask.clone()).into_data())
        });
    }
    group.finish();
    std::fs::remove_file(&path).ok();
}

/// The products inside T5-small's forward pass, to see how the backend's gemm
/// scales with threads at T5's small row counts.
fn matmul(c: &mut Criterion) {
    let device = default_device();
    let mut group = c.benchmark_group("matmul");
    group.sample_size(20);
    for (name, [m, k, n]) in [
        ("77x512x1024", [77, 512, 1024]),
        ("154x512x1024", [154, 512, 1024]),
        ("1024x1024x1024", [1024, 1024, 1024]),
    ] {
        let a = Tensor::<B, 2>::ones([m, k], &device);
        let b = Tensor::<B, 2>::ones([k, n], &device);
        group.bench_function(name, |bench| {
            bench.iter(|| a.clone().matmul(b.clone()).into_data())
        });
    }
    for (name, [m, k, n]) in [
        ("t_1024x512x77", [1024, 512, 77]),
        ("t_1024x512x154", [1024, 512, 154]),
    ] {
        let w = Tensor::<B, 2>::ones([m, k], &device);
        let x = Tensor::<B, 2>::ones([n, k], &device);
        group.bench_function(name, |bench| {
            bench.iter(|| {
                w.clone()
                    .matmul(x.clone().transpose())
                    .transpose()
                    .into_data()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, dtypes, matmul);
criterion_main!(benches);
