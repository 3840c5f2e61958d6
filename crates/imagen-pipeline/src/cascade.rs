//! The cascade: one text encoder, a base stage and super-resolution stages,
//! run in sequence on one request.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use image::RgbImage;
use imagen_diffusion::{
    DiscreteSchedule, GuidanceBatch, NoiseSource, SampleOptions, Scheduler, SeededNoise,
    TailScheduler, add_noise, img2img_timesteps, inpaint_hook, lowres_conditioning, sample_with,
};
use imagen_text::{TextEmbeddings, TextEncoder, Truncation, UnknownWords};
use imagen_unet::UNetCond;

use crate::error::invalid;
use crate::images::{image_to_tensor, mask_to_tensor, resize_to, tensor_to_images};
use crate::{
    ComponentReport, Edit, GenerateRequest, Loadable, PipelineError, PromptStyle, Stage,
    StageSettings, TextModel, TextStates,
};

/// Where the text encoder's files came from, so that [`Cascade::save`] can
/// copy them (the encoder is frozen and never rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSource {
    /// Directory with `config.json` and `model.safetensors` (or shards).
    pub model_dir: PathBuf,
    /// The `tokenizer.json`, or a tokenizer directory (`tokenizer.json` or
    /// `spiece.model` with its configs).
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
    /// The frozen text encoder (tokenizer + T5), resident or loaded for
    /// each call ([`crate::Residency`]).
    pub text: TextModel<B>,
    /// Base stage first, then super-resolution stages.
    pub stages: Vec<Stage<B>>,
    /// Prompt normalisation before tokenization.
    pub prompt_style: PromptStyle,
    /// Pass the text padding mask to the U-Nets (DeepFloyd IF does not: its
    /// U-Nets attend to the padded positions too).
    pub text_mask: bool,
    /// The text encoder's files, for [`Cascade::save`].
    pub text_source: Option<TextSource>,
    /// What each component was read from (variant, dtype, residency), for
    /// the caller to report; empty for a cascade assembled in code.
    pub reports: Vec<ComponentReport>,
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
    /// Prompts with words the tokenizer maps to `<unk>` (index into the prompts).
    pub unknown: Vec<UnknownWords>,
    /// Where the time went.
    pub timings: Timings,
}

/// Every stage's output of [`Cascade::run`], in `[-1, 1]`.
#[derive(Debug, Clone)]
pub struct StageOutputs<B: Backend> {
    /// `[images, 3, height, width]` per stage run.
    pub outputs: Vec<Tensor<B, 4>>,
    /// Prompts cut to the encoder's maximum length.
    pub truncated: Vec<Truncation>,
    /// Prompts with words the tokenizer maps to `<unk>`.
    pub unknown: Vec<UnknownWords>,
    /// Where the time went.
    pub timings: Timings,
}

/// Wall-clock time of one call, by step: loading (zero for resident models)
/// and running each component.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// Loading the text encoder (zero when resident or not run).
    pub text_load: Duration,
    /// Tokenizing and encoding prompts and negative prompts.
    pub text_encode: Duration,
    /// Per stage run.
    pub stages: Vec<StageTiming>,
}

/// Wall-clock time of one stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTiming {
    /// Loading the U-Net (zero when resident).
    pub load: Duration,
    /// The sampler loop.
    pub sampling: Duration,
    /// Steps run.
    pub steps: usize,
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
    /// The conditioning of one side of the U-Net batch: the prompts'
    /// states, or with `uncond` the negative prompts', with the mask when
    /// `with_mask`.
    fn side(&self, uncond: bool, with_mask: bool) -> UNetCond<B> {
        let (states, mask) = if uncond {
            (&self.uncond, &self.uncond_mask)
        } else {
            (&self.cond, &self.cond_mask)
        };
        UNetCond {
            text: states.clone(),
            text_mask: with_mask.then(|| mask.clone().equal_elem(1)),
            lowres: None,
            noise_level: None,
        }
    }
}

/// What one stage of a request runs with, worked out (and checked) before
/// anything is loaded or sampled.
struct StagePlan<B: Backend> {
    /// The stage's index in the cascade.
    stage: usize,
    settings: StageSettings,
    overrides: crate::StageOverrides,
    size: (usize, usize),
    /// The sampler, its timesteps set.
    sampler: Box<dyn Scheduler<B>>,
    /// Super-resolution stages: the noising schedule and the augmentation
    /// level (checked to lie inside it).
    augmentation: Option<(DiscreteSchedule, usize)>,
}

