//! The training loss of one micro-batch for any stage: random timesteps and
//! noise, classifier-free-guidance text dropout, and for super-resolution
//! stages the degraded, noise-augmented low-resolution input.

use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imagen_diffusion::{DiscreteSchedule, LossWeighting, NoiseLevels, Objective, add_noise};
use imagen_unet::UNet;
use rand::RngExt;
use rand::rngs::StdRng;

use crate::{StageKind, TrainConfig, TrainObjective};

/// One micro-batch: images and their (cached) text embeddings.
#[derive(Debug, Clone)]
pub struct TrainBatch<B: Backend> {
    /// `[b, 3, R, R]` in `[-1, 1]`.
    pub images: Tensor<B, 4>,
    /// `[b, L, D]` T5 states.
    pub text: Tensor<B, 3>,
    /// `[b, L]`, 1 for real tokens.
    pub text_mask: Tensor<B, 2, Int>,
}

/// The empty caption's embedding, `[1, L, D]` and `[1, L]`, that dropped
/// texts are replaced with.
#[derive(Debug, Clone)]
pub struct NullText<B: Backend> {
    /// States.
    pub text: Tensor<B, 3>,
    /// Mask.
    pub mask: Tensor<B, 2, Int>,
}

/// Which examples of a batch lose their text (probability `p` each).
pub fn drop_mask(rng: &mut StdRng, batch: usize, p: f64) -> Vec<bool> {
    (0..batch).map(|_| rng.random::<f64>() < p).collect()
}

fn gaussian<B: Backend>(rng: &mut StdRng, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
    Tensor::from_data(
        TensorData::random::<f32, _, _>(shape, Distribution::Normal(0.0, 1.0), rng),
        device,
    )
}

/// Replaces rows of `batch`'s text where `drop` is set by `null`.
fn apply_dropout<B: Backend>(
    batch: &TrainBatch<B>,
    null: &NullText<B>,
    drop: &[bool],
) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
    let device = batch.text.device();
    let [b, l, d] = batch.text.dims();
    let keep: Vec<f32> = drop.iter().map(|&x| if x { 0.0 } else { 1.0 }).collect();
    let keep = Tensor::<B, 1>::from_data(TensorData::new(keep, [b]), &device);
    let keep3 = keep.clone().reshape([b, 1, 1]);
    let text = batch.text.clone() * keep3.clone()
        + null.text.clone().expand([b, l, d]) * (keep3.neg() + 1.0);
    let keep_i: Vec<i64> = drop.iter().map(|&x| i64::from(!x)).collect();
    let keep_i =
        Tensor::<B, 1, Int>::from_data(TensorData::new(keep_i, [b]), &device).reshape([b, 1]);
    let mask = batch.text_mask.clone() * keep_i.clone()
        + null.mask.clone().expand([b, l]) * (keep_i.neg() + 1);
    (text, mask)
}

/// The low-resolution input of a super-resolution stage: the target
/// downsampled to `lowres` (bilinear, half-pixel centres) and upsampled back
/// as the pipeline does (bilinear, `align_corners = true`).
pub fn degrade<B: Backend>(images: Tensor<B, 4>, lowres: usize) -> Tensor<B, 4> {
    let [_, _, h, w] = images.dims();
    let small = interpolate(
        images,
        [lowres, lowres],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false),
    );
    interpolate(
        small,
        [h, w],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(true),
    )
}

/// A micro-batch's loss, and what monitoring needs of it.
#[derive(Debug, Clone)]
pub struct StageLoss<B: Backend> {
    /// The mean weighted loss (differentiate this).
    pub loss: Tensor<B, 1>,
    /// Each example's weighted loss, `[batch]`, detached.
    pub per_sample: Tensor<B, 1>,
    /// Each example's log-SNR at its sampled timestep.
    pub log_snr: Vec<f64>,
}

/// The weighted diffusion loss of `unet` on `batch`, drawing timesteps,
/// noise, dropout and augmentation levels from `rng`.
pub fn stage_loss<B: Backend>(
    unet: &UNet<B>,
    batch: &TrainBatch<B>,
    null: &NullText<B>,
    schedule: &DiscreteSchedule,
    config: &TrainConfig,
    rng: &mut StdRng,
) -> StageLoss<B> {
    let device = batch.images.device();
    let [b, c, h, w] = batch.images.dims();
    let steps: Vec<usize> = (0..b)
        .map(|_| rng.random_range(0..schedule.len()))
        .collect();
    let noise = gaussian::<B>(rng, [b, c, h, w], &device);
    let drop = drop_mask(rng, b, config.cond_drop_prob);
    let (text, mask) = apply_dropout(batch, null, &drop);

    let column = |f: &dyn Fn(f32) -> f32| {
        let v: Vec<f32> = steps
            .iter()
            .map(|&t| f(schedule.alphas_cumprod[t]))
            .collect();
        Tensor::<B, 1>::from_data(TensorData::new(v, [b]), &device)
    };
    let levels = NoiseLevels {
        alpha: column(&|a| a.sqrt()),
        sigma: column(&|a| (1.0 - a).sqrt()),
    };
    let x_t = levels.q_sample(batch.images.clone(), noise.clone());

    let (lowres, aug) = match config.stage {
        StageKind::Base => (None, None),
        StageKind::SuperResolution {
            lowres,
            max_noise_level,
        } => {
            let aug_steps: Vec<usize> = (0..b)
                .map(|_| rng.random_range(0..=max_noise_level))
                .collect();
            let aug_noise = gaussian::<B>(rng, [b, c, h, w], &device);
            let up = degrade(batch.images.clone(), lowres);
            let noised = add_noise(schedule, up, aug_noise, &aug_steps);
            let labels: Vec<f32> = aug_steps.iter().map(|&s| s as f32).collect();
            (Some(noised), Some(labels))
        }
    };
    let t: Vec<f32> = steps.iter().map(|&t| t as f32).collect();
    let pred = unet.denoise(
        x_t,
        &t,
        text,
        config.text_mask.then(|| mask.equal_elem(1)),
        lowres,
        aug.as_deref(),
    );
    // Learned-variance networks (6 channels): the mean part is trained here;
    // the variance channels get no loss (the hybrid VLB term is not implemented).
    let pred = if pred.dims()[1] == 2 * c {
        pred.narrow(1, 0, c)
    } else {
        pred
    };
    let objective = match config.objective {
        TrainObjective::Eps => Objective::Eps,
        TrainObjective::V => Objective::V,
    };
    let weighting = match config.min_snr_gamma {
        Some(gamma) => LossWeighting::MinSnr { gamma },
        None => LossWeighting::None,
    };
    let per_sample =
        levels.loss_per_sample(objective, weighting, pred, batch.images.clone(), noise);
    let log_snr = steps
        .iter()
        .map(|&t| {
            let a = f64::from(schedule.alphas_cumprod[t]);
            (a / (1.0 - a)).ln()
        })
        .collect();
    StageLoss {
        loss: per_sample.clone().mean(),
        per_sample: per_sample.detach(),
        log_snr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dropout_rate_is_p_over_10k_draws() {
        let mut rng = StdRng::seed_from_u64(3);
        let drops = drop_mask(&mut rng, 10_000, 0.1);
        let rate = drops.iter().filter(|&&d| d).count() as f64 / 10_000.0;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
    }
}
