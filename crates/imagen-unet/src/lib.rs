//! The text-conditioned U-Nets of Imagen and DeepFloyd IF on burn.
//!
//! The DeepFloyd IF layout of diffusers' `UNet2DConditionModel` is complete
//! and matches diffusers on tiny random models of both stages:
//! [`UNetConfig`] reads `unet/config.json` as it is, [`UNetConfig::spec`]
//! checks it once (errors name the offending key) and converts it into a
//! typed [`UNetSpec`] (layout, activation, time conditioning and attention
//! as enums; one [`LevelSpec`] per resolution), which [`UNetSpec::init`]
//! builds; [`UNet::from_dir`] loads `diffusion_pytorch_model.safetensors` (or shards)
//! with diffusers' key names, [`UNet::forward`] runs it. Building blocks:
//! [`timestep_embedding`], [`TimestepEmbedding`], [`ResnetBlock2D`],
//! [`AddedKvAttention`], [`TextTimeEmbedding`].
//!
//! [`UNet`] implements `imagen_diffusion::Denoiser` (conditioning in
//! [`UNetCond`]), so it runs under every sampler of that crate.
//!
//! The Imagen paper's networks are presets of the same config, written as
//! struct literals over [`UNetConfig::default`] (diffusers' defaults):
//! [`UNetConfig::imagen_base_64`], [`UNetConfig::imagen_sr_256`] and
//! [`UNetConfig::imagen_sr_1024`] (Efficient U-Net: DBlock / UBlock block
//! types), plus small `demo_*` and `tiny_*` presets. [`UNet::save_dir`]
//! writes the diffusers layout back.
//!
//! Imagen: Saharia et al. 2022, <https://arxiv.org/abs/2205.11487>.
//!
//! # Precision
//! [`UNet::load_with`] / [`UNet::from_dir_with`] (with
//! `imagen_weights::LoadOptions`) choose the compute dtype, f32, bf16 or f16,
//! on any backend that holds it; stored weights (f32, f16 or bf16, any
//! variant file) convert once. [`UNet::forward`] casts the sample and text
//! states to that dtype on entry and its prediction back to the sample's
//! dtype, so samplers keep working in f32. As in diffusers, the sinusoidal
//! timestep embedding is computed in f32 and then cast; as in PyTorch, the
//! GroupNorms take their statistics in f32 and the convolutions accumulate
//! in f32; attention of half tensors is computed in f32 (diffusers upcasts
//! IF's softmax) on every backend, so that burn-wgpu / burn-cuda round as
//! burn-flex does.
#![warn(missing_docs)]

mod activation;
mod attention;
mod attention_pool;
mod blocks;
mod config;
mod denoiser;
mod embeddings;
mod error;
mod norm;
mod presets;
mod resnet;
mod spec;
mod unet;
mod weights;

pub use activation::Activation;
pub use attention::{AddedKvAttention, AddedKvAttentionConfig, CrossNorm};
pub use attention_pool::{AttentionPooling, TextTimeEmbedding};
pub use blocks::{DownBlock, MidBlock, UpBlock};
pub use config::{DownBlockType, MidBlockType, PerBlock, UNetConfig, UpBlockType};
pub use denoiser::UNetCond;
pub use embeddings::{TimestepEmbedding, timestep_embedding};
pub use error::UNetError;
pub use presets::T5_XXL_DIM;
pub use resnet::{Resample, ResnetBlock2D, ResnetConfig, TimeConditioning};
pub use spec::{
    AttentionScope, AttentionSpec, Layout, LevelSpec, MidSpec, ResidualSpec, TextNorm, TextSpec,
    TimeSpec, UNetSpec,
};
pub use unet::UNet;