/// What the tokenizer reported about the prompts.
struct TextNotes {
    truncated: Vec<Truncation>,
    unknown: Vec<UnknownWords>,
}

/// Prompt-side text states and where they came from.
enum TextInput<'a> {
    Prompts(&'a [String]),
    States(&'a TextStates),
}

impl<B: Backend> Cascade<B> {
    /// Joins a text encoder and stages, checking that every stage reads text
    /// states as wide as the encoder writes and that super-resolution stages
    /// follow a stage. Everything stays resident.
    pub fn new(
        text: TextEncoder<B>,
        stages: Vec<Stage<B>>,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        Self::from_parts(Loadable::Resident(text), stages, Vec::new(), device)
    }

    /// Joins a text encoder and stages, each resident or on demand.
    pub fn from_parts(
        text: TextModel<B>,
        stages: Vec<Stage<B>>,
        reports: Vec<ComponentReport>,
        device: &B::Device,
    ) -> Result<Self, PipelineError> {
        let cascade = Self {
            text,
            stages,
            prompt_style: PromptStyle::AsIs,
            text_mask: true,
            text_source: None,
            reports,
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
        match &self.text {
            Loadable::Resident(t) => t.model().shared.weight.dims()[1],
            Loadable::OnDemand(files) => files.config.d_model,
        }
    }

    /// The text encoder's padded token length.
    pub fn max_length(&self) -> usize {
        match &self.text {
            Loadable::Resident(t) => t.max_length(),
            Loadable::OnDemand(files) => files.max_length,
        }
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

    /// Encodes prompts after the cascade's [`PromptStyle`] (loading the
    /// text encoder for this call if it is not resident). Wrap the result in
    /// [`TextStates::from_embeddings`] to reuse it across requests.
    pub fn encode(&self, prompts: &[String]) -> Result<TextEmbeddings<B>, PipelineError> {
        let (mut out, ..) = self.encode_lists(&[prompts])?;
        Ok(out.pop().expect("one list in, one out"))
    }

    /// Encodes several prompt lists with one use of the text encoder (one
    /// load when it is not resident), with the time spent loading and
    /// encoding.
    fn encode_lists(
        &self,
        lists: &[&[String]],
    ) -> Result<(Vec<TextEmbeddings<B>>, Duration, Duration), PipelineError> {
        let styled: Vec<Vec<String>> = lists
            .iter()
            .map(|l| l.iter().map(|p| self.prompt_style.apply(p)).collect())
            .collect();
        let ((encoded, encode), load) = self.text.with_timed(&self.device, |encoder| {
            let start = Instant::now();
            let encoded = styled
                .iter()
                .map(|l| {
                    let refs: Vec<&str> = l.iter().map(String::as_str).collect();
                    encoder.encode(&refs).map_err(PipelineError::from)
                })
                .collect::<Result<Vec<_>, _>>();
            (encoded, start.elapsed())
        })?;
        Ok((encoded?, load, encode))
    }

    /// Checks precomputed states against the stages' text width and for NaNs.
    fn check_states(&self, states: &TextStates, what: &str) -> Result<(), PipelineError> {
        if states.width() != self.text_dim() {
            return Err(invalid(format!(
                "{what} are {} wide, but the cascade's stages read text states {} wide",
                states.width(),
                self.text_dim()
            )));
        }
        states.check_finite(what)
    }

    /// Text states of every image: each prompt's row repeated
    /// `images_per_prompt` times; the negative prompts likewise. The text
    /// encoder runs (once, for prompts and negatives together) only for
    /// what the request does not bring precomputed.
    fn text_conditioning(
        &self,
        req: &GenerateRequest,
        guided: bool,
    ) -> Result<(TextBatch<B>, TextNotes, Timings), PipelineError> {
        let n = req.prompt_count();
        let per = req.images_per_prompt;
        let cond_input = match &req.prompt_embeds {
            Some(states) => {
                self.check_states(states, "prompt_embeds")?;
                TextInput::States(states)
            }
            None => TextInput::Prompts(&req.prompts),
        };
        let negatives = match req.negative_prompts.len() {
            0 => vec![String::new()],
            _ => req.negative_prompts.clone(),
        };
        let uncond_input = match &req.negative_prompt_embeds {
            Some(states) => {
                self.check_states(states, "negative_prompt_embeds")?;
                Some(TextInput::States(states))
            }
            // Unguided stages never read the negative side.
            None if !guided => None,
            None => Some(TextInput::Prompts(&negatives)),
        };
        let uncond_rows = match &uncond_input {
            Some(TextInput::States(s)) => s.len(),
            Some(TextInput::Prompts(p)) => p.len(),
            None => 1,
        };
        if uncond_rows != 1 && uncond_rows != n {
            return Err(invalid(format!(
                "{uncond_rows} negative prompts for {n} prompts: give none, one, or one per prompt"
            )));
        }

        // One use of the text encoder for whatever must be encoded.
        let mut lists: Vec<&[String]> = Vec::new();
        for input in [Some(&cond_input), uncond_input.as_ref()]
            .into_iter()
            .flatten()
        {
            if let TextInput::Prompts(p) = input {
                lists.push(p);
            }
        }
        let mut timings = Timings::default();
        let mut encoded = if lists.is_empty() {
            Vec::new()
        } else {
            let (encoded, load, encode) = self.encode_lists(&lists)?;
            timings.text_load = load;
            timings.text_encode = encode;
            encoded
        }
        .into_iter();
        let mut truncated = Vec::new();
        let mut unknown = Vec::new();
        let mut resolve = |input: &TextInput, keep_truncated: bool| match input {
            TextInput::States(s) => {
                let (states, mask) = s.to_tensors::<B>(&self.device);
                (states, mask.int())
            }
            TextInput::Prompts(_) => {
                let e = encoded.next().expect("encoded above, in order");
                if keep_truncated {
                    truncated = e.truncated;
                    unknown = e.unknown;
                }
                (e.embeddings, e.mask.int())
            }
        };
        let (cond, cond_mask) = resolve(&cond_input, true);
        let (uncond, uncond_mask) = match &uncond_input {
            Some(input) => resolve(input, false),
            // Never read: an unguided run takes the conditional rows alone.
            None => (
                cond.clone().narrow(0, 0, 1),
                cond_mask.clone().narrow(0, 0, 1),
            ),
        };

        let (pick_cond, pick_uncond) = (
            self.image_rows(n, n, per),
            self.image_rows(uncond_rows, n, per),
        );
        Ok((
            TextBatch {
                cond: cond.select(0, pick_cond.clone()),
                cond_mask: cond_mask.select(0, pick_cond),
                uncond: uncond.select(0, pick_uncond.clone()),
                uncond_mask: uncond_mask.select(0, pick_uncond),
            },
            TextNotes { truncated, unknown },
            timings,
        ))
    }

    /// The row of a `count`-row batch each of `n * per` images reads: the
    /// only row when `count` is 1, else its prompt's (`images_per_prompt` =
    /// `per` images per prompt, prompt-major).
    fn image_rows(&self, count: usize, n: usize, per: usize) -> Tensor<B, 1, Int> {
        let idx: Vec<i64> = (0..n * per)
            .map(|i| if count == 1 { 0 } else { (i / per) as i64 })
            .collect();
        Tensor::from_data(TensorData::new(idx, [n * per]), &self.device)
    }

    /// Checks a request and works out each stage's settings, size, sampler
    /// and augmentation, so that a bad request fails before anything is
    /// loaded or sampled.
    fn plan(&self, req: &GenerateRequest) -> Result<Vec<StagePlan<B>>, PipelineError> {
        let n = req.prompt_count();
        if n == 0 {
            return Err(invalid("no prompts"));
        }
        if req.prompt_embeds.is_some() && !req.prompts.is_empty() && req.prompts.len() != n {
            return Err(invalid(format!(
                "{} prompts for {n} rows of prompt_embeds: give none, or one per row",
                req.prompts.len()
            )));
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
        let first = self.check_start(req, last)?;
        let mut plans: Vec<StagePlan<B>> = Vec::with_capacity(last + 1 - first);
        for (i, stage) in self.stages.iter().enumerate().take(last + 1).skip(first) {
            let overrides = req.overrides(i);
            let settings = stage.defaults.with(&overrides);
            let previous = match (i.checked_sub(1), &req.start_from) {
                (None, _) => None,
                (Some(p), Some(start)) if i == start.stage => {
                    let [_, _, h, w] = start.dims();
                    Some((&self.stages[p], (h, w)))
                }
                (Some(p), _) => Some((&self.stages[p], plans[p - first].size)),
            };
            let size = stage.size(previous, req.size)?;
            let sampler = stage.sampler(
                &settings,
                overrides.thresholding,
                overrides.timesteps.as_deref(),
            )?;
            let augmentation = if stage.is_super_resolution() {
                let level = settings.noise_level.unwrap_or(0);
                let schedule = stage.noising_schedule()?;
                if level >= schedule.len() {
                    return Err(invalid(format!(
                        "stage `{}`: noise level {level} is outside the noising schedule (0..{})",
                        stage.name,
                        schedule.len()
                    )));
                }
                Some((schedule, level))
            } else {
                None
            };
            plans.push(StagePlan {
                stage: i,
                settings,
                overrides,
                size,
                sampler,
                augmentation,
            });
        }
        Ok(plans)
    }

    /// The first stage to run: 0, or that of [`GenerateRequest::start_from`]
    /// after checking its image against the request.
    fn check_start(&self, req: &GenerateRequest, last: usize) -> Result<usize, PipelineError> {
        let Some(start) = &req.start_from else {
            return Ok(0);
        };
        let stage = self.stages.get(start.stage).ok_or_else(|| {
            invalid(format!(
                "start_from stage {}, but the cascade has {} stages",
                start.stage,
                self.stages.len()
            ))
        })?;
        if !stage.is_super_resolution() {
            return Err(invalid(format!(
                "start_from stage `{}`: only a super-resolution stage starts from an image",
                stage.name
            )));
        }
        if start.stage > last {
            return Err(invalid(format!(
                "start_from stage {} comes after stop_after = {last}",
                start.stage
            )));
        }
        if req.edit.is_some() {
            return Err(invalid(
                "an edit applies to the base stage, which start_from skips",
            ));
        }
        let [rows, channels, ..] = start.dims();
        if channels != 3 || rows != req.prompt_count() {
            return Err(invalid(format!(
                "start_from image is {:?}: expected [{}, 3, height, width] (one image per prompt)",
                start.dims(),
                req.prompt_count()
            )));
        }
        Ok(start.stage)
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
            unknown: out.unknown,
            timings: out.timings,
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
    ///
    /// The steps: plan (check the request, sizes and samplers), text
    /// conditioning (the text encoder, then freed if not resident), then per
    /// stage its conditioning (super-resolution: the previous output
    /// resized and noise-augmented), the edit plan (base stage), and
    /// sampling with the stage's U-Net (loaded for the stage if not resident).
    pub fn run_with_noise(
        &self,
        req: &GenerateRequest,
        noise: &mut dyn FnMut(usize, u64) -> Box<dyn NoiseSource<B>>,
        progress: &mut dyn FnMut(StageProgress),
    ) -> Result<StageOutputs<B>, PipelineError> {
        let mut plans = self.plan(req)?;
        let guided = plans.iter().any(|p| p.settings.guided());
        let (text, notes, mut timings) = self.text_conditioning(req, guided)?;
        let (n, per) = (req.prompt_count(), req.images_per_prompt);
        let images = n * per;
        // Stages `0..stages` are this run's (those before a `start_from`
        // stage are skipped, not run).
        let stages = plans.last().map_or(0, |p| p.stage + 1);
        let mut outputs: Vec<Tensor<B, 4>> = Vec::with_capacity(plans.len());
        // A run that starts from an image reads it as the previous output,
        // each prompt's image repeated `images_per_prompt` times.
        let mut given = req.start_from.as_ref().map(|start| {
            let image: Tensor<B, 4> = Tensor::from_data(
                start
                    .image
                    .clone()
                    .convert_dtype(<B::FloatElem as burn::tensor::Element>::dtype()),
                &self.device,
            );
            image.select(0, self.image_rows(n, n, per))
        });
        for plan in &mut plans {
            let i = plan.stage;
            let stage = &self.stages[i];
            let seed = plan
                .overrides
                .seed
                .unwrap_or(req.seed.wrapping_add(i as u64));
            let mut source = noise(i, seed);
            let (h, w) = plan.size;
            let x_t = source.gaussian([images, 3, h, w], &self.device);
            let mut cond = text.side(false, self.text_mask);
            if stage.is_super_resolution() {
                let previous = outputs.last().or(given.as_ref()).ok_or_else(|| {
                    invalid(format!("stage `{}` needs a previous stage", stage.name))
                })?;
                let (schedule, level) = plan
                    .augmentation
                    .as_ref()
                    .expect("planned for every super-resolution stage");
                // The augmentation noise is the stage's second draw.
                let aug = source.gaussian([images, 3, h, w], &self.device);
                let lowres = lowres_conditioning(
                    schedule,
                    previous.clone(),
                    (h, w),
                    aug,
                    &vec![*level; images],
                );
                cond.lowres = Some(lowres.image);
                cond.noise_level = Some(lowres.noise_level);
            }
            if plan.settings.guided() {
                // The unconditional side reads the negative prompts and the
                // same low-resolution input.
                let uncond = UNetCond {
                    lowres: cond.lowres.clone(),
                    noise_level: cond.noise_level.clone(),
                    ..text.side(true, self.text_mask)
                };
                cond = UNetCond::guidance_pair(uncond, cond);
            }
            let (out, timing) =
                self.sample_stage(i, stages, plan, req, x_t, &cond, source.as_mut(), progress)?;
            outputs.push(out);
            timings.stages.push(timing);
            given = None;
        }
        Ok(StageOutputs {
            outputs,
            truncated: notes.truncated,
            unknown: notes.unknown,
            timings,
        })
    }

    /// Samples one stage: the edit plan (base stage: start part-way from the
    /// noised image, maybe re-impose it), then the sampler loop over the
    /// stage's U-Net, loaded for the stage when it is not resident.
    #[allow(clippy::too_many_arguments)]
    fn sample_stage(
        &self,
        i: usize,
        stages: usize,
        plan: &mut StagePlan<B>,
        req: &GenerateRequest,
        x_t: Tensor<B, 4>,
        cond: &UNetCond<B>,
        source: &mut dyn NoiseSource<B>,
        progress: &mut dyn FnMut(StageProgress),
    ) -> Result<(Tensor<B, 4>, StageTiming), PipelineError> {
        let stage = &self.stages[i];
        let images = x_t.dims()[0];
        let (h, w) = plan.size;
        let sampler = &mut plan.sampler;
        let schedule = stage.scheduler.schedule()?;
        let mut skip = 0;
        let mut x = x_t;
        let mut known = None;
        if let (0, Some(edit)) = (i, &req.edit) {
            let (image, strength, mask) = match edit {
                Edit::Img2Img { image, strength } => (image, *strength, None),
                Edit::Inpaint {
                    image,
                    mask,
                    strength,
                } => (image, *strength, Some(mask)),
            };
            let image =
                resize_to(image_to_tensor::<B>(image, &self.device), h, w).repeat_dim(0, images);
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
            known = mask.map(|m| (image, resize_to(mask_to_tensor::<B>(m, &self.device), h, w)));
        }

        let mut reimpose = known.map(|(image, mask)| inpaint_hook(&schedule, image, mask));
        let mut hook =
            |next: Option<usize>, x: Tensor<B, 4>, n: &mut dyn NoiseSource<B>| match reimpose
                .as_mut()
            {
                Some(h) => h(next, x, n),
                None => x,
            };
        let options = SampleOptions {
            guidance_scale: plan
                .settings
                .guided()
                .then_some(plan.settings.guidance_scale),
            guidance_interval: plan.settings.guidance_interval,
            high_noise_guidance: plan.settings.high_noise_guidance,
            check_finite: true,
        };
        let mut steps = 0;
        let ((out, sampling), load) = stage.unet.with_timed(&self.device, |unet| {
            let start = Instant::now();
            let out = sample_with(
                unet,
                &mut TailScheduler::new(sampler.as_mut(), skip),
                x,
                cond,
                options,
                source,
                &mut hook,
                &mut |p| {
                    steps = p.step;
                    progress(StageProgress {
                        stage: i,
                        stages,
                        step: p.step,
                        total: p.total,
                    })
                },
            );
            (out, start.elapsed())
        })?;
        let out = out.map_err(|source| PipelineError::Sampling {
            stage: stage.name.clone(),
            source,
        })?;
        Ok((
            out,
            StageTiming {
                load,
                sampling,
                steps,
            },
        ))
    }
}
