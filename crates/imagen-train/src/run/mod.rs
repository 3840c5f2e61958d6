//! A training run: resume or start, then step after step, with the CSV log,
//! checkpoints, the EMA export and a preview hook.

mod config;
mod init;
mod log;

pub use config::RunConfig;
pub use init::{UNetInit, seeded};

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Int, Tensor};

#[cfg(feature = "collective")]
use crate::DataParallel;
use crate::data::{DataLoader, EmbeddingCache, ImageTextSource};
use crate::error::io;
use crate::{NullText, StepReport, TrainBatch, TrainError, Trainer};
use log::RunLog;

/// What a preview hook returns: its own error, boxed, becomes
/// [`TrainError::Preview`].
pub type PreviewResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type PreviewHook<'a, B> = Box<dyn FnMut(&Trainer<B>) -> PreviewResult + 'a>;

/// One stage's training run, as the `train` example runs it: a [`Trainer`]
/// fed by a [`DataLoader`] and an [`EmbeddingCache`], which writes a log,
/// checkpoints and the EMA U-Net under [`RunConfig::out`].
///
/// - [`start`](Self::start) resumes the newest checkpoint when
///   [`RunConfig::resume`] asks for it and one exists, and otherwise builds
///   the U-Net from [`RunConfig::init`] (random weights drawn from the
///   config's seed under [`seeded`], so that every run with that seed
///   starts alike); `start_parallel` (feature `collective`) then joins a
///   data-parallel run.
/// - [`step`](Self::step) takes one optimiser step on the next
///   `grad_accumulation` batches. The loader's position is global: each
///   step consumes `world * grad_accumulation` batches, of which peer
///   `rank` reads `rank * grad_accumulation ..`, so a resumed or
///   data-parallel run reads what one uninterrupted device would.
/// - Rank 0 alone writes: it appends a row to `log.csv` every step,
///   checkpoints and exports the EMA U-Net every
///   [`save_every`](RunConfig::save_every) steps and after the last, and
///   then calls the [preview hook](Self::with_preview) when it is due.
/// - [`finish`](Self::finish) leaves the data-parallel run and hands back
///   the trainer.
///
/// The run prints nothing: [`RunStep`] and the accessors say what happened.
///
/// # `log.csv`
///
/// Appended to (a resumed run continues the file), the header written once:
/// `step,loss,lr,grad_norm,steps_per_s,images_per_s`, then the mean loss in
/// each log-SNR bucket, `loss_snr_-inf_-5,loss_snr_-5_-2,...,loss_snr_5_inf`
/// ([`LOG_SNR_EDGES`](crate::LOG_SNR_EDGES); empty when no example fell in
/// it). `step` is the 0-based step taken, `images_per_s` counts every
/// peer's images.
///
/// ```
/// use burn::backend::Autodiff;
/// use burn_flex::Flex;
/// use imagen_shapes::SamplerConfig;
/// use imagen_text::TextEncoder;
/// use imagen_train::data::{EmbeddingCache, EmbeddingCacheConfig, ShapesDataset};
/// use imagen_train::{RunConfig, StageKind, TrainConfig, TrainingRun, UNetInit};
/// use imagen_unet::UNetConfig;
///
/// # let t5_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/demo/text_encoder");
/// # let out = std::env::temp_dir().join(format!("imagen-train-doc-{}", std::process::id()));
/// let device = Default::default();
/// // 16 procedural scenes of 16 x 16 pixels, their captions encoded once.
/// let source = ShapesDataset::new(SamplerConfig::default(), 0, 16, 16)?;
/// let encoder = TextEncoder::<Flex>::from_dir(t5_dir, &device)?;
/// let cache = EmbeddingCache::build(
///     &source,
///     &encoder,
///     out.join("embeddings"),
///     &EmbeddingCacheConfig::new(),
/// )?;
///
/// let mut train = TrainConfig::new(StageKind::Base, 16);
/// train.batch_size = 2;
/// train.steps = 2;
/// let init = UNetInit::Config(UNetConfig::tiny_base(cache.d_model()));
/// let config = RunConfig::new(train, init, &out).with_save_every(1);
/// let mut run = TrainingRun::<Autodiff<Flex>, _>::start(config, &source, &cache, &device)?
///     .with_preview(2, |trainer| {
///         // e.g. sample a grid with `trainer.ema`
///         assert_eq!(trainer.step, 2);
///         Ok(())
///     });
/// while !run.is_done() {
///     let step = run.step()?;
///     println!("step {}: loss {:.4}", step.report.step, step.report.loss);
/// }
/// let trained = run.finish()?.trainer;
/// assert_eq!(trained.step, 2);
/// assert!(out.join("unet-ema/diffusion_pytorch_model.safetensors").is_file());
/// # std::fs::remove_dir_all(&out).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TrainingRun<'a, B: AutodiffBackend, S> {
    config: RunConfig,
    trainer: Trainer<B>,
    loader: DataLoader<S>,
    cache: &'a EmbeddingCache,
    null: NullText<B>,
    device: B::Device,
    /// The global data position of the next step.
    position: u64,
    resumed_from: Option<PathBuf>,
    /// Rank 0's log.
    log: Option<RunLog>,
    /// Rank 0's preview hook and its interval.
    preview: Option<(usize, PreviewHook<'a, B>)>,
    /// When the previous step ended (the first step's start before it).
    last: Option<Instant>,
}

