//! `RunConfig`: what a training run needs beyond the [`TrainConfig`].

use std::path::PathBuf;

use super::UNetInit;
use crate::data::DataLoaderConfig;
use crate::{TrainConfig, TrainError, latest_checkpoint};

/// A training run's settings: the [`TrainConfig`], where the U-Net comes
/// from, the data loader, and what is written under [`out`](Self::out).
///
/// # Output layout
///
/// - `<out>/log.csv`: one row per step (see [`TrainingRun`](super::TrainingRun)).
/// - `<out>/checkpoints/step-*`: every [`save_every`](Self::save_every)
///   steps and at the last, the newest [`keep_checkpoints`](Self::keep_checkpoints)
///   kept ([`Trainer::save`](crate::Trainer::save)).
/// - `<out>/unet-ema`: the EMA U-Net of the latest checkpoint in the
///   diffusers layout, ready for a cascade stage.
/// - `<out>/embeddings`: where the `train` example builds its
///   [`EmbeddingCache`](crate::data::EmbeddingCache) (any cache will do).
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// The trainer's settings (saved with every checkpoint).
    pub train: TrainConfig,
    /// The U-Net when no checkpoint is resumed.
    pub init: UNetInit,
    /// The data loader. Its `batch_size` must be `train.batch_size` and its
    /// output side (`crop`, else `resolution`) `train.resolution`.
    pub data: DataLoaderConfig,
    /// The output folder.
    pub out: PathBuf,
    /// Checkpoint (and export the EMA U-Net) every this many steps, and
    /// after the last (default 1000).
    pub save_every: usize,
    /// Checkpoints kept (default 3).
    pub keep_checkpoints: usize,
    /// Continue from the newest checkpoint in `<out>/checkpoints` when there
    /// is one (default off: start from `init`). The checkpoint's config
    /// must be `train`, but for the learning-rate schedule
    /// ([`SCHEDULE_FIELDS`](crate::SCHEDULE_FIELDS)).
    pub resume: bool,
}

impl RunConfig {
    /// A run of `train` from `init`, writing to `out`. The loader reads
    /// `train.batch_size` examples of `train.resolution` pixels in the
    /// order seeded by `train.seed`, flipped if `train.random_flip`; set
    /// [`data`](Self::data) to crop, resize or decode on several threads.
    pub fn new(train: TrainConfig, init: UNetInit, out: impl Into<PathBuf>) -> Self {
        let data = DataLoaderConfig::new(train.batch_size, train.resolution as u32)
            .with_seed(train.seed)
            .with_random_flip(train.random_flip);
        Self {
            train,
            init,
            data,
            out: out.into(),
            save_every: 1000,
            keep_checkpoints: 3,
            resume: false,
        }
    }

    /// Sets the data loader's settings.
    pub fn with_data(mut self, data: DataLoaderConfig) -> Self {
        self.data = data;
        self
    }

    /// Sets the checkpoint interval.
    pub fn with_save_every(mut self, save_every: usize) -> Self {
        self.save_every = save_every;
        self
    }

    /// Sets how many checkpoints are kept.
    pub fn with_keep_checkpoints(mut self, keep: usize) -> Self {
        self.keep_checkpoints = keep;
        self
    }

    /// Continues from the newest checkpoint when there is one.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// `<out>/checkpoints`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.out.join("checkpoints")
    }

    /// `<out>/unet-ema`.
    pub fn ema_dir(&self) -> PathBuf {
        self.out.join("unet-ema")
    }

    /// `<out>/log.csv`.
    pub fn log_path(&self) -> PathBuf {
        self.out.join("log.csv")
    }

    /// `<out>/embeddings`.
    pub fn embeddings_dir(&self) -> PathBuf {
        self.out.join("embeddings")
    }

    /// The checkpoint a run started now would continue: with
    /// [`resume`](Self::resume), the newest complete one in
    /// [`checkpoint_dir`](Self::checkpoint_dir) ([`latest_checkpoint`]).
    pub fn resume_from(&self) -> Option<PathBuf> {
        self.resume
            .then(|| latest_checkpoint(self.checkpoint_dir()))
            .flatten()
    }

    /// Checks the settings a run cannot start with: those of
    /// [`TrainConfig::validate`], a zero `save_every`, and a loader whose
    /// batches do not have the trainer's size or side.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.train.validate()?;
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.save_every == 0 {
            return bad("save_every must be positive".into());
        }
        if self.data.batch_size != self.train.batch_size {
            return bad(format!(
                "the data loader's batch_size {} is not the trainer's {}",
                self.data.batch_size, self.train.batch_size
            ));
        }
        let side = self.data.output_size() as usize;
        if side != self.train.resolution {
            return bad(format!(
                "the data loader yields {side} x {side} images (crop, else resolution), \
                 the trainer's resolution is {}",
                self.train.resolution
            ));
        }
        Ok(())
    }
}
