//! The cascade: one text encoder, a base stage and super-resolution stages,
//! run in sequence on one request.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use image::RgbImage;
use imagen_diffusion::{
    NoiseSource, SampleOptions, SeededNoise, TailScheduler, add_noise, img2img_timesteps,
    inpaint_hook, sample_with,
};
use imagen_text::{TextEmbeddings, TextEncoder, Truncation};
use imagen_unet::UNetCond;

use crate::error::invalid;
use crate::images::{image_to_tensor, mask_to_tensor, resize, tensor_to_images};
use crate::{Edit, GenerateRequest, PipelineError, PromptStyle, Stage};

/// Where the text encoder's files came from, so that [`Cascade::save`] can
/// copy them (the encoder is frozen and never rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSource {
    /// Directory with `config.json` and `model.safetensors` (or shards).
    pub model_dir: PathBuf,
    /// The `tokenizer.json`.
    pub tokenizer: PathBuf,
}

/// Imagen's cascade: prompts → T5 embeddings (once per call) → base stage →
/// super-resolution stages, each conditioned on the text and on the previous
/// stage's output.
///
/// ```no_run
/// use burn_flex::Flex;
/// use imagen_pipeline::{Cascade, GenerateRequest, save_png};
/// let cascade = Cascade::<Flex>::load("models/demo", &Default::default())?;
/// let out = cascade.generate(&GenerateRequest::new("a red circle").seed(7), &mut |_| {})?;
/// save_png(&out.images[0], "circle.png")?;
/// # Ok::<(), imagen_pipeline::PipelineError>(())
/// ```
#[derive(Debug)]
pub struct Cascade<B: Backend> {
    /// The frozen text encoder (tokenizer + T5).
    pub text: TextEncoder<B>,
    /// Base stage first, then super-resolution stages.
    pub stages: Vec<Stage<B>>,
    /// Prompt normalisation before tokenization.
    pub prompt_style: PromptStyle,
    /// Pass the text padding mask to the U-Nets (DeepFloyd IF does not: its
    /// U-Nets attend to the padded positions too).
    pub text_mask: bool,
    /// The text encoder's files, for [`Cascade::save`].
    pub text_source: Option<TextSource>,
    pub(crate) device: B::Device,
}

/// Where a generation is: stage `stage` of `stages`, step `step` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageProgress {
    /// Stage index.
    pub stage: usize,
    /// Stages this request runs.
    pub stages: usize,
    /// Steps done in this stage.
    pub step: usize,
    /// Steps of this stage.
    pub total: usize,
}

/// The result of [`Cascade::generate`].
#[derive(Debug, Clone)]
pub struct Generated {
    /// One image per prompt and image-per-prompt, prompt-major.
    pub images: Vec<RgbImage>,
    /// Prompts cut to the encoder's maximum length (index into the prompts).
    pub truncated: Vec<Truncation>,
}

/// Every stage's output of [`Cascade::run`], in `[-1, 1]`.
#[derive(Debug, Clone)]
pub struct StageOutputs<B: Backend> {
    /// `[images, 3, res, res]` per stage run.
    pub outputs: Vec<Tensor<B, 4>>,
    /// Prompts cut to the encoder's maximum length.
    pub truncated: Vec<Truncation>,
}

/// Text states for one stage's U-Net batch. Masks are kept as 0/1 integers
/// while rows are selected and concatenated (burn-flex 0.21 mislabels the
/// dtype of a selected bool tensor, which `bool_not` then rejects).
struct TextBatch<B: Backend> {
    cond: Tensor<B, 3>,
    uncond: Tensor<B, 3>,
    cond_mask: Tensor<B, 2, Int>,
    uncond_mask: Tensor<B, 2, Int>,
}

impl<B: Backend> TextBatch<B> {
    fn for_unet(
        &self,
        guided: bool,
        with_mask: bool,
    ) -> (Tensor<B, 3>, Option<Tensor<B, 2, Bool>>) {
        let (states, mask) = if guided {
            (
                Tensor::cat(vec![self.uncond.clone(), self.cond.clone()], 0),
                Tensor::cat(vec![self.uncond_mask.clone(), self.cond_mask.clone()], 0),
            )
        } else {
            (self.cond.clone(), self.cond_mask.clone())
        };
        (states, with_mask.then(|| mask.equal_elem(1)))
    }
}

impl<B: Backend> Cascade<B> {
    /// Joins a text encoder and stages, checking that every stage reads text
    /// states as wide as the encoder writes and that super-resolution stages
    /// follow a stage.
    pub fn new(
        text: TextEncoder<B>,
        stages: Vec<Stage<B>>,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let cascade = Self {
            text,
            stages,
            prompt_style: PromptStyle::AsIs,
            text_mask: true,
            text_source: None,
            device: device.clone(),
        };
        cascade.check()?;
        Ok(cascade)
    }

