//! The training loss of one micro-batch for any stage: random timesteps and
//! noise, classifier-free-guidance text dropout, and for super-resolution
//! stages the downsampled target, upsampled and noise-augmented by
//! [`imagen_diffusion::lowres_conditioning`] as the cascade does.

use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imagen_diffusion::{
    DiscreteSchedule, LossWeighting, NoiseLevels, lowres_conditioning, vlb_per_sample,
};
use imagen_unet::UNet;
use rand::RngExt;
use rand::rngs::StdRng;

use crate::{StageKind, TrainConfig};

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

/// The noise an example is diffused with: standard Gaussian, plus `offset`
/// times one Gaussian draw per example and channel ("offset noise"). With
/// `offset` 0 it draws exactly what [`gaussian`] does, so runs without it
/// reproduce.
fn training_noise<B: Backend>(
    rng: &mut StdRng,
    shape: [usize; 4],
    offset: f64,
    device: &B::Device,
) -> Tensor<B, 4> {
    let noise = gaussian::<B>(rng, shape, device);
    if offset == 0.0 {
        return noise;
    }
    let [b, c, _, _] = shape;
    noise + (gaussian::<B>(rng, [b, c, 1, 1], device) * offset).expand(shape)
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

/// What a super-resolution stage is trained to upscale: the target
/// downsampled to `lowres x lowres` (bilinear, half-pixel centres), standing
/// in for the previous stage's output. [`lowres_conditioning`] then
/// upsamples and noises it as the cascade does.
pub fn downsample<B: Backend>(images: Tensor<B, 4>, lowres: usize) -> Tensor<B, 4> {
    interpolate(
        images,
        [lowres, lowres],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false),
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
        .map(|_| config.timestep_sampling.draw(rng, schedule.len()))
        .collect();
    let noise = training_noise::<B>(rng, [b, c, h, w], config.noise_offset, &device);
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
            let small = downsample(batch.images.clone(), lowres);
            let cond = lowres_conditioning(schedule, small, (h, w), aug_noise, &aug_steps);
            (Some(cond.image), Some(cond.noise_level))
        }
    };
    let t: Vec<f32> = steps.iter().map(|&t| t as f32).collect();
    let pred = unet.denoise(
        x_t.clone(),
        &t,
        text,
        config.text_mask.then(|| mask.equal_elem(1)),
        lowres,
        aug.as_deref(),
    );
    // Learned-variance networks (6 channels): the mean part takes the simple
    // loss, the variance part the variational bound (Improved DDPM's hybrid).
    let (pred, variance) = if pred.dims()[1] == 2 * c {
        (pred.clone().narrow(1, 0, c), Some(pred.narrow(1, c, c)))
    } else {
        (pred, None)
    };
    let objective = config.objective;
    let weighting = match config.min_snr_gamma {
        Some(gamma) => LossWeighting::MinSnr { gamma },
        None => LossWeighting::None,
    };
    let mut per_sample = levels.loss_per_sample(
        objective,
        weighting,
        pred.clone(),
        batch.images.clone(),
        noise,
    );
    if let Some(variance) = variance {
        // The mean is frozen in this term, as in improved-diffusion.
        let x0_pred = levels.x0(objective, pred.detach(), x_t.clone());
        let vb = vlb_per_sample(
            schedule,
            &steps,
            batch.images.clone(),
            x_t,
            x0_pred,
            variance,
        );
        // One timestep's term stands for the sum over all of them.
        per_sample = per_sample + vb * (config.vlb_weight * schedule.len() as f64);
    }
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

    /// Offset noise: the per-image, per-channel mean of 64 x 64 noise has a
    /// standard deviation of 1/64 without it and about `offset` with it;
    /// offset 0 draws what plain noise does.
    #[test]
    fn offset_noise_moves_each_channels_mean() {
        type B = burn_flex::Flex;
        let device = Default::default();
        let shape = [64, 3, 64, 64];
        let mean_std = |offset: f64| -> f64 {
            let noise = training_noise::<B>(&mut StdRng::seed_from_u64(2), shape, offset, &device);
            let means: Vec<f32> = noise.mean_dim(3).mean_dim(2).into_data().to_vec().unwrap();
            let n = means.len() as f64;
            (means.iter().map(|&m| f64::from(m).powi(2)).sum::<f64>() / n).sqrt()
        };
        let plain = mean_std(0.0);
        let offset = mean_std(0.1);
        assert!((plain - 1.0 / 64.0).abs() < 0.004, "{plain}");
        assert!(
            (offset - (0.01f64 + 1.0 / 4096.0).sqrt()).abs() < 0.02,
            "{offset}"
        );
        let a: Vec<f32> =
            training_noise::<B>(&mut StdRng::seed_from_u64(5), [1, 3, 4, 4], 0.0, &device)
                .into_data()
                .to_vec()
                .unwrap();
        let b: Vec<f32> = gaussian::<B>(&mut StdRng::seed_from_u64(5), [1, 3, 4, 4], &device)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(a, b);
    }

    /// A learned-variance U-Net (6 output channels): the variational bound
    /// adds to the loss and is the only thing that trains the variance half
    /// of `conv_out`; the mean half's gradient is the same with or without it.
    #[test]
    fn hybrid_loss_trains_only_the_variance_through_the_vlb() {
        use burn::backend::Autodiff;
        use burn::tensor::Distribution;
        type B = Autodiff<burn_flex::Flex>;
        let device = Default::default();
        let mut unet_config = imagen_unet::UNetConfig::tiny_base(16);
        unet_config.out_channels = 6;
        <B as Backend>::seed(&device, 1);
        let unet = unet_config.init::<B>(&device).unwrap();
        let batch = TrainBatch {
            images: Tensor::<B, 4>::random(
                [2, 3, 16, 16],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            ),
            text: Tensor::random([2, 6, 16], Distribution::Normal(0.0, 1.0), &device),
            text_mask: Tensor::<B, 2, burn::tensor::Int>::ones([2, 6], &device),
        };
        let null = NullText {
            text: Tensor::zeros([1, 6, 16], &device),
            mask: Tensor::zeros([1, 6], &device),
        };
        let with = TrainConfig::new(StageKind::Base, 16);
        let mut without = with.clone();
        without.vlb_weight = 0.0;
        let schedule = with.noise_schedule.schedule().unwrap();
        let run = |config: &TrainConfig| {
            let out = stage_loss(
                &unet,
                &batch,
                &null,
                &schedule,
                config,
                &mut StdRng::seed_from_u64(4),
            );
            let loss: f32 = out.loss.clone().into_scalar();
            let grads = out.loss.backward();
            let g = unet.conv_out.weight.grad(&grads).unwrap(); // [out, in, k, k]
            let half = |i: usize| -> Vec<f32> {
                g.clone().narrow(0, 3 * i, 3).into_data().to_vec().unwrap()
            };
            (loss, half(0), half(1))
        };
        let (l1, mean1, var1) = run(&with);
        let (l0, mean0, var0) = run(&without);
        assert!(l1 > l0, "the bound adds to the loss: {l1} vs {l0}");
        assert_eq!(mean1, mean0, "the mean gets no gradient from the bound");
        assert!(
            var0.iter().all(|&v| v == 0.0),
            "no bound, no variance gradient"
        );
        assert!(
            var1.iter().any(|&v| v != 0.0),
            "the bound trains the variance"
        );
    }
}
