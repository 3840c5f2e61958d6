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
//! Weights stored in f32, f16 or bf16 are converted to the backend's float
//! type when loading. Prefer f32 or bf16 compute: T5 was trained in bf16 and
//! its residual stream overflows f16. On an f16 backend the layer norms take
//! their mean square in f32 and the residual stream is clamped after each
//! sub-layer once it overflows, exactly as transformers does.
#![warn(missing_docs)]

mod attention;
mod block;
mod config;
mod encoder;
mod error;
mod feed_forward;
mod norm;
mod position_bias;
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
pub use tokenizer::{T5Tokenizer, TokenBatch, Truncation};
