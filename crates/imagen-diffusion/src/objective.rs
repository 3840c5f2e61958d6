//! Training objectives: the forward process `q_sample`, conversions between
//! eps, x0 and v predictions, and the weighted MSE losses of Imagen /
//! imagen-pytorch (min-SNR-gamma, P2).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::PredictionType;

/// Per-sample weighting of the MSE, as functions of SNR = alpha^2 / sigma^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossWeighting {
    /// Plain MSE on the objective.
    None,
    /// Min-SNR-gamma (Hang et al. 2023): the x0-space weight `min(snr, gamma)`,
    /// expressed for the objective (`/ snr` for eps, `/ (snr + 1)` for v).
    MinSnr {
        /// The clamp, usually 5.
        gamma: f64,
    },
    /// P2 (Choi et al. 2022): `(k + snr)^-gamma`.
    P2 {
        /// Exponent, e.g. 1.
        gamma: f64,
        /// Offset, usually 1.
        k: f64,
    },
}

/// Per-sample noise levels, `[batch]` each, as tensors so that a training
/// batch can mix timesteps.
#[derive(Debug, Clone)]
pub struct NoiseLevels<B: Backend> {
    /// Signal scale `alpha_t`.
    pub alpha: Tensor<B, 1>,
    /// Noise scale `sigma_t`.
    pub sigma: Tensor<B, 1>,
}

impl<B: Backend> NoiseLevels<B> {
    fn a(&self) -> Tensor<B, 4> {
        self.alpha.clone().unsqueeze_dims(&[1, 2, 3])
    }

    fn s(&self) -> Tensor<B, 4> {
        self.sigma.clone().unsqueeze_dims(&[1, 2, 3])
    }

    /// `alpha^2 / sigma^2`, `[batch]`.
    pub fn snr(&self) -> Tensor<B, 1> {
        self.alpha.clone().powi_scalar(2) / self.sigma.clone().powi_scalar(2)
    }

    /// The forward process `x_t = alpha x0 + sigma eps`.
    pub fn q_sample(&self, x0: Tensor<B, 4>, noise: Tensor<B, 4>) -> Tensor<B, 4> {
        x0 * self.a() + noise * self.s()
    }

    /// What a network trained for `objective` should output.
    pub fn target(
        &self,
        objective: PredictionType,
        x0: Tensor<B, 4>,
        noise: Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        match objective {
            PredictionType::Epsilon => noise,
            PredictionType::Sample => x0,
            PredictionType::VPrediction => noise * self.a() - x0 * self.s(),
        }
    }

    /// The clean sample implied by a prediction.
    pub fn x0(
        &self,
        objective: PredictionType,
        pred: Tensor<B, 4>,
        x_t: Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        match objective {
            PredictionType::Epsilon => (x_t - pred * self.s()) / self.a(),
            PredictionType::Sample => pred,
            PredictionType::VPrediction => x_t * self.a() - pred * self.s(),
        }
    }

    /// The noise implied by a prediction.
    pub fn eps(
        &self,
        objective: PredictionType,
        pred: Tensor<B, 4>,
        x_t: Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        match objective {
            PredictionType::Epsilon => pred,
            PredictionType::Sample => (x_t - pred * self.a()) / self.s(),
            PredictionType::VPrediction => pred * self.a() + x_t * self.s(),
        }
    }

    /// Weighted MSE between `pred` and the objective's target, averaged over
    /// pixels, then over the batch.
    pub fn loss(
        &self,
        objective: PredictionType,
        weighting: LossWeighting,
        pred: Tensor<B, 4>,
        x0: Tensor<B, 4>,
        noise: Tensor<B, 4>,
    ) -> Tensor<B, 1> {
        self.loss_per_sample(objective, weighting, pred, x0, noise)
            .mean()
    }

    /// The weighted MSE of each sample, `[batch]` (for loss-by-noise-level
    /// monitoring; [`NoiseLevels::loss`] is its mean).
    pub fn loss_per_sample(
        &self,
        objective: PredictionType,
        weighting: LossWeighting,
        pred: Tensor<B, 4>,
        x0: Tensor<B, 4>,
        noise: Tensor<B, 4>,
    ) -> Tensor<B, 1> {
        let [b, c, h, w] = pred.dims();
        let target = self.target(objective, x0, noise);
        let per_sample = (pred - target)
            .powi_scalar(2)
            .reshape([b, c * h * w])
            .mean_dim(1)
            .reshape([b]);
        let weight = match weighting {
            LossWeighting::None => return per_sample,
            LossWeighting::MinSnr { gamma } => {
                let snr = self.snr();
                let clamped = snr.clone().clamp_max(gamma);
                match objective {
                    PredictionType::Epsilon => clamped / snr,
                    PredictionType::Sample => clamped,
                    PredictionType::VPrediction => clamped / (snr + 1.0),
                }
            }
            LossWeighting::P2 { gamma, k } => (self.snr() + k).powf_scalar(-gamma),
        };
        per_sample * weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};
    use burn_flex::Flex;

    fn levels() -> NoiseLevels<Flex> {
        let d = Default::default();
        let a = [0.9f32, 0.3];
        let s: Vec<f32> = a.iter().map(|a| (1.0 - a * a).sqrt()).collect();
        NoiseLevels {
            alpha: Tensor::from_data(TensorData::new(a.to_vec(), [2]), &d),
            sigma: Tensor::from_data(TensorData::new(s, [2]), &d),
        }
    }

    #[test]
    fn conversions_round_trip_for_every_objective() {
        let d = Default::default();
        let x0 = Tensor::<Flex, 4>::random([2, 3, 4, 4], Distribution::Default, &d);
        let eps = Tensor::<Flex, 4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &d);
        let l = levels();
        let x_t = l.q_sample(x0.clone(), eps.clone());
        for obj in [
            PredictionType::Epsilon,
            PredictionType::Sample,
            PredictionType::VPrediction,
        ] {
            let target = l.target(obj, x0.clone(), eps.clone());
            let e1: f32 = (l.x0(obj, target.clone(), x_t.clone()) - x0.clone())
                .abs()
                .max()
                .into_scalar();
            let e2: f32 = (l.eps(obj, target.clone(), x_t.clone()) - eps.clone())
                .abs()
                .max()
                .into_scalar();
            assert!(e1 < 1e-5 && e2 < 1e-5, "{obj:?}: {e1} {e2}");
            let loss: f32 = l
                .loss(
                    obj,
                    LossWeighting::MinSnr { gamma: 5.0 },
                    target,
                    x0.clone(),
                    eps.clone(),
                )
                .into_scalar();
            assert_eq!(loss, 0.0);
        }
    }

    #[test]
    fn min_snr_weights() {
        // snr(0.9) = 0.81 / 0.19 = 4.263 < 5; snr(0.3) = 0.0989.
        let l = levels();
        let d = Default::default();
        let zero = Tensor::<Flex, 4>::zeros([2, 1, 1, 1], &d);
        let one = Tensor::<Flex, 4>::ones([2, 1, 1, 1], &d);
        // x0 objective, unit error: weights min(snr, 1) with gamma 1 -> (1 + 0.0989) / 2.
        let loss: f32 = l
            .loss(
                PredictionType::Sample,
                LossWeighting::MinSnr { gamma: 1.0 },
                one,
                zero.clone(),
                zero,
            )
            .into_scalar();
        let snr2 = 0.09f32 / 0.91;
        assert!((loss - (1.0 + snr2) / 2.0).abs() < 1e-5, "{loss}");
    }
}