/// What [`TrainingRun::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    /// The trainer's report (loss, learning rate, gradient norm).
    pub report: StepReport,
    /// Steps per second, from the end of the previous step.
    pub steps_per_s: f64,
    /// Images per second over all peers.
    pub images_per_s: f64,
    /// The checkpoint written after this step (rank 0), if one was due.
    pub checkpoint: Option<PathBuf>,
}

/// A run after [`TrainingRun::finish`].
pub struct FinishedRun<B: AutodiffBackend> {
    /// The trainer at the last step (its `ema` is what sampling should use).
    pub trainer: Trainer<B>,
    /// Distinct unreadable examples the loader skipped (worth a warning).
    pub skipped_corrupt: usize,
}

impl<'a, B: AutodiffBackend, S: ImageTextSource> TrainingRun<'a, B, S> {
    /// Starts (or resumes, see [`RunConfig::resume`]) a run on one device,
    /// reading `source` with captions embedded in `cache`, and opens the log
    /// (creating [`RunConfig::out`]).
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for settings [`RunConfig::validate`]
    /// refuses; a checkpoint's errors ([`Trainer::resume`]); the U-Net's
    /// ([`UNetInit`]); [`TrainError::Data`] for a loader that cannot start
    /// or a cache without the empty caption; [`TrainError::Io`] naming the
    /// output folder or log.
    pub fn start(
        config: RunConfig,
        source: S,
        cache: &'a EmbeddingCache,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        Self::open(config, source, cache, device, Ok)
    }

    /// [`start`](Self::start) for peer `parallel.rank` of a data-parallel
    /// run: after resuming or initialising, joins the run
    /// ([`Trainer::join`]), so that every peer starts from rank 0's weights.
    /// Every peer must be given the same settings and data. Only rank 0
    /// writes to [`RunConfig::out`].
    #[cfg(feature = "collective")]
    pub fn start_parallel(
        config: RunConfig,
        source: S,
        cache: &'a EmbeddingCache,
        parallel: DataParallel,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        Self::open(config, source, cache, device, |trainer| {
            trainer.join(parallel, device)
        })
    }

    fn open(
        config: RunConfig,
        source: S,
        cache: &'a EmbeddingCache,
        device: &B::Device,
        join: impl FnOnce(Trainer<B>) -> Result<Trainer<B>, TrainError>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let resumed_from = config.resume_from();
        let (trainer, position) = match &resumed_from {
            Some(checkpoint) => Trainer::resume(checkpoint, config.train.clone(), device)?,
            None => (config.init.trainer(config.train.clone(), device)?, 0),
        };
        let trainer = join(trainer)?;
        let loader = config.data.init(source)?;
        let null = cache.null()?;
        let (l, d) = (cache.max_length(), cache.d_model());
        let mask: Vec<i64> = null.mask.iter().map(|&m| i64::from(m)).collect();
        let null = NullText {
            text: Tensor::<B, 1>::from_floats(null.states.as_slice(), device).reshape([1, l, d]),
            mask: Tensor::<B, 1, Int>::from_ints(mask.as_slice(), device).reshape([1, l]),
        };
        let log = if trainer.rank().0 == 0 {
            std::fs::create_dir_all(&config.out).map_err(io(&config.out))?;
            Some(RunLog::open(&config.log_path())?)
        } else {
            None
        };
        Ok(Self {
            config,
            trainer,
            loader,
            cache,
            null,
            device: device.clone(),
            position,
            resumed_from,
            log,
            preview: None,
            last: None,
        })
    }

    /// Calls `hook` with the trainer after every `every`-th step (and its
    /// checkpoint), on rank 0 only; `every` = 0 never calls it. The
    /// `train` example samples a grid with the EMA U-Net here. An error
    /// `hook` returns ends [`step`](Self::step) with
    /// [`TrainError::Preview`], after that step's log row and checkpoint
    /// were written.
    pub fn with_preview(
        mut self,
        every: usize,
        hook: impl FnMut(&Trainer<B>) -> PreviewResult + 'a,
    ) -> Self {
        self.preview = (every > 0 && self.is_lead()).then(|| {
            let hook: PreviewHook<'a, B> = Box::new(hook);
            (every, hook)
        });
        self
    }

