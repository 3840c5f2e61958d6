//! The U-Net as an `imagen-diffusion` [`Denoiser`], so it plugs straight into
//! the samplers.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};
use imagen_diffusion::Denoiser;

use crate::UNet;

/// What a U-Net step conditions on. For classifier-free guidance, `text`
/// (and `text_mask`) hold the batch `[unconditional; conditional]`, and
/// `lowres` / `noise_level` are given for the doubled batch too.
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
        let timesteps = vec![t as f32; batch];
        let text = cond.text.clone();
        let rows = text.dims()[0];
        // The second half of the doubled batch; a batch that is not doubled
        // (`rows == batch`) is taken whole.
        let start = rows.saturating_sub(batch);
        self.denoise(
            x_t,
            &timesteps,
            text.narrow(0, start, batch),
            cond.text_mask.clone().map(|m| m.narrow(0, start, batch)),
            cond.lowres.clone().map(|l| l.narrow(0, start, batch)),
            cond.noise_level.as_ref().map(|n| &n[start..]),
        )
    }
}
