//! Schedules and timestep spacing against diffusers 0.42.1, exact.

use crate::common;

use common::{Trace, json};
use imagen_diffusion::{
    BetaSchedule, DiscreteSchedule, TimestepSpacing, if_timesteps, spaced_timesteps,
};

#[test]
fn beta_and_alpha_tables_are_bit_exact() {
    let t = Trace::open("add_noise.safetensors");
    for (name, kind) in [
        ("linear", BetaSchedule::Linear),
        ("scaled_linear", BetaSchedule::ScaledLinear),
        ("squaredcos_cap_v2", BetaSchedule::SquaredCosCapV2),
    ] {
        let (beta_start, beta_end) = if kind == BetaSchedule::ScaledLinear {
            (0.00085, 0.012)
        } else {
            (0.0001, 0.02)
        };
        let s = DiscreteSchedule::new(kind, 1000, beta_start, beta_end);
        assert_eq!(s.betas, t.f32(&format!("betas_{name}")).1, "betas {name}");
        assert_eq!(
            s.alphas_cumprod,
            t.f32(&format!("alphas_cumprod_{name}")).1,
            "alphas_cumprod {name}"
        );
    }
}

#[test]
fn set_timesteps_matches_diffusers_for_ddpm_and_ddim() {
    let spacing = json("spacing.json");
    let mut checked = 0;
    for case in spacing["cases"].as_array().unwrap() {
        let class = case["scheduler_class"].as_str().unwrap();
        if class == "DPMSolverMultistepScheduler" {
            continue;
        }
        let kind: TimestepSpacing =
            serde_json::from_value(case["timestep_spacing"].clone()).unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let offset = case["config"]["steps_offset"].as_u64().unwrap() as usize;
        let train = case["config"]["num_train_timesteps"].as_u64().unwrap() as usize;
        let want: Vec<usize> = serde_json::from_value(case["timesteps"].clone()).unwrap();
        assert_eq!(
            spaced_timesteps(kind, train, n, offset).unwrap(),
            want,
            "{class} {kind:?} n={n}"
        );
        checked += 1;
    }
    assert_eq!(checked, 30);
}

#[test]
fn if_lists_match_diffusers() {
    let spacing = json("spacing.json");
    for (name, list) in spacing["if_timesteps"].as_object().unwrap() {
        let want: Vec<usize> = serde_json::from_value(list.clone()).unwrap();
        assert_eq!(if_timesteps(name).unwrap(), &want[..], "{name}");
    }
    assert!(
        if_timesteps("smart42")
            .unwrap_err()
            .to_string()
            .contains("smart42")
    );
}
