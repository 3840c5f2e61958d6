//! One U-Net forward pass: an IF-layout U-Net of 110.7 M parameters
//! (`benches/configs/if_like_unet.json`: IF-I-XL's layout at widths
//! 128/256/384/512), 64 x 64, batch 2 (a guided step), 77 text tokens of a
//! T5-base-wide (768) encoder. `tools/bench/unet_torch.py` times diffusers on
//! the same config.
//!
//! `cargo bench --bench unet_step`; threads: `RAYON_NUM_THREADS`.

use std::time::Duration;

use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use imagen::unet::{UNet, UNetConfig};
use imagen::{DefaultBackend, default_device};

type B = DefaultBackend;

fn step(c: &mut Criterion) {
    let device = default_device();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/configs/if_like_unet.json"
    );
    let unet: UNet<B> = UNetConfig::from_file(path)
        .expect("config")
        .init(&device)
        .expect("valid");
    let x = Tensor::<B, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let text = Tensor::<B, 3>::random([2, 77, 768], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("unet");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("if_like_110m_64x64_b2", |b| {
        b.iter(|| {
            unet.forward(x.clone(), &[500.0, 500.0], text.clone(), None, None)
                .into_data()
        })
    });
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