    /// Takes one optimiser step on the next batches, then (rank 0) writes
    /// its log row, the checkpoint and EMA U-Net when due, and calls the
    /// preview hook when due.
    ///
    /// # Errors
    /// [`TrainError::RunFinished`] once every step is taken; data and cache
    /// errors; the trainer's ([`Trainer::train_step`]: a non-finite loss or
    /// gradient leaves the weights as they were, and the data position has
    /// moved on, so calling `step` again tries the next batches);
    /// [`TrainError::Io`] naming the log; checkpoint and export errors;
    /// [`TrainError::Preview`].
    pub fn step(&mut self) -> Result<RunStep, TrainError> {
        let steps = self.trainer.config.steps;
        if self.is_done() {
            return Err(TrainError::RunFinished { steps });
        }
        let last = *self.last.get_or_insert_with(Instant::now);
        let (rank, world) = self.trainer.rank();
        let accumulate = self.trainer.config.grad_accumulation;
        let batch_size = self.config.data.batch_size;
        // Each step consumes `world * accumulate` batches, of which this
        // peer reads numbers `rank * accumulate ..`.
        let per_peer = (accumulate * batch_size) as u64;
        self.loader.seek(self.position + rank as u64 * per_peer);
        let mut micro = Vec::with_capacity(accumulate);
        for _ in 0..accumulate {
            let batch = self.loader.next_batch()?;
            let text = self.cache.get_batch(&batch.captions)?;
            micro.push(TrainBatch {
                images: Tensor::from_data(batch.images, &self.device),
                text: Tensor::from_data(text.states, &self.device),
                text_mask: Tensor::<B, 2, Bool>::from_data(text.mask, &self.device).int(),
            });
        }
        self.position += world as u64 * per_peer;
        let report = self.trainer.train_step(&micro, &self.null)?;
        let now = Instant::now();
        let seconds = now.duration_since(last).as_secs_f64();
        self.last = Some(now);
        let images = (batch_size * accumulate * world) as f64;
        let mut step = RunStep {
            report,
            steps_per_s: 1.0 / seconds,
            images_per_s: images / seconds,
            checkpoint: None,
        };
        let Some(log) = &mut self.log else {
            return Ok(step);
        };
        log.append(&step.report, step.steps_per_s, step.images_per_s)?;
        let trainer = &self.trainer;
        if trainer.step.is_multiple_of(self.config.save_every) || trainer.step == steps {
            step.checkpoint = Some(trainer.save(
                self.config.checkpoint_dir(),
                self.position,
                self.config.keep_checkpoints,
            )?);
            // The EMA weights in the diffusers layout, ready for a cascade.
            trainer
                .ema
                .save_dir(&trainer.unet_config, self.config.ema_dir(), None)?;
        }
        if let Some((every, hook)) = &mut self.preview
            && trainer.step.is_multiple_of(*every)
        {
            hook(trainer).map_err(|source| TrainError::Preview {
                step: trainer.step,
                source,
            })?;
        }
        Ok(step)
    }

    /// Whether every step of `config.train.steps` is taken.
    pub fn is_done(&self) -> bool {
        self.trainer.step >= self.trainer.config.steps
    }

    /// Leaves the data-parallel run, if any, and returns the trainer.
    pub fn finish(self) -> Result<FinishedRun<B>, TrainError> {
        #[allow(unused_mut)]
        let mut trainer = self.trainer;
        #[cfg(feature = "collective")]
        trainer.leave()?;
        Ok(FinishedRun {
            trainer,
            skipped_corrupt: self.loader.skipped_corrupt(),
        })
    }

    /// The trainer: step, weights, EMA, configs.
    pub fn trainer(&self) -> &Trainer<B> {
        &self.trainer
    }

    /// The run's settings.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The data loader (e.g. for the unreadable examples it skipped).
    pub fn loader(&self) -> &DataLoader<S> {
        &self.loader
    }

    /// This peer's rank and the world size (`(0, 1)` on one device).
    pub fn rank(&self) -> (usize, usize) {
        self.trainer.rank()
    }

    /// Whether this peer is rank 0, the one that writes.
    pub fn is_lead(&self) -> bool {
        self.rank().0 == 0
    }

    /// The checkpoint this run resumed, if it did.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref()
    }

    /// The global data position the next step starts at (saved with each
    /// checkpoint).
    pub fn data_position(&self) -> u64 {
        self.position
    }
}
