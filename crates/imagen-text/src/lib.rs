//! Imagen's frozen text encoder on burn: a T5 tokenizer and the T5 / T5 v1.1
//! encoder, numerically matching transformers and loading its checkpoints.
//!
//! Imagen (Saharia et al. 2022, <https://arxiv.org/abs/2205.11487>) conditions
//! every diffusion stage on the per-token outputs of a frozen T5 encoder; the
//! paper's finding is that scaling this language model helps more than scaling
//! the U-Net. DeepFloyd IF uses T5 v1.1 XXL with 77 tokens.
//!
//! - [`TextEncoder`]: tokenizer + encoder from a Hugging Face directory
//!   (`config.json`, `model.safetensors` or shards, `tokenizer.json`).
//! - [`T5Config`]: `config.json` as it is; [`T5Config::init`] builds a
//!   [`T5Encoder`], [`T5Encoder::load`] fills it from a checkpoint.
//! - [`T5Tokenizer`]: fixed-length tokenization with visible truncation, from
//!   a `tokenizer.json` or a SentencePiece `spiece.model`
//!   ([`SentencePieceModel`]), as the DeepFloyd IF repositories ship it.
//!
//! Every model type is generic over the burn backend. Run
//! `cargo run --release --example encode -- --model-dir DIR --prompt "..."`
//! from the workspace root for a command-line encoder.
//!
//! # Precision
//! The compute dtype is chosen at load ([`T5Encoder::load_with`],
//! [`TextEncoder::from_dir_with`] with `imagen_weights::LoadOptions`): f32,
//! bf16 or f16, on any backend that holds it. Weights stored in f32, f16 or
//! bf16 are converted once, tensor by tensor. Whatever the compute dtype,
//! `last_hidden_state` comes out in the backend's default float type (f32).
//!
//! - f32: the reference.
//! - bf16: every weight and activation in bf16 (T5 was trained in bf16).
//! - f16: as transformers' `from_pretrained(..., dtype=torch.float16)`: the
//!   feed-forward output projections `wo` stay in f32, so the residual stream
//!   becomes f32 after the first feed-forward block (f16 + f32 promotes) and
//!   cannot overflow; everything else computes in f16. The layer norms take
//!   their mean square in f32, and a residual stream that is still f16 is
//!   clamped after each sub-layer once it overflows, exactly as transformers
//!   does.
#![warn(missing_docs)]

mod attention;
mod block;
mod config;
mod encoder;
mod error;
mod feed_forward;
mod norm;
mod position_bias;
mod precision;
mod spiece;
mod text_encoder;
mod tokenizer;
mod weights;

pub use attention::T5Attention;
pub use block::T5Block;
pub use config::{Activation, FeedForwardKind, T5Config};
pub use encoder::{T5Encoder, T5Stack};
pub use error::TextError;
pub use feed_forward::T5FeedForward;
pub use norm::T5LayerNorm;
pub use position_bias::{RelativePositionBias, relative_position_bucket};
pub use spiece::{MAX_EXTRA_IDS, Piece, PieceType, SentencePieceModel, T5SpecialTokens};
pub use text_encoder::{TextEmbeddings, TextEncoder, batch_tensors};
pub use tokenizer::{T5Tokenizer, TokenBatch, Truncation, UnknownWords};
