//! The U-Net as an `imagen-diffusion` [`Denoiser`], so it plugs straight into
//! the samplers.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};
use imagen_diffusion::{Denoiser, GuidanceBatch};

use crate::UNet;

/// What a U-Net step conditions on. For classifier-free guidance, every
/// field holds the batch `[unconditional; conditional]`: build the two
/// sides alike and join them with [`GuidanceBatch::guidance_pair`].
#[derive(Debug, Clone)]
pub struct UNetCond<B: Backend> {
    /// Raw text states `[batch, L, encoder_hid_dim]` (T5 `last_hidden_state`).
    pub text: Tensor<B, 3>,
    /// `[batch, L]`, `true` for real tokens; `None` attends to every token, as
    /// DeepFloyd IF's pipelines do.
    pub text_mask: Option<Tensor<B, 2, Bool>>,
    /// Super-resolution stages: the noise-augmented, upsampled low-resolution
    /// image, concatenated to the noisy sample on channels.
    pub lowres: Option<Tensor<B, 4>>,
    /// Super-resolution stages: the augmentation level the network is told
    /// (IF: `noise_level`, one per sample).
    pub noise_level: Option<Vec<f32>>,
}

impl<B: Backend> UNet<B> {
    /// One prediction in the terms of the cascade: the noisy sample, its
    /// timesteps, the text, and for super-resolution stages the (upsampled,
    /// noise-augmented) low-resolution image and its augmentation level.
    ///
    /// # Shapes
    /// - `x_t`: `[batch, 3, H, W]`; `lowres`: `[batch, 3, H, W]`
    /// - `timesteps`, `aug_level`: one per sample
    /// - returns `[batch, out_channels, H, W]` (3 for eps / v, 6 with variance)
    pub fn denoise(
        &self,
        x_t: Tensor<B, 4>,
        timesteps: &[f32],
        text: Tensor<B, 3>,
        text_mask: Option<Tensor<B, 2, Bool>>,
        lowres: Option<Tensor<B, 4>>,
        aug_level: Option<&[f32]>,
    ) -> Tensor<B, 4> {
        let input = match lowres {
            Some(lowres) => Tensor::cat(vec![x_t, lowres], 1),
            None => x_t,
        };
        self.forward(input, timesteps, text, text_mask, aug_level)
    }
}

impl<B: Backend> Denoiser<B> for UNet<B> {
    type Cond = UNetCond<B>;

    fn predict(&self, x_t: Tensor<B, 4>, t: usize, cond: &UNetCond<B>) -> Tensor<B, 4> {
        let timesteps = vec![t as f32; x_t.dims()[0]];
        self.denoise(
            x_t,
            &timesteps,
            cond.text.clone(),
            cond.text_mask.clone(),
            cond.lowres.clone(),
            cond.noise_level.as_deref(),
        )
    }

    /// Runs the conditional rows of `cond` only: half the work of guidance.
    fn predict_conditional(&self, x_t: Tensor<B, 4>, t: usize, cond: &UNetCond<B>) -> Tensor<B, 4> {
        let batch = x_t.dims()[0];
        self.predict(x_t, t, &cond.clone().conditional_rows(batch))
    }
}

/// A guided U-Net batch pairs every input row for row: text states and mask,
/// and for super-resolution stages the low-resolution image and its level.
impl<B: Backend> GuidanceBatch for UNetCond<B> {
    fn guidance_pair(uncond: Self, cond: Self) -> Self {
        Self {
            text: GuidanceBatch::guidance_pair(uncond.text, cond.text),
            text_mask: GuidanceBatch::guidance_pair(uncond.text_mask, cond.text_mask),
            lowres: GuidanceBatch::guidance_pair(uncond.lowres, cond.lowres),
            noise_level: GuidanceBatch::guidance_pair(uncond.noise_level, cond.noise_level),
        }
    }

    fn conditional_rows(self, batch: usize) -> Self {
        Self {
            text: self.text.conditional_rows(batch),
            text_mask: self.text_mask.conditional_rows(batch),
            lowres: self.lowres.conditional_rows(batch),
            noise_level: self.noise_level.conditional_rows(batch),
        }
    }
}
