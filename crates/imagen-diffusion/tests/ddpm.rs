//! DDPMScheduler traces from diffusers 0.42.1 replayed step by step with the
//! recorded model outputs and noise. Tolerance: every `prev_sample` and
//! `pred_original_sample` within max abs error 1e-5 (f32).

mod common;

use common::{RecordedNoise, Trace, json, max_abs_diff};
use imagen_diffusion::{DdpmScheduler, DiffusionError, SchedulerConfig, SeededNoise};

const TOL: f32 = 1e-5;

fn replay(case: &str) {
    let meta = json(&format!("{case}.json"));
    let trace = Trace::open(&format!("{case}.safetensors"));
    let config: SchedulerConfig = serde_json::from_value(meta["config"].clone()).unwrap();
    let mut scheduler = DdpmScheduler::new(&config).unwrap();
    match meta["custom_timesteps"].as_array() {
        Some(list) => {
            let list: Vec<usize> = list.iter().map(|v| v.as_u64().unwrap() as usize).collect();
            scheduler.set_custom_timesteps(&list).unwrap();
        }
        None => scheduler
            .set_timesteps(meta["num_inference_steps"].as_u64().unwrap() as usize)
            .unwrap(),
    }
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
        let e_prev = max_abs_diff(
            out.prev_sample.clone(),
            &trace.f32(&format!("prev_sample_{i}")),
        );
        let e_x0 = max_abs_diff(
            out.pred_original_sample,
            &trace.f32(&format!("pred_original_sample_{i}")),
        );
        assert!(
            e_prev <= TOL && e_x0 <= TOL,
            "{case} step {i} (t={t}): prev {e_prev}, x0 {e_x0}"
        );
        worst = worst.max(e_prev).max(e_x0);
        // Continue from diffusers' sample so that errors do not compound.
        sample = trace.tensor(&format!("prev_sample_{i}"));
    }
    eprintln!("{case}: {} steps, max abs error {worst:e}", want.len());
}

#[test]
fn if_stage1_learned_range_dynamic_thresholding() {
    replay("ddpm_if_stage1_25");
}

#[test]
fn if_stage1_smart27_custom_list() {
    replay("ddpm_if_smart27");
}

#[test]
fn linear_fixed_small_epsilon() {
    replay("ddpm_linear_eps_25");
}

#[test]
fn linear_v_prediction() {
    replay("ddpm_linear_v_25");
}

#[test]
fn fixed_large_with_clipping() {
    replay("ddpm_fixed_large_25");
}

#[test]
fn errors_name_the_problem() {
    let mut cfg = SchedulerConfig::default();
    let mut s = DdpmScheduler::new(&cfg).unwrap();
    let err = s.set_timesteps(2000).unwrap_err();
    assert!(err.to_string().contains("num_inference_steps"), "{err}");
    let err = s.set_custom_timesteps(&[10, 20]).unwrap_err();
    assert!(err.to_string().contains("descending"), "{err}");

    s.set_timesteps(10).unwrap();
    let device = Default::default();
    let x = burn::tensor::Tensor::<common::TestBackend, 4>::zeros([1, 3, 4, 4], &device);
    let wrong = burn::tensor::Tensor::<common::TestBackend, 4>::zeros([1, 6, 4, 4], &device);
    let err = s
        .step(wrong, 900, x.clone(), &mut SeededNoise::new(0))
        .unwrap_err();
    assert!(matches!(err, DiffusionError::ShapeMismatch { .. }), "{err}");
    let err = s
        .step(x.clone(), 901, x, &mut SeededNoise::new(0))
        .unwrap_err();
    assert!(matches!(err, DiffusionError::UnknownTimestep(901)), "{err}");

    cfg.variance_type = Some(imagen_diffusion::VarianceType::Learned);
    let err = DdpmScheduler::new(&cfg).unwrap_err();
    assert!(err.to_string().contains("variance_type"), "{err}");
    let bad: Result<SchedulerConfig, _> = serde_json::from_str(r#"{"beta_schedule": "exotic"}"#);
    assert!(bad.unwrap_err().to_string().contains("exotic"));
}
