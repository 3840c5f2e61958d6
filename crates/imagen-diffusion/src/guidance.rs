//! Classifier-free guidance (Ho & Salimans 2022) on one batched forward pass.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

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

/// Combines a network output over the batch `[unconditional; conditional]`
/// into `u + scale * (c - u)`.
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
    let mut halves = output.chunk(2, 0).into_iter();
    let (uncond, cond) = (
        halves.next().expect("even batch"),
        halves.next().expect("even batch"),
    );
    debug_assert_eq!(b2 % 2, 0);
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
    fn scale_one_is_the_conditional_output() {
        let out = t(vec![1.0, 2.0, 5.0, 7.0], [2, 2, 1, 1]);
        let g: Vec<f32> = classifier_free_guidance(out, 1.0, 2)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(g, vec![5.0, 7.0]);
    }
}
