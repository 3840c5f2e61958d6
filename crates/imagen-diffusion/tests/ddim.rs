//! DDIMScheduler traces from diffusers 0.42.1 (eta 0 and eta 1) replayed with
//! the recorded model outputs and noise. Tolerance: every `prev_sample` and
//! `pred_original_sample` within max abs error 1e-5 (f32).

mod common;

use common::{RecordedNoise, Trace, json, max_abs_diff};
use imagen_diffusion::{DdimScheduler, DiffusionError, SchedulerConfig, SeededNoise};

const TOL: f32 = 1e-5;

fn replay(case: &str) {
    let meta = json(&format!("{case}.json"));
    let trace = Trace::open(&format!("{case}.safetensors"));
    let config: SchedulerConfig = serde_json::from_value(meta["config"].clone()).unwrap();
    let eta = meta["step_kwargs"]["eta"].as_f64().unwrap_or(0.0);
    let mut scheduler = DdimScheduler::new(&config).unwrap().with_eta(eta).unwrap();
    scheduler
        .set_timesteps(meta["num_inference_steps"].as_u64().unwrap() as usize)
        .unwrap();
    let want: Vec<usize> = serde_json::from_value(meta["timesteps"].clone()).unwrap();
    assert_eq!(scheduler.timesteps(), &want[..], "{case}: timesteps");

    let mut sample = trace.tensor("sample_0");
    let mut worst = 0.0f32;
    for (i, &t) in want.iter().enumerate() {
        let key = format!("noise_{i}");
        let mut noise = RecordedNoise {
            next: trace.has(&key).then(|| trace.tensor(&key)),
        };
        let out = scheduler
            .step(
                trace.tensor(&format!("model_output_{i}")),
                t,
                sample,
                &mut noise,
            )
            .unwrap();
        assert!(
            noise.next.is_none(),
            "{case} step {i}: recorded noise was not used"
        );
        let e_prev = max_abs_diff(out.prev_sample, &trace.f32(&format!("prev_sample_{i}")));
        let e_x0 = max_abs_diff(
            out.pred_original_sample,
            &trace.f32(&format!("pred_original_sample_{i}")),
        );
        assert!(
            e_prev <= TOL && e_x0 <= TOL,
            "{case} step {i} (t={t}): prev {e_prev}, x0 {e_x0}"
        );
        worst = worst.max(e_prev).max(e_x0);
        sample = trace.tensor(&format!("prev_sample_{i}"));
    }
    eprintln!("{case}: {} steps, max abs error {worst:e}", want.len());
}

#[test]
fn ddim_eta_0_scaled_linear() {
    replay("ddim_eta0_25");
}

#[test]
fn ddim_eta_1_cosine() {
    replay("ddim_eta1_25");
}

#[test]
fn step_before_set_timesteps_and_bad_eta_are_errors() {
    let s = DdimScheduler::new(&SchedulerConfig::default()).unwrap();
    let x =
        burn::tensor::Tensor::<common::TestBackend, 4>::zeros([1, 3, 2, 2], &Default::default());
    let err = s
        .step(x.clone(), 10, x, &mut SeededNoise::new(0))
        .unwrap_err();
    assert!(matches!(err, DiffusionError::TimestepsNotSet), "{err}");
    let err = DdimScheduler::new(&SchedulerConfig::default())
        .unwrap()
        .with_eta(-1.0)
        .unwrap_err();
    assert!(err.to_string().contains("eta"), "{err}");
}
