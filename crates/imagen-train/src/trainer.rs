//! The training loop's step: gradient accumulation, global-norm clipping,
//! AdamW with the configured schedule, and the EMA of the weights.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use imagen_diffusion::DiscreteSchedule;
use imagen_unet::{UNet, UNetConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::seed::{DIFFUSION, derive};
#[cfg(feature = "collective")]
use crate::parallel::DataParallel;
use crate::params::{clip_grad_norm, ema_update};
use crate::{NullText, TrainBatch, TrainConfig, TrainError, stage_loss};

/// Edges of the log-SNR buckets the loss is reported in (high noise first).
pub const LOG_SNR_EDGES: [f64; 5] = [-5.0, -2.0, 0.0, 2.0, 5.0];

/// Mean loss of the examples whose log-SNR fell in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnrBucket {
    /// Lower edge (`-inf` for the first).
    pub lo: f64,
    /// Upper edge (`inf` for the last).
    pub hi: f64,
    /// Mean weighted loss, `NaN` when `count` is 0.
    pub loss: f32,
    /// Examples in the bucket this step.
    pub count: usize,
}

/// What one optimiser step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The step just taken (0-based).
    pub step: usize,
    /// Mean loss over the micro-batches.
    pub loss: f32,
    /// Gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// The loss by log-SNR bucket ([`LOG_SNR_EDGES`]).
    pub snr_buckets: Vec<SnrBucket>,
}

fn buckets(pairs: &[(f64, f32)]) -> Vec<SnrBucket> {
    let mut edges = vec![f64::NEG_INFINITY];
    edges.extend(LOG_SNR_EDGES);
    edges.push(f64::INFINITY);
    edges
        .windows(2)
        .map(|w| {
            let inside: Vec<f32> = pairs
                .iter()
                .filter(|(s, _)| *s >= w[0] && *s < w[1])
                .map(|&(_, l)| l)
                .collect();
            SnrBucket {
                lo: w[0],
                hi: w[1],
                loss: inside.iter().sum::<f32>() / inside.len() as f32,
                count: inside.len(),
            }
        })
        .collect()
}

/// A U-Net being trained: the weights, their EMA, AdamW's state and the step.
///
/// The random draws of micro-batch `i` of step `s` come from a generator
/// seeded with `(config.seed, s, i)`, so a run resumed from a checkpoint
/// continues exactly, and a data-parallel run draws what one device
/// accumulating every peer's micro-batches would.
pub struct Trainer<B: AutodiffBackend> {
    /// The run's settings.
    pub config: TrainConfig,
    /// The network's config.
    pub unet_config: UNetConfig,
    unet: Option<UNet<B>>,
    /// Exponential moving average of the weights (what sampling should use).
    pub ema: UNet<B::InnerBackend>,
    pub(crate) optim: OptimizerAdaptor<AdamW, UNet<B>, B>,
    /// Optimiser steps taken.
    pub step: usize,
    schedule: DiscreteSchedule,
    #[cfg(feature = "collective")]
    parallel: Option<DataParallel>,
}

