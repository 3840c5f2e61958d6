//! One U-Net forward pass: an IF-layout U-Net of 110.7 M parameters
//! (`benches/configs/if_like_unet.json`: IF-I-XL's layout at widths
//! 128/256/384/512), 64 x 64, batch 2 (a guided step), 77 text tokens of a
//! T5-base-wide (768) encoder. `tools/bench/unet_torch.py` times diffusers on
//! the same config. With the `cuda` / `wgpu` features the same forward also
//! runs in f16 (and, with both, on each GPU backend).
//!
//! `unet_dtype/*`: the same step on the default backend with the U-Net loaded
//! in each compute dtype (f32, bf16, f16) through `UNet::load_with`; inputs
//! and output stay f32, as a sampler passes them.
//!
//! `cargo bench --bench unet_step`; threads: `RAYON_NUM_THREADS`.

use std::time::Duration;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Tensor};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use imagen::unet::{UNet, UNetConfig};
use imagen::weights::Checkpoint;
use imagen::{DefaultBackend, default_device};

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/configs/if_like_unet.json"
);

fn forward<B: Backend>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, device: &B::Device) {
    let unet: UNet<B> = UNetConfig::from_file(CONFIG)
        .expect("config")
        .init(device)
        .expect("valid");
    time(group, name, &unet, device);
}

/// Times one guided-batch forward of `unet` on f32 inputs.
fn time<B: Backend>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    unet: &UNet<B>,
    device: &B::Device,
) {
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

/// The CPU step in each compute dtype: random f32 weights written once to a
/// diffusers directory, loaded back with `UNet::load_with`.
fn dtypes(c: &mut Criterion) {
    let device = default_device();
    let config = UNetConfig::from_file(CONFIG).expect("config");
    let dir = std::env::temp_dir().join(format!("imagen-bench-unet-{}", std::process::id()));
    config
        .init::<DefaultBackend>(&device)
        .expect("valid")
        .save_dir(&config, &dir, None)
        .expect("write the random checkpoint");
    let ckpt = Checkpoint::open_dir(&dir, "diffusion_pytorch_model").expect("read it back");
    let mut group = c.benchmark_group("unet_dtype");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, dtype) in [
        ("f32", DType::F32),
        ("bf16", DType::BF16),
        ("f16", DType::F16),
    ] {
        let unet = UNet::<DefaultBackend>::load_with(&config, &ckpt, dtype, &device).expect("load");
        time(
            &mut group,
            &format!("if_like_110m_64x64_b2_{name}"),
            &unet,
            &device,
        );
    }
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, step, dtypes);
criterion_main!(benches);
