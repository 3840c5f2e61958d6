//! DDPMScheduler traces from diffusers 0.42.1 replayed step by step with the
//! recorded model outputs and noise. Tolerance: every `prev_sample` and
//! `pred_original_sample` within max abs error 1e-5 (f32).

use crate::common;

use common::Recorded;
use imagen_diffusion::{DdpmScheduler, DiffusionError, SchedulerConfig, SeededNoise};

const TOL: f32 = 1e-5;

fn replay(case: &str) {
    let rec = Recorded::open(case);
    let mut scheduler = DdpmScheduler::new(&rec.config()).unwrap();
    match rec.custom_timesteps() {
        Some(list) => scheduler.set_custom_timesteps(&list).unwrap(),
        None => scheduler.set_timesteps(rec.num_inference_steps()).unwrap(),
    }
    assert_eq!(
        scheduler.timesteps(),
        &rec.timesteps[..],
        "{case}: timesteps"
    );
    rec.replay(TOL, false, |_, model_output, t, sample, noise| {
        scheduler.step(model_output, t, sample, noise).unwrap()
    });
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