    /// The device the cascade runs on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Width of the text encoder's states.
    pub fn text_dim(&self) -> usize {
        self.text.model().shared.weight.dims()[1]
    }

    fn check(&self) -> Result<(), PipelineError> {
        let first = self
            .stages
            .first()
            .ok_or_else(|| invalid("a cascade needs at least one stage"))?;
        if first.is_super_resolution() {
            return Err(invalid(format!(
                "stage `{}` is a super-resolution stage (6 input channels) and cannot come first",
                first.name
            )));
        }
        let dim = self.text_dim();
        self.stages.iter().try_for_each(|s| s.check(dim))
    }

    /// Encodes prompts after the cascade's [`PromptStyle`].
    pub fn encode(&self, prompts: &[String]) -> Result<TextEmbeddings<B>, PipelineError> {
        let styled: Vec<String> = prompts.iter().map(|p| self.prompt_style.apply(p)).collect();
        let refs: Vec<&str> = styled.iter().map(String::as_str).collect();
        Ok(self.text.encode(&refs)?)
    }

    /// Text states of every image: each prompt's row repeated
    /// `images_per_prompt` times; the negative prompts likewise.
    fn text_batch(
        &self,
        req: &GenerateRequest,
    ) -> Result<(TextBatch<B>, Vec<Truncation>), PipelineError> {
        let n = req.prompts.len();
        let per = req.images_per_prompt;
        let TextEmbeddings {
            embeddings: cond,
            mask: cond_mask,
            truncated,
        } = self.encode(&req.prompts)?;
        let negatives = match req.negative_prompts.len() {
            0 => vec![String::new()],
            1 => req.negative_prompts.clone(),
            m if m == n => req.negative_prompts.clone(),
            m => {
                return Err(invalid(format!(
                    "{m} negative prompts for {n} prompts: give none, one, or one per prompt"
                )));
            }
        };
        let TextEmbeddings {
            embeddings: uncond,
            mask: uncond_mask,
            ..
        } = self.encode(&negatives)?;
        let rows = |count: usize| -> Tensor<B, 1, Int> {
            let idx: Vec<i64> = (0..n * per)
                .map(|i| if count == 1 { 0 } else { (i / per) as i64 })
                .collect();
            Tensor::from_data(TensorData::new(idx, [n * per]), &self.device)
        };
        let (pick_cond, pick_uncond) = (rows(n), rows(negatives.len()));
        Ok((
            TextBatch {
                cond: cond.select(0, pick_cond.clone()),
                cond_mask: cond_mask.int().select(0, pick_cond),
                uncond: uncond.select(0, pick_uncond.clone()),
                uncond_mask: uncond_mask.int().select(0, pick_uncond),
            },
            truncated,
        ))
    }

    fn check_request(&self, req: &GenerateRequest) -> Result<usize, PipelineError> {
        if req.prompts.is_empty() {
            return Err(invalid("no prompts"));
        }
        if req.images_per_prompt == 0 {
            return Err(invalid("images_per_prompt is 0"));
        }
        let last = req.stop_after.unwrap_or(self.stages.len() - 1);
        if last >= self.stages.len() {
            return Err(invalid(format!(
                "stop_after = {last}, but the cascade has {} stages",
                self.stages.len()
            )));
        }
        if req.stages.len() > self.stages.len() {
            return Err(invalid(format!(
                "overrides for {} stages, but the cascade has {}",
                req.stages.len(),
                self.stages.len()
            )));
        }
        if let Some(Edit::Img2Img { strength, .. } | Edit::Inpaint { strength, .. }) = &req.edit
            && !(*strength > 0.0 && *strength <= 1.0)
        {
            return Err(invalid(format!(
                "edit strength {strength} is not in (0, 1]"
            )));
        }
        Ok(last)
    }

    /// Generates images: [`Cascade::run`], then the last stage's output as RGB.
    pub fn generate(
        &self,
        req: &GenerateRequest,
        progress: &mut dyn FnMut(StageProgress),
    ) -> Result<Generated, PipelineError> {
        let out = self.run(req, progress)?;
        let last = out.outputs.last().expect("at least one stage ran").clone();
        Ok(Generated {
            images: tensor_to_images(last)?,
            truncated: out.truncated,
        })
    }

    /// Runs the request's stages with seeded noise (stage `i`: `seed + i`
    /// unless overridden), returning every stage's output.
    pub fn run(
        &self,
        req: &GenerateRequest,
        progress: &mut dyn FnMut(StageProgress),
    ) -> Result<StageOutputs<B>, PipelineError> {
        self.run_with_noise(
            req,
            &mut |_, seed| Box::new(SeededNoise::new(seed)),
            progress,
        )
    }

