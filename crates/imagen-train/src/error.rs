//! Everything that can go wrong while training.

use std::path::PathBuf;

use crate::data::DataError;

/// A training error, naming the file, setting or step at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A setting that cannot be trained with.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    /// A checkpoint was written with another config.
    #[error("checkpoint `{path}` was trained with {field} = {checkpoint}, this run has {current}")]
    ConfigMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// The differing setting.
        field: String,
        /// Its value in the checkpoint.
        checkpoint: String,
        /// Its value now.
        current: String,
    },
    /// An optimiser moment in a checkpoint does not fit its parameter.
    #[error(
        "`{path}`: `{key}` has shape {found:?}, but parameter `{parameter}` has shape {expected:?}"
    )]
    OptimizerState {
        /// The optimiser state file.
        path: PathBuf,
        /// The parameter's module path.
        parameter: String,
        /// The tensor's key in the file.
        key: String,
        /// Its shape in the file.
        found: Box<[usize]>,
        /// The parameter's shape.
        expected: Box<[usize]>,
    },
    /// Two files of one checkpoint disagree (e.g. `state.json`'s U-Net
    /// config and `model/config.json`).
    #[error("checkpoint files disagree on {field}: {a_value} in `{a}`, {b_value} in `{b}`")]
    InconsistentCheckpoint {
        /// The first file.
        a: PathBuf,
        /// The second file.
        b: PathBuf,
        /// The first differing setting.
        field: String,
        /// Its value in `a`.
        a_value: Box<str>,
        /// Its value in `b`.
        b_value: Box<str>,
    },
    /// No checkpoint to resume from.
    #[error("no checkpoint in `{0}`")]
    NoCheckpoint(PathBuf),
    /// The loss became NaN or infinite.
    #[error("loss is not finite at step {step}")]
    NonFinite {
        /// The optimiser step.
        step: usize,
    },
    /// The gradients became NaN or infinite while the loss was finite; the
    /// step was not taken (weights, optimiser state and EMA unchanged).
    #[error("gradient norm is {norm} at step {step}: step not taken, weights unchanged")]
    NonFiniteGradients {
        /// The optimiser step.
        step: usize,
        /// The global gradient L2 norm.
        norm: f64,
    },
    /// A data-parallel collective operation failed (burn-collective).
    #[error("collective {operation} failed for peer {peer}: {message}")]
    Collective {
        /// What was attempted (`register`, `all-reduce`, `finish`).
        operation: &'static str,
        /// The peer (global rank).
        peer: usize,
        /// burn-collective's error.
        message: String,
    },
    /// A [`TrainingRun`](crate::TrainingRun) was asked for a step after its
    /// last.
    #[error("the run has taken all its {steps} steps")]
    RunFinished {
        /// The run's steps (`TrainConfig::steps`).
        steps: usize,
    },
    /// A [`TrainingRun`](crate::TrainingRun)'s preview hook failed (the
    /// step, its log row and checkpoint were written).
    #[error("preview after step {step}: {source}")]
    Preview {
        /// The steps taken.
        step: usize,
        /// The hook's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file could not be read or written.
    #[error("JSON in `{path}`: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// Training data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The U-Net.
    #[error(transparent)]
    UNet(#[from] imagen_unet::UNetError),
    /// Weights on disk.
    #[error(transparent)]
    Weights(#[from] imagen_weights::WeightsError),
    /// Noise schedules.
    #[error(transparent)]
    Diffusion(#[from] imagen_diffusion::DiffusionError),
    /// The tokenizer or text encoder.
    #[error(transparent)]
    Text(#[from] imagen_text::TextError),
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
}
