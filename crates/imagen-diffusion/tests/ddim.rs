//! DDIMScheduler traces from diffusers 0.42.1 (eta 0 and eta 1; v-prediction
//! with dynamic thresholding, with and without `use_clipped_model_output`)
//! replayed with the recorded model outputs and noise. Tolerance: every `prev_sample` and
//! `pred_original_sample` within max abs error 1e-5 (f32).

use crate::common;

use common::Recorded;
use imagen_diffusion::{DdimScheduler, DiffusionError, SchedulerConfig, SeededNoise};

const TOL: f32 = 1e-5;

fn replay(case: &str) {
    let rec = Recorded::open(case);
    let kwargs = &rec.meta["step_kwargs"];
    let eta = kwargs["eta"].as_f64().unwrap_or(0.0);
    let clipped = kwargs["use_clipped_model_output"]
        .as_bool()
        .unwrap_or(false);
    let mut scheduler = DdimScheduler::new(&rec.config())
        .unwrap()
        .with_eta(eta)
        .unwrap()
        .with_clipped_model_output(clipped);
    scheduler.set_timesteps(rec.num_inference_steps()).unwrap();
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
fn ddim_eta_0_scaled_linear() {
    replay("ddim_eta0_25");
}

#[test]
fn ddim_eta_1_cosine() {
    replay("ddim_eta1_25");
}

#[test]
fn ddim_v_prediction_dynamic_thresholding() {
    replay("ddim_v_threshold_25");
}

#[test]
fn ddim_v_prediction_dynamic_thresholding_clipped_model_output() {
    replay("ddim_v_threshold_clipped_25");
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
