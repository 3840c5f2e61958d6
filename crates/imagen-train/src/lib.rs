//! Training and fine-tuning any stage of an Imagen cascade on burn.
//!
//! - [`TrainConfig`]: stage (base or super-resolution), objective, AdamW,
//!   warm-up and schedule, global-norm clipping, EMA, text dropout.
//! - [`stage_loss`]: one micro-batch's loss: random timesteps, noise,
//!   classifier-free-guidance dropout to the empty caption's embedding, and
//!   for super-resolution the downsampled target through
//!   [`imagen_diffusion::lowres_conditioning`], as the cascade samples.
//! - [`Trainer`]: accumulation, clipping, AdamW, EMA; micro-batch `i` of step
//!   `s` draws from a generator seeded by `(seed, s, i)`, so resumed runs
//!   continue exactly.
//! - `DataParallel` (feature `collective`, opt-in: it brings tokio and a
//!   WebSocket stack): data-parallel training over devices and nodes with
//!   burn-collective's all-reduce.
//! - Checkpoints: [`Trainer::save`] / [`Trainer::resume`], atomic, keeping the
//!   last K; a checkpoint of another config is refused.
//! - [`TrainingRun`]: a whole run as the `train` example runs it: resume
//!   or start from a [`UNetInit`], then step after step with a CSV log,
//!   checkpoints, the EMA U-Net exported for a cascade, and a preview hook
//!   ([`RunConfig`]; `docs/training.md`).
//! - [`data`]: image-caption sources, batching, the T5 embedding cache.
#![warn(missing_docs)]

mod checkpoint;
mod config;
pub mod data;
mod error;
mod objective;
#[cfg(feature = "collective")]
mod parallel;
mod params;
mod run;
pub mod text;
mod timesteps;
mod trainer;

pub use checkpoint::{CheckpointState, SCHEDULE_FIELDS, latest_checkpoint};
pub use config::{LrSchedule, StageKind, TrainConfig};

/// The training objective, now [`imagen_diffusion::PredictionType`]
/// (`Eps` is `Epsilon`, `V` is `VPrediction`); saved configs keep their
/// `"eps"` / `"v"` names.
#[deprecated(
    since = "0.1.0",
    note = "use imagen_diffusion::PredictionType (Eps -> Epsilon, V -> VPrediction)"
)]
pub type TrainObjective = imagen_diffusion::PredictionType;
pub use error::TrainError;
pub use objective::{NullText, StageLoss, TrainBatch, downsample, drop_mask, stage_loss};
#[cfg(feature = "collective")]
pub use parallel::{DataParallel, serve_orchestrator, serve_orchestrator_on};
pub use params::{clip_grad_norm, ema_update, materialize};
pub use run::{FinishedRun, PreviewResult, RunConfig, RunStep, TrainingRun, UNetInit, seeded};
pub use timesteps::TimestepSampling;
pub use trainer::{LOG_SNR_EDGES, SnrBucket, StepReport, Trainer};
