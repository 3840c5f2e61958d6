//! One training step (forward, backward, gradient clipping, AdamW, EMA) of
//! `imagen-train`'s [`Trainer`] at batch 8, 64 x 64, 40 text tokens of width
//! 128: on `benches/configs/train_if_small.json` (an IF-layout U-Net that
//! diffusers builds too; `tools/bench/train_torch.py` times the same step in
//! PyTorch) and on the shipped demo base preset (Efficient layout).
//!
//! `cargo bench --bench train_step`; threads: `RAYON_NUM_THREADS`.

use std::time::Duration;

use burn::backend::Autodiff;
use burn::tensor::{Distribution, Int, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use imagen::train::{NullText, StageKind, TrainBatch, TrainConfig, Trainer};
use imagen::unet::UNetConfig;
use imagen::{DefaultBackend, default_device};

type B = Autodiff<DefaultBackend>;

const BATCH: usize = 8;
const TOKENS: usize = 40;
const WIDTH: usize = 128;

fn step(c: &mut Criterion) {
    let device = default_device();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/configs/train_if_small.json"
    );
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    for (name, unet_config) in [
        (
            "if_small_64x64_b8",
            UNetConfig::from_file(path).expect("config"),
        ),
        ("demo_base_64x64_b8", UNetConfig::demo_base(WIDTH)),
    ] {
        let unet = unet_config.init::<B>(&device).expect("valid");
        let mut config = TrainConfig::new(StageKind::Base, 64);
        config.batch_size = BATCH;
        config.warmup_steps = 0;
        let mut trainer = Trainer::new(config, unet_config, unet).expect("trainer");
        let batch = [TrainBatch {
            images: Tensor::<B, 4>::random(
                [BATCH, 3, 64, 64],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            ),
            text: Tensor::random(
                [BATCH, TOKENS, WIDTH],
                Distribution::Normal(0.0, 1.0),
                &device,
            ),
            text_mask: Tensor::<B, 2, Int>::ones([BATCH, TOKENS], &device),
        }];
        let null = NullText {
            text: Tensor::zeros([1, TOKENS, WIDTH], &device),
            mask: Tensor::ones([1, TOKENS], &device),
        };
        group.bench_function(name, |b| {
            b.iter(|| trainer.train_step(&batch, &null).expect("step").loss)
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
