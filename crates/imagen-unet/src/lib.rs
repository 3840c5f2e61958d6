//! The text-conditioned U-Nets of Imagen and DeepFloyd IF on burn.
//!
//! Work in progress: this crate holds the diffusers `UNet2DConditionModel`
//! configuration of the DeepFloyd IF layout ([`UNetConfig`], validated with
//! errors that name the offending key) and the timestep embeddings; the
//! residual, attention and pooling blocks follow.
//!
//! Imagen: Saharia et al. 2022, <https://arxiv.org/abs/2205.11487>.
#![warn(missing_docs)]

mod activation;
mod attention;
mod attention_pool;
mod config;
mod embeddings;
mod error;
mod resnet;

pub use activation::Activation;
pub use attention::{AddedKvAttention, AddedKvAttentionConfig, CrossNorm};
pub use attention_pool::{AttentionPooling, TextTimeEmbedding};
pub use config::{DownBlockType, MidBlockType, PerBlock, UNetConfig, UpBlockType};
pub use embeddings::{TimestepEmbedding, timestep_embedding};
pub use error::UNetError;
pub use resnet::{Resample, ResnetBlock2D, ResnetConfig, TimeConditioning};
