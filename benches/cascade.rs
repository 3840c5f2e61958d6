//! Seconds per image of a demo-sized cascade on the CPU: the base stage
//! (demo preset, 64x64, 10 DPM-Solver++ steps with guidance) alone, and the
//! base + the 64->256 Efficient U-Net (5 steps). Random weights: the cost
//! does not depend on them; per-step costs scale to other step counts.
//!
//! `cargo bench --bench cascade`; threads: `RAYON_NUM_THREADS`.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use imagen::diffusion::SchedulerConfig;
use imagen::pipeline::{
    Cascade, GenerateRequest, SamplerKind, Stage, StageOverrides, StageSettings, StageUNet,
};
use imagen::text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen::unet::UNetConfig;
use imagen::{DefaultBackend, default_device};

type B = DefaultBackend;

fn stage(name: &str, config: UNetConfig, resolution: usize, steps: usize) -> Stage<B> {
    let scheduler: SchedulerConfig = serde_json::from_str(
        r#"{"beta_schedule": "squaredcos_cap_v2", "thresholding": true,
            "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5}"#,
    )
    .expect("valid");
    Stage {
        name: name.into(),
        unet: StageUNet::Resident(config.init(&default_device()).expect("preset")),
        unet_config: config,
        scheduler,
        noising: None,
        resolution,
        defaults: StageSettings {
            steps,
            guidance_scale: 5.0,
            sampler: SamplerKind::DpmSolver,
            noise_level: (resolution > 64).then_some(100),
            guidance_interval: None,
            high_noise_guidance: None,
        },
    }
}

fn cascade() -> Cascade<B> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/imagen-pipeline/tests/fixtures/if_stage1");
    let device = default_device();
    let text = TextEncoder::new(
        T5Tokenizer::from_file(dir.join("tokenizer/tokenizer.json")).expect("tokenizer"),
        T5Encoder::from_dir(dir.join("text_encoder"), &device).expect("t5"),
        &device,
    )
    .with_max_length(32);
    let dim = text.model().shared.weight.dims()[1];
    let stages = vec![
        stage("base", UNetConfig::demo_base(dim), 64, 10),
        stage("sr256", UNetConfig::demo_sr(dim), 256, 5),
    ];
    Cascade::new(text, stages, &device).expect("cascade")
}

fn generation(c: &mut Criterion) {
    let cascade = cascade();
    let mut group = c.benchmark_group("cascade");
    group.sample_size(10);
    let req = GenerateRequest::new("a red circle above a blue square");
    group.bench_function("demo_base_64_dpm10_guided", |b| {
        b.iter(|| {
            cascade
                .generate(&req.clone().stop_after(0), &mut |_| {})
                .expect("generate")
        })
    });
    let full = req.stage(1, StageOverrides::default());
    group.bench_function("demo_base_64_dpm10_plus_sr_256_dpm5", |b| {
        b.iter(|| cascade.generate(&full, &mut |_| {}).expect("generate"))
    });
    group.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
