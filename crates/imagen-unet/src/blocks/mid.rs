//! The middle block both layouts share (diffusers'
//! `UNetMidBlock2DSimpleCrossAttn`): residual block, then (attention,
//! residual block).

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{BlockSettings, TextContext};
use crate::{AddedKvAttention, ResnetBlock2D};

/// The middle block: residual block, then (attention, residual block).
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    /// Two residual blocks.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One attention.
    pub attentions: Vec<AddedKvAttention<B>>,
}

impl<B: Backend> MidBlock<B> {
    pub(crate) fn new(s: &BlockSettings, channels: usize, device: &B::Device) -> Self {
        Self {
            resnets: s.resnets(2, |_| channels, channels, device),
            attentions: s.attentions(1, channels, device),
        }
    }

    pub(crate) fn forward(
        &self,
        h: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        text: &TextContext<B>,
    ) -> Tensor<B, 4> {
        let mut h = self.resnets[0].forward(h, temb.clone());
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            h = text.attend(attn, h);
            h = resnet.forward(h, temb.clone());
        }
        h
    }
}
