//! `SchedulerConfig` reading and validation.

use std::path::PathBuf;

use imagen_diffusion::{DiffusionError, SchedulerConfig};

/// Writes `text` to a fresh file under the system temp dir.
fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imagen-diffusion-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 39: Python's bare `NaN` / `Infinity` / `-Infinity` are rewritten
/// only as bare tokens; the same words inside strings (values, keys, with
/// escaped quotes before them) are left alone.
#[test]
fn from_file_rewrites_bare_python_constants_only() {
    let path = write_config(
        "strings.json",
        r#"{
  "_class_name": "DDPMScheduler NaN Infinity -Infinity",
  "NaN key -Infinity": "an \"escaped NaN\" and \\",
  "note": "NaN",
  "algorithm_type": "dpmsolver++",
  "lambda_min_clipped": -Infinity,
  "unused_nan": NaN,
  "unused_inf": [Infinity, -Infinity]
}"#,
    );
    let cfg = SchedulerConfig::from_file(&path).unwrap();
    assert_eq!(
        cfg.class_name.as_deref(),
        Some("DDPMScheduler NaN Infinity -Infinity")
    );
    assert_eq!(cfg.lambda_min_clipped, Some(f64::NEG_INFINITY));

    let path = write_config("bare.json", r#"{"lambda_min_clipped": NaN}"#);
    assert!(
        SchedulerConfig::from_file(&path)
            .unwrap()
            .lambda_min_clipped
            .unwrap()
            .is_nan()
    );
    let path = write_config("inf.json", r#"{"lambda_min_clipped":Infinity}"#);
    assert_eq!(
        SchedulerConfig::from_file(&path)
            .unwrap()
            .lambda_min_clipped,
        Some(f64::INFINITY)
    );
}

/// A file that is not JSON is a typed error naming the file.
#[test]
fn from_file_errors_name_the_file() {
    let path = write_config("broken.json", r#"{"num_train_timesteps": "#);
    let err = SchedulerConfig::from_file(&path).unwrap_err();
    assert!(matches!(err, DiffusionError::Config { .. }), "{err}");
    assert!(err.to_string().contains("broken.json"), "{err}");
}

/// A tiny deterministic generator (Knuth's MMIX LCG), so that the property
/// tests below need no dependency and replay the same cases every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.next() as usize % options.len()]
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

const FLOATS: [f64; 14] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.0,
    -1e-4,
    0.0,
    1e-4,
    0.00085,
    0.012,
    0.02,
    0.5,
    0.9999,
    1.0,
    2.0,
];

/// A scheduler config with adversarial numeric fields.
fn random_config(rng: &mut Lcg) -> SchedulerConfig {
    use imagen_diffusion::{BetaSchedule, PredictionType, TimestepSpacing, VarianceType};
    let num_train_timesteps = rng.pick(&[
        0usize,
        1,
        2,
        3,
        10,
        1000,
        1000,
        1000,
        4000,
        1 << 20,
        1 << 40,
        usize::MAX,
    ]);
    let trained_betas = if rng.chance(4) {
        let len = match rng.next() % 3 {
            0 => num_train_timesteps.min(4000),
            1 => num_train_timesteps.min(4000).saturating_add(1),
            _ => rng.pick(&[0usize, 1, 7]),
        };
        let mut betas = vec![rng.pick(&[1e-4, 0.02, 0.5]); len];
        if !betas.is_empty() && rng.chance(2) {
            let i = rng.next() as usize % len;
            betas[i] = rng.pick(&FLOATS);
        }
        Some(betas)
    } else {
        None
    };
    let sample = rng.next() % 3;
    SchedulerConfig {
        num_train_timesteps,
        beta_start: rng.pick(&FLOATS),
        beta_end: rng.pick(&FLOATS),
        beta_schedule: rng.pick(&[
            BetaSchedule::Linear,
            BetaSchedule::ScaledLinear,
            BetaSchedule::SquaredCosCapV2,
        ]),
        trained_betas,
        prediction_type: rng.pick(&[
            PredictionType::Epsilon,
            PredictionType::Sample,
            PredictionType::VPrediction,
        ]),
        variance_type: rng.pick(&[
            None,
            Some(VarianceType::FixedSmall),
            Some(VarianceType::FixedSmallLog),
            Some(VarianceType::FixedLarge),
            Some(VarianceType::FixedLargeLog),
            Some(VarianceType::Learned),
            Some(VarianceType::LearnedRange),
        ]),
        clip_sample: rng.pick(&[None, Some(true), Some(false)]),
        clip_sample_range: rng.pick(&FLOATS),
        thresholding: rng.chance(2),
        dynamic_thresholding_ratio: rng.pick(&FLOATS),
        sample_max_value: rng.pick(&[f64::NAN, -1.0, 0.0, 0.5, 1.0, 1.5, f64::INFINITY]),
        timestep_spacing: rng.pick(&[
            TimestepSpacing::Leading,
            TimestepSpacing::Trailing,
            TimestepSpacing::Linspace,
        ]),
        steps_offset: rng.pick(&[0usize, 1, 999, 1000, 1 << 40, usize::MAX]),
        set_alpha_to_one: rng.chance(2),
        solver_order: rng.pick(&[0usize, 1, 2, 3, usize::MAX]),
        lambda_min_clipped: rng.pick(&[
            None,
            Some(f64::NAN),
            Some(f64::NEG_INFINITY),
            Some(f64::INFINITY),
            Some(-5.1),
            Some(0.0),
            Some(20.0),
        ]),
        ..if sample == 0 {
            SchedulerConfig::default()
        } else {
            SchedulerConfig {
                clip_sample: Some(false),
                ..SchedulerConfig::default()
            }
        }
    }
}

/// Inference step counts to try on a schedule of `num_train` steps.
fn step_counts(num_train: usize) -> Vec<usize> {
    let mut n = vec![0, 1, 2, 7, 25, num_train, num_train.saturating_add(1)];
    n.retain(|&k| k <= num_train.saturating_add(1));
    n
}

fn assert_finite_tables(s: &imagen_diffusion::DiscreteSchedule, case: &str) {
    assert!(
        s.betas
            .iter()
            .all(|b| b.is_finite() && *b > 0.0 && *b < 1.0),
        "{case}: betas"
    );
    assert!(
        s.alphas_cumprod
            .iter()
            .all(|a| a.is_finite() && *a > 0.0 && *a <= 1.0),
        "{case}: alphas_cumprod"
    );
}

/// One step of `step` on a tiny sample at the first timestep: `Ok` with a
/// finite result, or a typed error; never a panic.
fn one_step<S>(timesteps: &[usize], learned: bool, case: &str, step: S)
where
    S: FnOnce(
        burn::tensor::Tensor<crate::common::TestBackend, 4>,
        usize,
        burn::tensor::Tensor<crate::common::TestBackend, 4>,
    )
        -> Result<imagen_diffusion::StepOutput<crate::common::TestBackend>, DiffusionError>,
{
    use burn::tensor::{Tensor, TensorData};
    let device = Default::default();
    let c = if learned { 6 } else { 3 };
    let values = |n: usize, k: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * k).sin()).collect() };
    let out = Tensor::from_data(TensorData::new(values(c * 4, 0.7), [1, c, 2, 2]), &device);
    let sample = Tensor::from_data(TensorData::new(values(12, 1.3), [1, 3, 2, 2]), &device);
    if let Ok(o) = step(out, timesteps[0], sample) {
        let v: Vec<f32> = o.prev_sample.into_data().to_vec().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{case}: step gave {v:?}");
    }
}

