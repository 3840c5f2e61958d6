//! T5 encoder forward pass, 1 x 77 tokens, randomly initialised T5 v1.1 small
//! and base shapes, on the backend chosen by cargo features.
//!
//! `cargo bench --bench t5_encode` (flex) or
//! `cargo bench --bench t5_encode --no-default-features --features ndarray`.
//! Threads: `RAYON_NUM_THREADS`. `tools/bench/compare.py` runs this beside
//! PyTorch and writes the ratios quoted in `docs/performance.md`.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use imagen::text::T5Config;
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
        let ids: Vec<i64> = (0..77)
            .map(|i| (i * 397 + 11) % cfg.vocab_size as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(ids, [1, 77])
                .convert::<<B as burn::tensor::backend::BackendTypes>::IntElem>(),
            &device,
        );
        let mask =
            Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![true; 77], [1, 77]), &device);
        group.bench_function(&name, |b| {
            b.iter(|| model.forward(ids.clone(), mask.clone()).into_data())
        });
    }
    group.finish();
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

criterion_group!(benches, encode, matmul);
criterion_main!(benches);
