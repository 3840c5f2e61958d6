//! Sampler cost: one scheduler step on a 4 x 3 x 64 x 64 batch, and the whole
//! loop's own overhead per step with a denoiser that does nothing. Compared in
//! docs/performance.md with the cost of a U-Net step.
//!
//! `cargo bench --bench sampler`; threads: `RAYON_NUM_THREADS`.

use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use imagen::diffusion::{
    DdimScheduler, DdpmScheduler, Denoiser, DpmSolverScheduler, SampleOptions, SchedulerConfig,
    SeededNoise, sample,
};
use imagen::{DefaultBackend, default_device};

type B = DefaultBackend;

/// DeepFloyd IF stage I's scheduler: cosine, learned-range variance, dynamic thresholding.
fn if_config() -> SchedulerConfig {
    serde_json::from_str(
        r#"{"beta_schedule": "squaredcos_cap_v2", "variance_type": "learned_range",
            "thresholding": true, "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5}"#,
    )
    .expect("valid config")
}

struct Zeros;

impl Denoiser<B> for Zeros {
    type Cond = ();
    fn predict(&self, x_t: Tensor<B, 4>, _t: usize, _: &()) -> Tensor<B, 4> {
        let [b, c, h, w] = x_t.dims();
        Tensor::zeros([b, 2 * c, h, w], &x_t.device())
    }
}

fn steps(c: &mut Criterion) {
    let device = default_device();
    let mut group = c.benchmark_group("sampler");
    group.sample_size(30);
    let x = Tensor::<B, 4>::random([4, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let out6 = Tensor::<B, 4>::random([4, 6, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let out3 = Tensor::<B, 4>::random([4, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);

    let mut ddpm = DdpmScheduler::new(&if_config()).expect("config");
    ddpm.set_timesteps(100).expect("steps");
    let mut noise = SeededNoise::new(0);
    group.bench_function("ddpm_if_step_4x3x64x64", |b| {
        b.iter(|| {
            ddpm.step(out6.clone(), 500, x.clone(), &mut noise)
                .expect("step")
                .prev_sample
                .into_data()
        })
    });

    let mut ddim = DdimScheduler::new(&SchedulerConfig::default()).expect("config");
    ddim.set_timesteps(50).expect("steps");
    group.bench_function("ddim_step_4x3x64x64", |b| {
        b.iter(|| {
            ddim.step(out3.clone(), 501, x.clone(), &mut noise)
                .expect("step")
                .prev_sample
                .into_data()
        })
    });

    // DPM-Solver++ 2M keeps history, so each iteration runs a fresh 2-step run
    // (one first-order, one second-order step) and reports the pair.
    let mut dpm = DpmSolverScheduler::<B>::new(&if_config()).expect("config");
    dpm.set_timesteps(2).expect("steps");
    let ts = dpm.timesteps().to_vec();
    group.bench_function("dpmpp2m_if_2_steps_4x3x64x64", |b| {
        b.iter(|| {
            let mut x = x.clone();
            for &t in &ts {
                x = dpm
                    .step(out6.clone(), t, x, &mut noise)
                    .expect("step")
                    .prev_sample;
            }
            x.into_data()
        })
    });

    // The loop's own overhead: 20 IF steps with guidance and a no-op network.
    let mut ddpm = DdpmScheduler::new(&if_config()).expect("config");
    ddpm.set_timesteps(20).expect("steps");
    let options = SampleOptions {
        guidance_scale: Some(7.0),
        ..Default::default()
    };
    group.bench_function("loop_20_steps_guided_4x3x64x64", |b| {
        b.iter(|| {
            sample(
                &Zeros,
                &mut ddpm,
                x.clone(),
                &(),
                options,
                &mut noise,
                &mut |_| {},
            )
            .expect("sample")
            .into_data()
        })
    });
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