pub(crate) fn adamw<B: AutodiffBackend>(c: &TrainConfig) -> OptimizerAdaptor<AdamW, UNet<B>, B> {
    AdamWConfig::new()
        .with_beta_1(c.beta_1 as f32)
        .with_beta_2(c.beta_2 as f32)
        .with_epsilon(c.epsilon as f32)
        .with_weight_decay(c.weight_decay as f32)
        .init()
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Starts training `unet` (fresh or loaded for fine-tuning) at step 0.
    pub fn new(
        config: TrainConfig,
        unet_config: UNetConfig,
        unet: UNet<B>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let schedule = config.noise_schedule.schedule()?;
        let optim = adamw::<B>(&config);
        Ok(Self {
            ema: unet.valid(),
            unet: Some(unet),
            optim,
            step: 0,
            schedule,
            config,
            unet_config,
            #[cfg(feature = "collective")]
            parallel: None,
        })
    }

    pub(crate) fn from_parts(
        config: TrainConfig,
        unet_config: UNetConfig,
        unet: UNet<B>,
        ema: UNet<B::InnerBackend>,
        optim: OptimizerAdaptor<AdamW, UNet<B>, B>,
        step: usize,
    ) -> Result<Self, TrainError> {
        let schedule = config.noise_schedule.schedule()?;
        Ok(Self {
            config,
            unet_config,
            unet: Some(unet),
            ema,
            optim,
            step,
            schedule,
            #[cfg(feature = "collective")]
            parallel: None,
        })
    }

    /// The network being trained.
    pub fn unet(&self) -> &UNet<B> {
        self.unet.as_ref().expect("present between steps")
    }

    /// The generator of the random draws (timesteps, noise, text dropout,
    /// augmentation) of global micro-batch `index` of step `step`.
    pub fn micro_batch_rng(&self, step: usize, index: usize) -> StdRng {
        StdRng::seed_from_u64(derive(
            DIFFUSION,
            &[self.config.seed, step as u64, index as u64],
        ))
    }

    /// Joins a data-parallel run as `parallel.rank`: registers `device` with
    /// burn-collective and replaces this peer's weights and EMA by rank 0's,
    /// so the peers start identical. Every peer must use the same config and
    /// step (a resumed run: the same checkpoint, whose optimiser state every
    /// peer loads). From then on each step all-reduces the gradients, so the
    /// peers stay identical. Call [`Trainer::leave`] after the last step.
    #[cfg(feature = "collective")]
    pub fn join(mut self, parallel: DataParallel, device: &B::Device) -> Result<Self, TrainError> {
        parallel.register::<B>(device)?;
        let unet = self.unet.take().expect("present between steps");
        self.unet = Some(parallel.broadcast_trained(unet)?);
        self.ema = parallel.broadcast(self.ema.clone())?;
        self.parallel = Some(parallel);
        Ok(self)
    }

    /// Leaves the data-parallel run joined with [`Trainer::join`] (no-op
    /// otherwise).
    #[cfg(feature = "collective")]
    pub fn leave(&mut self) -> Result<(), TrainError> {
        match self.parallel.take() {
            Some(p) => p.finish::<B>(),
            None => Ok(()),
        }
    }

    /// This trainer's data-parallel rank and world size (`(0, 1)` alone).
    pub fn rank(&self) -> (usize, usize) {
        #[cfg(feature = "collective")]
        if let Some(p) = &self.parallel {
            return (p.rank, p.world_size);
        }
        (0, 1)
    }

    /// One optimiser step over `micro_batches` (as many as
    /// `grad_accumulation`), each conditioned on its cached text, with text
    /// dropped to `null` at the configured rate.
    ///
    /// A non-finite loss ([`TrainError::NonFinite`]) or gradient norm
    /// ([`TrainError::NonFiniteGradients`]) is an error and the step is not
    /// taken: the weights, the optimiser state, the EMA and the step count
    /// stay as they were, so the caller may stop or go on with the next
    /// batch. In a data-parallel run every peer sees the same all-reduced
    /// loss and gradients, so all of them fail alike.
    pub fn train_step(
        &mut self,
        micro_batches: &[TrainBatch<B>],
        null: &NullText<B>,
    ) -> Result<StepReport, TrainError> {
        if micro_batches.is_empty() {
            return Err(TrainError::InvalidConfig(
                "a step needs at least one micro-batch".into(),
            ));
        }
        let (grads, loss_sum, by_snr) = self.gradients(micro_batches, null);
        let device = micro_batches[0].images.device();
        self.apply(grads, loss_sum, &by_snr, &device)
    }

    /// The accumulated gradients of `micro_batches`, their mean loss, and
    /// each example's (log-SNR, loss).
    fn gradients(
        &self,
        micro_batches: &[TrainBatch<B>],
        null: &NullText<B>,
    ) -> (GradientsParams, f32, Vec<(f64, f32)>) {
        let unet = self.unet();
        let k = micro_batches.len() as f64;
        let first_index = self.rank().0 * micro_batches.len();
        let mut accumulator = GradientsAccumulator::<UNet<B>>::new();
        let mut loss_sum = 0.0f32;
        let mut by_snr = Vec::new();
        for (j, batch) in micro_batches.iter().enumerate() {
            let mut rng = self.micro_batch_rng(self.step, first_index + j);
            let out = stage_loss(unet, batch, null, &self.schedule, &self.config, &mut rng);
            let per_sample: Vec<f32> = out
                .per_sample
                .into_data()
                .convert::<f32>()
                .to_vec()
                .unwrap_or_default();
            loss_sum += per_sample.iter().sum::<f32>() / per_sample.len().max(1) as f32 / k as f32;
            by_snr.extend(out.log_snr.into_iter().zip(per_sample));
            let grads = GradientsParams::from_grads((out.loss / k).backward(), unet);
            accumulator.accumulate(unet, grads);
        }
        (accumulator.grads(), loss_sum, by_snr)
    }

    /// Averages `grads` over the peers (data-parallel), checks the loss and
    /// the gradient norm, clips, steps AdamW and the EMA. Changes nothing
    /// when it returns an error.
    fn apply(
        &mut self,
        mut grads: GradientsParams,
        #[allow(unused_mut)] mut loss_sum: f32,
        by_snr: &[(f64, f32)],
        #[allow(unused_variables)] device: &B::Device,
    ) -> Result<StepReport, TrainError> {
        #[cfg(feature = "collective")]
        if let Some(p) = &self.parallel {
            // Every peer reaches the all-reduce, even with a non-finite
            // loss, so that an error on one peer is an error on all of them
            // rather than a hang.
            loss_sum = p.all_reduce_step::<B, _>(self.unet(), &mut grads, loss_sum, device)?;
        }
        if !loss_sum.is_finite() {
            return Err(TrainError::NonFinite { step: self.step });
        }
        let grad_norm = match self.config.grad_clip_norm {
            Some(max) => clip_grad_norm(self.unet(), &mut grads, max),
            None => clip_grad_norm(self.unet(), &mut grads, f64::INFINITY),
        };
        // A NaN norm would skip clipping and an infinite one used to scale
        // every gradient by 0; either way AdamW would write NaN into the
        // weights, its moments and then the EMA.
        if !grad_norm.is_finite() {
            return Err(TrainError::NonFiniteGradients {
                step: self.step,
                norm: grad_norm,
            });
        }
        let lr = self.config.lr_at(self.step);
        let unet = self.unet.take().expect("present between steps");
        let unet = self.optim.step(lr, unet, grads);
        let ema = std::mem::replace(&mut self.ema, unet.valid());
        self.ema = if self.step >= self.config.ema_start_step {
            let n = (self.step - self.config.ema_start_step) as f64;
            let decay = self.config.ema_decay.min((1.0 + n) / (10.0 + n));
            ema_update::<B, UNet<B>>(ema, &unet, decay)
        } else {
            unet.valid()
        };
        self.unet = Some(unet);
        let report = StepReport {
            step: self.step,
            loss: loss_sum,
            grad_norm,
            lr,
            snr_buckets: buckets(by_snr),
        };
        self.step += 1;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StageKind, materialize};
    use burn::backend::Autodiff;
    use burn::tensor::backend::Backend;
    use burn::tensor::{Distribution, Int, Tensor};
    use burn_flex::Flex;

    type B = Autodiff<Flex>;

    fn files(dir: &std::path::Path) -> Vec<Vec<u8>> {
        [
            "model/diffusion_pytorch_model.safetensors",
            "ema/diffusion_pytorch_model.safetensors",
            "optimizer.safetensors",
        ]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
    }

    /// Issue 39: a NaN or infinite gradient (injected into real gradients:
    /// no batch makes them non-finite while the loss stays finite) is a
    /// typed error; the weights, AdamW's moments, the EMA and the step are
    /// those of the last good step, and training goes on afterwards.
    #[test]
    fn non_finite_gradients_leave_weights_optimizer_and_ema_untouched() {
        let device = Default::default();
        B::seed(&device, 3);
        let unet_config = imagen_unet::UNetConfig::tiny_base(16);
        let unet = materialize(unet_config.init::<B>(&device).unwrap());
        let mut config = TrainConfig::new(StageKind::Base, 16);
        config.batch_size = 2;
        config.warmup_steps = 1;
        config.lr = 1e-3;
        let mut t = Trainer::new(config, unet_config, unet).unwrap();
        let batch = TrainBatch {
            images: Tensor::random([2, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device),
            text: Tensor::random([2, 6, 16], Distribution::Normal(0.0, 1.0), &device),
            text_mask: Tensor::<B, 2, Int>::ones([2, 6], &device),
        };
        let null = NullText {
            text: Tensor::zeros([1, 6, 16], &device),
            mask: Tensor::<B, 2, Int>::zeros([1, 6], &device),
        };
        let batches = std::slice::from_ref(&batch);
        t.train_step(batches, &null).unwrap();
        let root =
            std::env::temp_dir().join(format!("imagen-train-nonfinite-{}", std::process::id()));
        let before = files(&t.save(root.join("before"), 0, 1).unwrap());

        for bad in [f32::NAN, f32::INFINITY] {
            let (mut grads, loss, by_snr) = t.gradients(batches, &null);
            let id = t.unet().conv_in.weight.id;
            let g = grads.remove::<Flex, 4>(id).unwrap();
            grads.register::<Flex, 4>(id, g.clone().slice_fill([0..1, 0..1, 0..1, 0..1], bad));
            let err = t.apply(grads, loss, &by_snr, &device).unwrap_err();
            assert!(
                matches!(err, TrainError::NonFiniteGradients { step: 1, .. }),
                "{bad}: {err}"
            );
            assert_eq!(t.step, 1);
            let after = files(&t.save(root.join("after"), 0, 1).unwrap());
            assert!(before == after, "{bad}: weights, EMA or moments changed");
        }
        t.train_step(batches, &null).unwrap();
        assert_eq!(t.step, 2);
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn losses_fall_into_their_log_snr_buckets() {
        let b = buckets(&[(-7.0, 1.0), (-6.0, 3.0), (1.0, 0.5), (9.0, 0.25)]);
        assert_eq!(b.len(), LOG_SNR_EDGES.len() + 1);
        assert_eq!((b[0].count, b[0].loss), (2, 2.0));
        assert_eq!((b[3].lo, b[3].hi, b[3].count), (0.0, 2.0, 1));
        assert_eq!((b[5].count, b[5].loss), (1, 0.25));
        assert_eq!(b[1].count, 0);
        assert!(b[1].loss.is_nan());
    }
}
