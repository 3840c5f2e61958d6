//! Classifier-free guidance (Ho & Salimans 2022) on one batched forward
//! pass: the batch `[unconditional; conditional]` is built by
//! [`GuidanceBatch`] (for the sample and every conditioning input alike),
//! cut back to its conditional half by [`GuidanceBatch::conditional_rows`],
//! and its output combined by [`classifier_free_guidance`].

use burn::tensor::backend::Backend;
use burn::tensor::{BasicOps, Tensor};
use serde::{Deserialize, Serialize};

/// Something with one row per sample that joins classifier-free guidance's
/// one batched forward pass as `[unconditional; conditional]`: the noisy
/// sample, text states and masks, a super-resolution stage's low-resolution
/// image and noise levels, or a network's whole conditioning (the U-Net's
/// `UNetCond`). Every guided batch is built and cut here, so the order of
/// the halves is decided once.
pub trait GuidanceBatch: Sized {
    /// `[uncond; cond]`: the unconditional rows first, then the conditional.
    fn guidance_pair(uncond: Self, cond: Self) -> Self;

    /// The last `batch` rows: the conditional half of a guided batch, or
    /// the whole of one that is not doubled (`batch` rows already).
    fn conditional_rows(self, batch: usize) -> Self;

    /// `[self; self]`: a guided batch whose halves are the same (the sample,
    /// a low-resolution image both branches read).
    fn doubled(self) -> Self
    where
        Self: Clone,
    {
        Self::guidance_pair(self.clone(), self)
    }
}

impl<B: Backend, const D: usize, K: BasicOps<B>> GuidanceBatch for Tensor<B, D, K> {
    fn guidance_pair(uncond: Self, cond: Self) -> Self {
        Tensor::cat(vec![uncond, cond], 0)
    }

    fn conditional_rows(self, batch: usize) -> Self {
        let rows = self.dims()[0];
        self.narrow(0, rows.saturating_sub(batch), batch)
    }
}

impl<T> GuidanceBatch for Vec<T> {
    fn guidance_pair(mut uncond: Self, cond: Self) -> Self {
        uncond.extend(cond);
        uncond
    }

    fn conditional_rows(mut self, batch: usize) -> Self {
        self.drain(..self.len().saturating_sub(batch));
        self
    }
}

/// An optional input is in both halves or in neither.
impl<T: GuidanceBatch> GuidanceBatch for Option<T> {
    fn guidance_pair(uncond: Self, cond: Self) -> Self {
        debug_assert_eq!(
            uncond.is_some(),
            cond.is_some(),
            "both halves of a guided batch carry the same inputs"
        );
        uncond.zip(cond).map(|(u, c)| T::guidance_pair(u, c))
    }

    fn conditional_rows(self, batch: usize) -> Self {
        self.map(|x| x.conditional_rows(batch))
    }
}

/// A different guidance scale at the noisiest timesteps, where a sample's
/// layout (how many objects, where) is decided: `scale` at every timestep
/// from `from` up, the base scale below. On the demo cascade, scale 5 from
/// timestep 600 over the base 3 fixes object counts (docs/evaluation.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HighNoiseGuidance {
    /// The lowest timestep that takes `scale`.
    pub from: usize,
    /// The guidance scale there.
    pub scale: f64,
}

/// Combines a network output over a [`GuidanceBatch`]
/// `[unconditional; conditional]` into `u + scale * (c - u)`.
///
/// When the network also predicts a variance (`2 * channels` output channels,
/// as DeepFloyd IF), guidance applies to the first `channels` only and the
/// variance half is taken from the conditional branch, as IF does.
///
/// # Shapes
/// - `output`: `[2 * batch, channels or 2 * channels, H, W]`
/// - returns `[batch, same channels, H, W]`
pub fn classifier_free_guidance<B: Backend>(
    output: Tensor<B, 4>,
    scale: f64,
    channels: usize,
) -> Tensor<B, 4> {
    let [b2, c_out, _, _] = output.dims();
    debug_assert_eq!(b2 % 2, 0, "a guided batch has two halves");
    let batch = b2 / 2;
    let (uncond, cond) = (
        output.clone().narrow(0, 0, batch),
        output.conditional_rows(batch),
    );
    if c_out == channels {
        return uncond.clone() + (cond - uncond) * scale;
    }
    let uncond = uncond.narrow(1, 0, channels);
    let variance = cond.clone().narrow(1, channels, c_out - channels);
    let cond = cond.narrow(1, 0, channels);
    let guided = uncond.clone() + (cond - uncond) * scale;
    Tensor::cat(vec![guided, variance], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use burn_flex::Flex;

    fn t(v: Vec<f32>, shape: [usize; 4]) -> Tensor<Flex, 4> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    #[test]
    fn guides_eps_and_keeps_conditional_variance() {
        // batch 1, 1 eps channel + 1 variance channel, 1x1 pixels.
        let out = t(vec![1.0, 10.0, 3.0, 20.0], [2, 2, 1, 1]);
        let g: Vec<f32> = classifier_free_guidance(out, 7.0, 1)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(g, vec![1.0 + 7.0 * 2.0, 20.0]);
    }

    #[test]
    fn guided_batches_put_the_unconditional_half_first() {
        let u = t(vec![1.0], [1, 1, 1, 1]);
        let c = t(vec![2.0], [1, 1, 1, 1]);
        let pair = GuidanceBatch::guidance_pair(u, c.clone());
        let rows: Vec<f32> = pair.clone().into_data().to_vec().unwrap();
        assert_eq!(rows, vec![1.0, 2.0]);
        assert_eq!(pair.conditional_rows(1).into_data(), c.clone().into_data());
        // A batch that is not doubled is its own conditional half.
        assert_eq!(c.clone().conditional_rows(1).into_data(), c.into_data());
        let levels = GuidanceBatch::guidance_pair(vec![5.0f32], vec![6.0]);
        assert_eq!(levels.clone().conditional_rows(1), vec![6.0]);
        assert_eq!(vec![3.0f32].doubled(), vec![3.0, 3.0]);
    }

    #[test]
    fn scale_one_is_the_conditional_output() {
        let out = t(vec![1.0, 2.0, 5.0, 7.0], [2, 2, 1, 1]);
        let g: Vec<f32> = classifier_free_guidance(out, 1.0, 2)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(g, vec![5.0, 7.0]);
    }
}