/// Issue 39: scheduler configs with out-of-range numbers build a scheduler
/// or fail with a typed error, never panic; a scheduler that builds has
/// finite tables (betas in (0, 1), alphas_cumprod in (0, 1]) and
/// `set_timesteps(n)` gives valid lists or a typed error.
#[test]
fn adversarial_scheduler_configs_never_panic() {
    use imagen_diffusion::{
        DdimScheduler, DdpmScheduler, DpmSolverScheduler, SeededNoise, VarianceType,
    };
    type Tb = crate::common::TestBackend;
    let mut rng = Lcg(39);
    let mut built = [0usize; 3];
    for i in 0..3000 {
        let cfg = random_config(&mut rng);
        let case = format!("case {i}: {cfg:?}");
        let learned = matches!(
            cfg.variance_type,
            Some(VarianceType::Learned | VarianceType::LearnedRange)
        );
        let mut noise = SeededNoise::new(0);

        if let Ok(mut s) = DdpmScheduler::new(&cfg) {
            built[0] += 1;
            assert_finite_tables(s.schedule(), &case);
            let len = s.schedule().len();
            for n in step_counts(len) {
                if s.set_timesteps(n).is_ok() {
                    let ts = s.timesteps();
                    assert_eq!(ts.len(), n, "{case}: n={n}");
                    assert!(ts[0] < len && ts.windows(2).all(|w| w[0] > w[1]), "{case}");
                }
            }
            let learned = cfg.variance_type == Some(VarianceType::LearnedRange);
            let ts = s.timesteps().to_vec();
            one_step(&ts, learned, &format!("DDPM {case}"), |o, t, x| {
                s.step(o, t, x, &mut noise)
            });
        }
        if let Ok(s) = DdimScheduler::new(&cfg) {
            built[1] += 1;
            let mut s = s.with_eta(1.0).unwrap();
            for n in step_counts(cfg.num_train_timesteps.min(1 << 20)) {
                if s.set_timesteps(n).is_ok() {
                    let ts = s.timesteps().to_vec();
                    assert_eq!(ts.len(), n, "{case}: n={n}");
                    assert!(ts.windows(2).all(|w| w[0] > w[1]), "{case}");
                    if n == 2 {
                        one_step(&ts, false, &format!("DDIM {case}"), |o, t, x| {
                            s.step(o, t, x, &mut noise)
                        });
                    }
                }
            }
        }
        if let Ok(mut s) = DpmSolverScheduler::<Tb>::new(&cfg) {
            built[2] += 1;
            assert_finite_tables(s.schedule(), &case);
            for n in step_counts(s.schedule().len()) {
                if s.set_timesteps(n).is_ok() {
                    assert!(!s.timesteps().is_empty(), "{case}: n={n}");
                    assert!(s.sigmas().iter().all(|v| v.is_finite()), "{case}: n={n}");
                    if n == 2 {
                        let ts = s.timesteps().to_vec();
                        one_step(&ts, learned, &format!("DPM {case}"), |o, t, x| {
                            s.step(o, t, x, &mut noise)
                        });
                    }
                }
            }
        }
    }
    // The generator reaches valid configs too, not only errors.
    assert!(built.iter().all(|&b| b > 20), "built {built:?}");
}

/// Found by the property test above: DDIM at `eta = 1` on a long linear
/// schedule (T = 4000), where `alpha_bar` at the first step is about 1e-11,
/// rounded `1 - alpha_bar_prev - sigma^2` below 0 in f32 and its square root
/// made the whole sample NaN (as diffusers' does).
#[test]
fn ddim_eta_one_stays_finite_where_alpha_bar_is_tiny() {
    use imagen_diffusion::{DdimScheduler, PredictionType, SeededNoise, TimestepSpacing};
    let cfg = SchedulerConfig {
        num_train_timesteps: 4000,
        beta_end: 0.012,
        prediction_type: PredictionType::VPrediction,
        timestep_spacing: TimestepSpacing::Trailing,
        ..SchedulerConfig::default()
    };
    let mut s = DdimScheduler::new(&cfg).unwrap().with_eta(1.0).unwrap();
    s.set_timesteps(2).unwrap();
    let ts = s.timesteps().to_vec();
    let mut noise = SeededNoise::new(0);
    one_step(&ts, false, "DDIM T=4000 eta=1", |o, t, x| {
        s.step(o, t, x, &mut noise)
    });
}
