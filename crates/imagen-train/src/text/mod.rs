//! The demo cascade's text side: a tokenizer learnt from captions, and brief
//! pre-training of a small T5 encoder on them.

mod pretrain;
mod tokenizer;

pub use pretrain::{PretrainConfig, PretrainStep, pretrain_encoder};
pub use tokenizer::{SPECIAL_TOKENS, write_word_tokenizer};
