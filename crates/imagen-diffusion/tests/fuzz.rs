//! Bad input at scale for `scheduler_config.json` (issue 39, part 3): the
//! file mutated and read with `SchedulerConfig::from_file`, then every
//! scheduler built from what it read; and property tests over the numeric
//! fields of a config. See `fuzz_support` (in imagen-weights' tests) for the
//! mutations and checks and `docs/robustness.md` for the ten-minute runs.

#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use fuzz_support::{Rng, Target, run};
use imagen_diffusion::{
    DdimScheduler, DdpmScheduler, DiffusionError, DpmSolverScheduler, SchedulerConfig,
};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

/// DeepFloyd IF's stage I scheduler, with every numeric field this crate
/// reads given (diffusers writes them all).
const VALID: &str = r#"{
  "_class_name": "DDPMScheduler",
  "_diffusers_version": "0.16.0",
  "beta_end": 0.02,
  "beta_schedule": "squaredcos_cap_v2",
  "beta_start": 0.0001,
  "clip_sample": true,
  "clip_sample_range": 1.5,
  "dynamic_thresholding_ratio": 0.95,
  "num_train_timesteps": 1000,
  "prediction_type": "epsilon",
  "sample_max_value": 1.5,
  "steps_offset": 0,
  "thresholding": true,
  "timestep_spacing": "leading",
  "trained_betas": null,
  "variance_type": "learned_range",
  "solver_order": 2,
  "algorithm_type": "dpmsolver++",
  "solver_type": "midpoint",
  "lower_order_final": true,
  "final_sigmas_type": "zero",
  "lambda_min_clipped": "-inf",
  "set_alpha_to_one": false
}"#;

/// Every scheduler this crate has, built from `cfg`, with a few step counts.
/// `Ok` schedulers must have finite `alphas_cumprod` in (0, 1] and
/// timesteps inside the schedule.
fn build_all(cfg: &SchedulerConfig) -> Result<(), DiffusionError> {
    let t = cfg.num_train_timesteps;
    let steps = [1, 2, 25, t, t.saturating_add(1), 0, usize::MAX];
    let check = |timesteps: &[usize]| {
        assert!(
            timesteps.iter().all(|&s| s < t),
            "timestep outside 0..{t}: {timesteps:?}"
        );
    };
    // DPM-Solver's leading spacing adds `steps_offset` after spacing, as
    // diffusers does, so its timesteps may pass the schedule's end by up to
    // the offset (its sigma lookup clamps there).
    let check_dpm = |timesteps: &[usize]| {
        let end = t.saturating_add(cfg.steps_offset);
        assert!(
            timesteps.iter().all(|&s| s < end),
            "timestep outside 0..{end}: {timesteps:?}"
        );
    };
    let mut first_err = None;
    let mut note = |r: Result<(), DiffusionError>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    note(DdpmScheduler::new(cfg).map(|mut s| {
        let a = &s.schedule().alphas_cumprod;
        assert!(
            a.iter().all(|&a| a.is_finite() && a > 0.0 && a <= 1.0),
            "alphas_cumprod outside (0, 1]"
        );
        for n in steps {
            if s.set_timesteps(n).is_ok() {
                check(s.timesteps());
            }
        }
    }));
    note(DdimScheduler::new(cfg).map(|mut s| {
        for n in steps {
            if s.set_timesteps(n).is_ok() {
                check(s.timesteps());
            }
        }
    }));
    note(DpmSolverScheduler::<Flex>::new(cfg).map(|mut s| {
        let a = &s.schedule().alphas_cumprod;
        assert!(a.iter().all(|&a| a.is_finite() && a > 0.0 && a <= 1.0));
        for n in steps {
            if s.set_timesteps(n).is_ok() {
                check_dpm(s.timesteps());
            }
        }
    }));
    first_err.map_or(Ok(()), Err)
}

/// A config that parses is refused by the scheduler constructors with an
/// `UnsupportedConfig` naming the field and value: they take a parsed
/// config, not a file (the caller that read it knows the file).
fn names_a_field(msg: &str) -> bool {
    msg.starts_with("unsupported scheduler config value ")
}

#[test]
fn fuzz_scheduler_config_file() {
    let dir =
        std::env::temp_dir().join(format!("imagen-diffusion-fuzz-src-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scheduler_config.json"), VALID).unwrap();
    run(Target::new(
        "scheduler_config",
        &dir,
        &["scheduler_config.json"],
        corpus(),
        |dir| {
            let cfg = SchedulerConfig::from_file(dir.join("scheduler_config.json"))?;
            build_all(&cfg)?;
            Ok(())
        },
    )
    .accept(names_a_field)
    .ci_cases(400));
}

/// Values for the float fields: the edges of every range the schedulers
/// check, and nonsense.
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    0.95,
    0.995,
    1.5,
    2.0,
    1e-4,
    0.02,
    1e-30,
    1e-45,
    0.9999999,
    1.0000001,
    1e300,
    -1e300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
];

const COUNTS: &[usize] = &[
    0,
    1,
    2,
    3,
    25,
    999,
    1000,
    1001,
    100_000,
    1 << 40,
    usize::MAX,
];