    /// [`Cascade::run`] with the noise of each stage from `noise(stage, seed)`
    /// (e.g. noise recorded from a reference implementation). Each stage
    /// draws in this order: the initial sample, then (super-resolution) the
    /// augmentation noise of the low-resolution input, then the sampler's
    /// per-step noise, as diffusers' IF pipelines do.
    pub fn run_with_noise(
        &self,
        req: &GenerateRequest,
        noise: &mut dyn FnMut(usize, u64) -> Box<dyn NoiseSource<B>>,
        progress: &mut dyn FnMut(StageProgress),
    ) -> Result<StageOutputs<B>, PipelineError> {
        let last = self.check_request(req)?;
        let (text, truncated) = self.text_batch(req)?;
        let images = req.prompts.len() * req.images_per_prompt;
        let mut outputs: Vec<Tensor<B, 4>> = Vec::with_capacity(last + 1);
        for (i, stage) in self.stages[..=last].iter().enumerate() {
            let overrides = req.overrides(i);
            let settings = stage.defaults.with(&overrides);
            let guided = settings.guided();
            let rows = if guided { 2 * images } else { images };
            let mut sampler = stage.sampler(&settings, overrides.thresholding)?;
            let mut source = noise(i, overrides.seed.unwrap_or(req.seed.wrapping_add(i as u64)));
            let res = stage.resolution;
            let x_t = source.gaussian([images, 3, res, res], &self.device);

            let (states, mask) = text.for_unet(guided, self.text_mask);
            let mut cond = UNetCond {
                text: states,
                text_mask: mask,
                lowres: None,
                noise_level: None,
            };
            if stage.is_super_resolution() {
                let previous = outputs.last().ok_or_else(|| {
                    invalid(format!("stage `{}` needs a previous stage", stage.name))
                })?;
                let level = settings.noise_level.unwrap_or(0);
                let schedule = stage.noising_schedule()?;
                if level >= schedule.len() {
                    return Err(invalid(format!(
                        "stage `{}`: noise level {level} is outside the noising schedule (0..{})",
                        stage.name,
                        schedule.len()
                    )));
                }
                let upscaled = resize(previous.clone(), res);
                let aug = source.gaussian([images, 3, res, res], &self.device);
                let noised = add_noise(&schedule, upscaled, aug, &vec![level; images]);
                cond.lowres = Some(if guided {
                    Tensor::cat(vec![noised.clone(), noised], 0)
                } else {
                    noised
                });
                cond.noise_level = Some(vec![level as f32; rows]);
            }

            // Image editing (base stage): start part-way, maybe re-impose.
            let schedule = stage.scheduler.schedule()?;
            let mut skip = 0;
            let mut x = x_t;
            let mut mask_t = None;
            let mut known = None;
            if let (0, Some(edit)) = (i, &req.edit) {
                let (image, strength) = match edit {
                    Edit::Img2Img { image, strength } => (image, *strength),
                    Edit::Inpaint {
                        image,
                        mask,
                        strength,
                    } => {
                        let m = resize(mask_to_tensor::<B>(mask, &self.device), res);
                        mask_t = Some(m);
                        (image, *strength)
                    }
                };
                let image =
                    resize(image_to_tensor::<B>(image, &self.device), res).repeat_dim(0, images);
                let all = sampler.timesteps().to_vec();
                let tail = img2img_timesteps(&all, strength);
                let first = *tail.first().ok_or_else(|| {
                    invalid(format!(
                        "strength {strength} leaves none of the {} steps to run",
                        all.len()
                    ))
                })?;
                skip = all.len() - tail.len();
                x = add_noise(&schedule, image.clone(), x, &vec![first; images]);
                known = mask_t.take().map(|m| (image, m));
            }

            let mut reimpose = known.map(|(image, mask)| inpaint_hook(&schedule, image, mask));
            let mut hook =
                |next: Option<usize>, x: Tensor<B, 4>, n: &mut dyn NoiseSource<B>| match reimpose
                    .as_mut()
                {
                    Some(h) => h(next, x, n),
                    None => x,
                };
            let stages = last + 1;
            let options = SampleOptions {
                guidance_scale: guided.then_some(settings.guidance_scale),
                guidance_interval: settings.guidance_interval,
                high_noise_guidance: settings.high_noise_guidance,
                check_finite: true,
            };
            let out = sample_with(
                &stage.unet,
                &mut TailScheduler::new(sampler.as_mut(), skip),
                x,
                &cond,
                options,
                source.as_mut(),
                &mut hook,
                &mut |p| {
                    progress(StageProgress {
                        stage: i,
                        stages,
                        step: p.step,
                        total: p.total,
                    })
                },
            )
            .map_err(|source| PipelineError::Sampling {
                stage: stage.name.clone(),
                source,
            })?;
            outputs.push(out);
        }
        Ok(StageOutputs { outputs, truncated })
    }
}
