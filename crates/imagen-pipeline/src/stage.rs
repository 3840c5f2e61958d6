//! One stage of the cascade: a U-Net, its sampler configuration and the
//! settings it samples with by default.

use burn::tensor::backend::Backend;
use imagen_diffusion::{
    DdimScheduler, DdpmScheduler, DiscreteSchedule, DpmSolverScheduler, Scheduler, SchedulerConfig,
    Thresholding,
};
use imagen_unet::{UNet, UNetConfig};

use crate::error::invalid;
use crate::{PipelineError, SamplerKind, StageSettings};

/// A base or super-resolution stage.
#[derive(Debug)]
pub struct Stage<B: Backend> {
    /// A name for progress reports and errors (`"base"`, `"sr256"`...).
    pub name: String,
    /// The network.
    pub unet: UNet<B>,
    /// The network's config (saved with it).
    pub unet_config: UNetConfig,
    /// The sampler's training schedule and prediction type.
    pub scheduler: SchedulerConfig,
    /// Super-resolution stages: the schedule that noises the low-resolution
    /// input (IF's `image_noising_scheduler`); `None` uses `scheduler`'s.
    pub noising: Option<SchedulerConfig>,
    /// Output side in pixels.
    pub resolution: usize,
    /// What the stage samples with unless a request overrides it.
    pub defaults: StageSettings,
}

impl<B: Backend> Stage<B> {
    /// Whether the U-Net reads a low-resolution image beside the sample.
    pub fn is_super_resolution(&self) -> bool {
        self.unet_config.in_channels == 6
    }

    /// The width of the text states the U-Net reads.
    pub fn text_dim(&self) -> usize {
        self.unet_config
            .encoder_hid_dim
            .unwrap_or_else(|| self.unet_config.cross_attention_dim.get(0))
    }

    /// Checks the stage against a text encoder of width `text_dim`.
    pub fn check(&self, text_dim: usize) -> Result<(), PipelineError> {
        if self.text_dim() != text_dim {
            return Err(PipelineError::TextDimMismatch {
                stage: self.name.clone(),
                expected: self.text_dim(),
                found: text_dim,
            });
        }
        let factor = self.unet_config.downsampling_factor();
        if self.resolution == 0 || !self.resolution.is_multiple_of(factor) {
            return Err(invalid(format!(
                "stage `{}`: resolution {} is not a multiple of the U-Net's downsampling factor {factor}",
                self.name, self.resolution
            )));
        }
        Ok(())
    }

    /// The noise tables the low-resolution input is augmented with.
    pub fn noising_schedule(&self) -> Result<DiscreteSchedule, PipelineError> {
        Ok(self
            .noising
            .as_ref()
            .unwrap_or(&self.scheduler)
            .schedule()?)
    }

    /// A sampler for `settings`, its timesteps set.
    pub fn sampler(
        &self,
        settings: &StageSettings,
        thresholding: Option<Thresholding>,
    ) -> Result<Box<dyn Scheduler<B>>, PipelineError> {
        if settings.steps == 0 {
            return Err(invalid(format!("stage `{}`: zero steps", self.name)));
        }
        Ok(match settings.sampler {
            SamplerKind::Ddpm => {
                let mut s = DdpmScheduler::new(&self.scheduler)?;
                if let Some(t) = thresholding {
                    s.set_thresholding(t);
                }
                s.set_timesteps(settings.steps)?;
                Box::new(s)
            }
            SamplerKind::Ddim {
                eta,
                clipped_model_output,
            } => {
                let mut s = DdimScheduler::new(&self.scheduler)?
                    .with_eta(eta)?
                    .with_clipped_model_output(clipped_model_output);
                if let Some(t) = thresholding {
                    s.set_thresholding(t);
                }
                s.set_timesteps(settings.steps)?;
                Box::new(s)
            }
            SamplerKind::DpmSolver => {
                let mut s = DpmSolverScheduler::<B>::new(&self.scheduler)?;
                if let Some(t) = thresholding {
                    s.set_thresholding(t);
                }
                s.set_timesteps(settings.steps)?;
                Box::new(s)
            }
        })
    }
}
