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
