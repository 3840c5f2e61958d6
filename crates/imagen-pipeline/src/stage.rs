//! One stage of the cascade: a U-Net, its sampler configuration and the
//! settings it samples with by default.

use burn::tensor::backend::Backend;
use imagen_diffusion::{
    DdimScheduler, DdpmScheduler, DiscreteSchedule, DpmSolverScheduler, Scheduler, SchedulerConfig,
    Thresholding,
};
use imagen_unet::{UNet, UNetConfig};

use crate::error::invalid;
use crate::{PipelineError, SamplerKind, StageSettings, StageUNet};

/// The largest stage resolution a cascade takes, in pixels.
const MAX_RESOLUTION: usize = 1 << 16;

/// A base or super-resolution stage.
#[derive(Debug)]
pub struct Stage<B: Backend> {
    /// A name for progress reports and errors (`"base"`, `"sr256"`...).
    pub name: String,
    /// The network, resident or loaded for each run of the stage.
    pub unet: StageUNet<B>,
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
    /// A stage whose U-Net stays in memory, sampling with `defaults`; the
    /// resolution is the config's `sample_size` (64 if absent).
    pub fn resident(
        name: impl Into<String>,
        unet: UNet<B>,
        unet_config: UNetConfig,
        scheduler: SchedulerConfig,
        defaults: StageSettings,
    ) -> Self {
        Self {
            name: name.into(),
            resolution: unet_config.sample_size.unwrap_or(64),
            unet: StageUNet::Resident(unet),
            unet_config,
            scheduler,
            noising: None,
            defaults,
        }
    }

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
        // Sizes are multiplied by the resolution on the way up the cascade;
        // a manifest's 2^62 would overflow there, long after loading.
        if self.resolution > MAX_RESOLUTION {
            return Err(invalid(format!(
                "stage `{}`: resolution {} exceeds {MAX_RESOLUTION} px",
                self.name, self.resolution
            )));
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

    /// The `(height, width)` this stage samples at, given the previous
    /// stage's output size (`None` for the base stage, which uses `base`).
    /// A super-resolution stage scales both sides by its factor over the
    /// previous stage's resolution.
    pub(crate) fn size(
        &self,
        previous: Option<(&Stage<B>, (usize, usize))>,
        base: Option<(usize, usize)>,
    ) -> Result<(usize, usize), PipelineError> {
        let (h, w) = match previous {
            None => base.unwrap_or((self.resolution, self.resolution)),
            Some((prev, (ph, pw))) => {
                let scale = |side: usize| -> Result<usize, PipelineError> {
                    let scaled = side * self.resolution;
                    if !scaled.is_multiple_of(prev.resolution) {
                        return Err(invalid(format!(
                            "stage `{}` scales {} px to {} px; a side of {side} px does not scale to whole pixels",
                            self.name, prev.resolution, self.resolution
                        )));
                    }
                    Ok(scaled / prev.resolution)
                };
                (scale(ph)?, scale(pw)?)
            }
        };
        let factor = self.unet_config.downsampling_factor();
        if h == 0 || w == 0 || !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
            return Err(PipelineError::Size {
                stage: self.name.clone(),
                height: h,
                width: w,
                factor,
            });
        }
        Ok((h, w))
    }

    /// A sampler for `settings`, its timesteps set: `timesteps` when given
    /// (an explicit list, e.g. IF's `smart50`), else `settings.steps`.
    pub fn sampler(
        &self,
        settings: &StageSettings,
        thresholding: Option<Thresholding>,
        timesteps: Option<&[usize]>,
    ) -> Result<Box<dyn Scheduler<B>>, PipelineError> {
        if settings.steps == 0 && timesteps.is_none() {
            return Err(invalid(format!("stage `{}`: zero steps", self.name)));
        }
        let mut sampler: Box<dyn Scheduler<B>> = match settings.sampler {
            SamplerKind::Ddpm => Box::new(DdpmScheduler::new(&self.scheduler)?),
            SamplerKind::Ddim {
                eta,
                clipped_model_output,
            } => Box::new(
                DdimScheduler::new(&self.scheduler)?
                    .with_eta(eta)?
                    .with_clipped_model_output(clipped_model_output),
            ),
            SamplerKind::DpmSolver => Box::new(DpmSolverScheduler::<B>::new(&self.scheduler)?),
        };
        if let Some(t) = thresholding {
            sampler.set_thresholding(t);
        }
        match timesteps {
            Some(list) => sampler.set_custom_timesteps(list)?,
            None => sampler.set_timesteps(settings.steps)?,
        }
        Ok(sampler)
    }
}
