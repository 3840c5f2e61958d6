//! One U-Net forward pass: an IF-layout U-Net of 110.7 M parameters
//! (`benches/configs/if_like_unet.json`: IF-I-XL's layout at widths
//! 128/256/384/512), 64 x 64, batch 2 (a guided step), 77 text tokens of a
//! T5-base-wide (768) encoder. `tools/bench/unet_torch.py` times diffusers on
//! the same config. With the `cuda` / `wgpu` features the same forward also
//! runs in f16 (and, with both, on each GPU backend).
//!
//! `cargo bench --bench unet_step`; threads: `RAYON_NUM_THREADS`.

use std::time::Duration;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use imagen::unet::{UNet, UNetConfig};
use imagen::{DefaultBackend, default_device};

fn forward<B: Backend>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, device: &B::Device) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/configs/if_like_unet.json"
    );
    let unet: UNet<B> = UNetConfig::from_file(path)
        .expect("config")
        .init(device)
        .expect("valid");
    let x = Tensor::<B, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), device);
    let text = Tensor::<B, 3>::random([2, 77, 768], Distribution::Normal(0.0, 1.0), device);
    group.bench_function(name, |b| {
        b.iter(|| {
            unet.forward(x.clone(), &[500.0, 500.0], text.clone(), None, None)
                .into_data()
        })
    });
}

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("unet");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    forward::<DefaultBackend>(&mut group, "if_like_110m_64x64_b2", &default_device());
    #[cfg(feature = "cuda")]
    forward::<burn::backend::Cuda<burn::tensor::f16>>(
        &mut group,
        "cuda_f16_if_like_110m_64x64_b2",
        &Default::default(),
    );
    #[cfg(all(feature = "wgpu", feature = "cuda"))]
    forward::<burn::backend::Wgpu>(
        &mut group,
        "wgpu_if_like_110m_64x64_b2",
        &Default::default(),
    );
    #[cfg(feature = "wgpu")]
    forward::<burn::backend::Wgpu<burn::tensor::f16>>(
        &mut group,
        "wgpu_f16_if_like_110m_64x64_b2",
        &Default::default(),
    );
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
