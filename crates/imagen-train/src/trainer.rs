//! The training loop's step: gradient accumulation, global-norm clipping,
//! AdamW with the configured schedule, and the EMA of the weights.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use imagen_diffusion::DiscreteSchedule;
use imagen_unet::{UNet, UNetConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::params::{clip_grad_norm, ema_update};
use crate::{NullText, TrainBatch, TrainConfig, TrainError, stage_loss};

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The step just taken (0-based).
    pub step: usize,
    /// Mean loss over the micro-batches.
    pub loss: f32,
    /// Gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// A U-Net being trained: the weights, their EMA, AdamW's state and the step.
///
/// Every random draw of step `s` comes from a generator seeded with
/// `(config.seed, s)`, so a run resumed from a checkpoint continues exactly.
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
        })
    }

    /// The network being trained.
    pub fn unet(&self) -> &UNet<B> {
        self.unet.as_ref().expect("present between steps")
    }

    /// The generator of step `step`'s random draws.
    pub fn step_rng(&self, step: usize) -> StdRng {
        StdRng::seed_from_u64(
            self.config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(step as u64),
        )
    }

    /// One optimiser step over `micro_batches` (as many as
    /// `grad_accumulation`), each conditioned on its cached text, with text
    /// dropped to `null` at the configured rate.
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
        let mut rng = self.step_rng(self.step);
        let unet = self.unet.take().expect("present between steps");
        let k = micro_batches.len() as f64;
        let mut accumulator = GradientsAccumulator::<UNet<B>>::new();
        let mut loss_sum = 0.0f32;
        for batch in micro_batches {
            let loss = stage_loss(&unet, batch, null, &self.schedule, &self.config, &mut rng) / k;
            loss_sum += loss.clone().into_scalar().elem::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &unet);
            accumulator.accumulate(&unet, grads);
        }
        if !loss_sum.is_finite() {
            self.unet = Some(unet);
            return Err(TrainError::NonFinite { step: self.step });
        }
        let mut grads = accumulator.grads();
        let grad_norm = match self.config.grad_clip_norm {
            Some(max) => clip_grad_norm(&unet, &mut grads, max),
            None => clip_grad_norm(&unet, &mut grads, f64::INFINITY),
        };
        let lr = self.config.lr_at(self.step);
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
        };
        self.step += 1;
        Ok(report)
    }
}
