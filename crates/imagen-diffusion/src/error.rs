//! The one error type of this crate.

use std::path::PathBuf;

/// Why a schedule or sampler could not be built or stepped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffusionError {
    /// A config file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A config file is not valid JSON for a scheduler config.
    #[error("cannot parse scheduler config `{path}`: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A config value this implementation does not support.
    #[error("unsupported scheduler config value {field} = {value}: {reason}")]
    UnsupportedConfig {
        /// The `scheduler_config.json` key.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is supported instead.
        reason: String,
    },
    /// `step` was called before `set_timesteps`.
    #[error("timesteps are not set: call set_timesteps first")]
    TimestepsNotSet,
    /// `step` was called with a timestep that is not in the schedule.
    #[error("timestep {0} is not in the schedule set by set_timesteps")]
    UnknownTimestep(usize),
    /// Model output and sample shapes do not fit together.
    #[error("model output shape {model_output:?} does not fit sample shape {sample:?}: {reason}")]
    ShapeMismatch {
        /// The model output's shape.
        model_output: Vec<usize>,
        /// The sample's shape.
        sample: Vec<usize>,
        /// What was expected.
        reason: String,
    },
    /// An intermediate sample contains NaN or infinity.
    #[error("sample became NaN or infinite at step {step} (timestep {timestep})")]
    NonFinite {
        /// 0-based index of the step.
        step: usize,
        /// The timestep of that step.
        timestep: usize,
    },
}