/// One random config: each numeric field, with probability 1/2, set to an
/// edge value; the enums and flags too.
fn random_config(rng: &mut Rng) -> SchedulerConfig {
    let mut c: SchedulerConfig = serde_json::from_str(VALID).unwrap();
    let f = |rng: &mut Rng, x: &mut f64| {
        if rng.chance(2) {
            *x = *rng.pick(FLOATS);
        }
    };
    f(rng, &mut c.beta_start);
    f(rng, &mut c.beta_end);
    f(rng, &mut c.clip_sample_range);
    f(rng, &mut c.dynamic_thresholding_ratio);
    f(rng, &mut c.sample_max_value);
    if rng.chance(3) {
        c.lambda_min_clipped = Some(*rng.pick(FLOATS));
    }
    if rng.chance(2) {
        c.num_train_timesteps = *rng.pick(COUNTS);
    }
    if rng.chance(3) {
        c.steps_offset = *rng.pick(COUNTS);
    }
    if rng.chance(3) {
        c.solver_order = *rng.pick(&[0, 1, 2, 3, usize::MAX]);
    }
    if rng.chance(4) {
        let n = (*rng.pick(&[0usize, 1, 2, 10, 1000])).min(c.num_train_timesteps.min(5000));
        let n = if rng.chance(4) { n + 1 } else { n };
        c.trained_betas = Some((0..n).map(|_| *rng.pick(FLOATS)).collect());
    }
    c.thresholding = rng.chance(2);
    c.clip_sample = *rng.pick(&[None, Some(true), Some(false)]);
    c.set_alpha_to_one = rng.chance(2);
    let schedules: [&str; 3] = ["\"linear\"", "\"scaled_linear\"", "\"squaredcos_cap_v2\""];
    c.beta_schedule = {
        let s = rng.pick(&schedules);
        serde_json::from_str(s).unwrap()
    };
    let spacings: [&str; 3] = ["\"leading\"", "\"trailing\"", "\"linspace\""];
    c.timestep_spacing = {
        let s = rng.pick(&spacings);
        serde_json::from_str(s).unwrap()
    };
    let variances: [&str; 7] = [
        "null",
        "\"fixed_small\"",
        "\"fixed_small_log\"",
        "\"fixed_large\"",
        "\"fixed_large_log\"",
        "\"learned\"",
        "\"learned_range\"",
    ];
    c.variance_type = {
        let s = rng.pick(&variances);
        serde_json::from_str(s).unwrap()
    };
    c
}

/// Property test over the numeric fields: every constructor returns `Ok`
/// (with finite alphas, timesteps inside the schedule) or a typed
/// `UnsupportedConfig`; none panics. Numbers of cases: 2000 by default;
/// `IMAGEN_FUZZ_SECS` runs for that long instead. Seeds are printed on failure.
#[test]
fn scheduler_constructors_take_any_numbers() {
    let secs: Option<u64> = std::env::var("IMAGEN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed = 0x5EED_u64;
    let start = std::time::Instant::now();
    let (mut cases, mut ok, mut refused) = (0u64, 0u64, 0u64);
    loop {
        match secs {
            Some(s) if start.elapsed().as_secs() >= s => break,
            None if cases >= 2000 => break,
            _ => {}
        }
        let mut rng = Rng::new(fuzz_support::case_seed(seed, cases));
        let cfg = random_config(&mut rng);
        let r = std::panic::catch_unwind(|| build_all(&cfg));
        match r {
            Ok(Ok(())) => ok += 1,
            Ok(Err(DiffusionError::UnsupportedConfig { .. })) => refused += 1,
            Ok(Err(e)) => panic!("case {cases} (seed {seed}): untyped refusal {e} for {cfg:?}"),
            Err(_) => panic!("case {cases} (seed {seed}): panic for {cfg:?}"),
        }
        cases += 1;
    }
    if secs.is_some() {
        println!(
            "FUZZ-SUMMARY target=scheduler_numbers cases={cases} secs={:.0} rate={:.1}/s ok={ok} refused={refused} findings=0",
            start.elapsed().as_secs_f64(),
            cases as f64 / start.elapsed().as_secs_f64()
        );
    }
    assert!(
        ok > 0 && refused > 0,
        "both outcomes are exercised: {ok} ok, {refused} refused"
    );
}

/// Issue 39's open item: a `dynamic_thresholding_ratio` of 0 was accepted
/// (a percentile of nothing). Outside (0, 1], or NaN, every scheduler now
/// refuses it, naming the field; 1 is still accepted.
#[test]
fn dynamic_thresholding_ratio_must_be_in_0_1() {
    let base: SchedulerConfig = serde_json::from_str(VALID).unwrap();
    for ratio in [0.0, -0.0, -0.5, 1.0000001, 1.5, f64::NAN, f64::INFINITY] {
        let cfg = SchedulerConfig {
            dynamic_thresholding_ratio: ratio,
            ..base.clone()
        };
        let errs = [
            DdpmScheduler::new(&cfg).err(),
            DdimScheduler::new(&cfg).err(),
            DpmSolverScheduler::<Flex>::new(&cfg).err(),
        ];
        for e in errs {
            assert!(
                matches!(&e, Some(DiffusionError::UnsupportedConfig { field, .. }) if *field == "dynamic_thresholding_ratio"),
                "ratio {ratio}: {e:?}"
            );
        }
    }
    let one = SchedulerConfig {
        dynamic_thresholding_ratio: 1.0,
        ..base
    };
    DdpmScheduler::new(&one).unwrap();
}
