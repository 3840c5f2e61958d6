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

/// Issue 39: every `n` in `1..=T` under every spacing gives `n` strictly
/// descending timesteps below `T` (trailing used to emit an extra `0 - 1`,
/// which underflowed, for n = 19, 38, 61, ...).
#[test]
fn spaced_timesteps_are_n_strictly_descending_for_every_n() {
    for train in [1usize, 2, 3, 7, 10, 999, 1000, 1001, 4000] {
        for (kind, offsets) in [
            (TimestepSpacing::Leading, &[0usize, 1][..]),
            (TimestepSpacing::Trailing, &[0][..]),
            (TimestepSpacing::Linspace, &[0][..]),
        ] {
            // An offset is meaningful for leading spacing only, and below T.
            for &offset in offsets.iter().filter(|&&o| o < train) {
                for n in 1..=train {
                    let ts = spaced_timesteps(kind, train, n, offset).unwrap();
                    assert_eq!(ts.len(), n, "{kind:?} T={train} n={n} offset={offset}");
                    assert!(ts[0] < train, "{kind:?} T={train} n={n}: {ts:?}");
                    assert!(
                        ts.windows(2).all(|w| w[0] > w[1]),
                        "{kind:?} T={train} n={n} offset={offset}: {ts:?}"
                    );
                }
            }
        }
    }
}

/// 64-bit FNV-1a over the i64 little-endian bytes of `values`.
fn fnv1a(mut h: u64, values: &[usize]) -> u64 {
    for &v in values {
        for b in (v as i64).to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Issue 39: for every n where diffusers' DDPM / DDIM list is well defined
/// (n strictly descending values in `[0, T)`), ours is identical: a digest of
/// all of them recorded by `fixtures/spacing_all_n.py`.
#[test]
fn spaced_timesteps_match_diffusers_for_every_well_defined_n() {
    let fixture = json("spacing_all_n.json");
    let train = fixture["num_train_timesteps"].as_u64().unwrap() as usize;
    for case in fixture["cases"].as_array().unwrap() {
        let kind: TimestepSpacing =
            serde_json::from_value(case["timestep_spacing"].clone()).unwrap();
        let offset = case["steps_offset"].as_u64().unwrap() as usize;
        let ill: Vec<usize> = serde_json::from_value(case["ill_defined_n"].clone()).unwrap();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for n in (1..=train).filter(|n| !ill.contains(n)) {
            h = fnv1a(h, &spaced_timesteps(kind, train, n, offset).unwrap());
        }
        assert_eq!(
            format!("{h:016x}"),
            case["fnv1a"].as_str().unwrap(),
            "{kind:?} offset={offset}"
        );
    }
}

/// A leading `steps_offset` that would put every timestep out of range is a
/// typed error, not an overflow.
#[test]
fn leading_steps_offset_beyond_the_schedule_is_an_error() {
    for offset in [1000, usize::MAX] {
        let err = spaced_timesteps(TimestepSpacing::Leading, 1000, 10, offset).unwrap_err();
        assert!(err.to_string().contains("steps_offset"), "{err}");
    }
}
