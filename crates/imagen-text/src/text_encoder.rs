//! Tokenizer + T5 encoder from one Hugging Face directory.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use imagen_weights::LoadOptions;

use crate::{T5Config, T5Encoder, T5Tokenizer, TextError, TokenBatch, Truncation, UnknownWords};

/// Imagen's frozen text encoder: prompts in, per-token embeddings out.
///
/// ```no_run
/// use burn_flex::Flex;
/// let enc = imagen_text::TextEncoder::<Flex>::from_dir("t5-v1_1-small", &Default::default())?
///     .with_max_length(77);
/// let out = enc.encode(&["a red circle above a blue square"])?;
/// for warning in &out.truncated { eprintln!("warning: {warning}"); }
/// assert_eq!(out.embeddings.dims()[1], 77);
/// # Ok::<(), imagen_text::TextError>(())
/// ```
#[derive(Debug)]
pub struct TextEncoder<B: Backend> {
    tokenizer: T5Tokenizer,
    model: T5Encoder<B>,
    max_length: usize,
    device: B::Device,
}

/// The output of [`TextEncoder::encode`].
#[derive(Debug, Clone)]
pub struct TextEmbeddings<B: Backend> {
    /// `last_hidden_state`, `[batch, max_length, d_model]`, in the backend's
    /// default float dtype whatever dtype the encoder computes in.
    pub embeddings: Tensor<B, 3>,
    /// `[batch, max_length]`, `true` for real tokens.
    pub mask: Tensor<B, 2, Bool>,
    /// Prompts that were cut to `max_length`.
    pub truncated: Vec<Truncation>,
    /// Prompts with words the tokenizer maps to `<unk>`.
    pub unknown: Vec<UnknownWords>,
}

impl<B: Backend> TextEncoder<B> {
    /// Default sequence length: 77 tokens, as DeepFloyd IF (Imagen used 128).
    pub const DEFAULT_MAX_LENGTH: usize = 77;

    /// Loads `config.json`, `model.safetensors` (or shards) and the tokenizer
    /// (`tokenizer.json`, or `spiece.model`) from `dir`, computing in the backend's default float type.
    pub fn from_dir(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, TextError> {
        Self::from_dir_with(dir, &LoadOptions::default(), device)
    }

    /// Like [`TextEncoder::from_dir`], with the weight-file variant and the
    /// compute dtype of `options` (see [`T5Encoder::from_dir_with`]).
    ///
    /// ```no_run
    /// use burn::tensor::DType;
    /// use burn_flex::Flex;
    /// use imagen_weights::LoadOptions;
    /// let options = LoadOptions::default().dtype(DType::BF16);
    /// let enc = imagen_text::TextEncoder::<Flex>::from_dir_with("t5-v1_1-small", &options, &Default::default())?;
    /// assert_eq!(enc.model().dtype(), DType::BF16);
    /// // Embeddings come out in f32 all the same.
    /// assert_eq!(enc.encode(&["a red circle"])?.embeddings.dtype(), DType::F32);
    /// # Ok::<(), imagen_text::TextError>(())
    /// ```
    pub fn from_dir_with(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        let dir = dir.as_ref();
        let tokenizer = T5Tokenizer::from_dir(dir)?;
        // Checked before the weights load (minutes for T5-XXL), as the
        // pipeline's loaders do.
        let vocab_size = T5Config::from_file(dir.join("config.json"))?.vocab_size;
        tokenizer.check_vocab_size(vocab_size, dir)?;
        let model = T5Encoder::from_dir_with(dir, options, device)?;
        Ok(Self::new(tokenizer, model, device))
    }

    /// Joins an already loaded tokenizer and encoder.
    pub fn new(tokenizer: T5Tokenizer, model: T5Encoder<B>, device: &B::Device) -> Self {
        Self {
            tokenizer,
            model,
            max_length: Self::DEFAULT_MAX_LENGTH,
            device: device.clone(),
        }
    }

    /// Sets the padded sequence length.
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// The padded sequence length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &T5Tokenizer {
        &self.tokenizer
    }

    /// The encoder network.
    pub fn model(&self) -> &T5Encoder<B> {
        &self.model
    }

    /// Tokenizes and encodes a batch of prompts in one forward pass.
    pub fn encode(&self, prompts: &[&str]) -> Result<TextEmbeddings<B>, TextError> {
        let batch = self.tokenizer.encode(prompts, self.max_length)?;
        let (ids, mask) = batch_tensors::<B>(&batch, &self.device);
        Ok(TextEmbeddings {
            embeddings: self.model.forward(ids, mask.clone()),
            mask,
            truncated: batch.truncated,
            unknown: batch.unknown,
        })
    }
}

/// Token ids `[batch, seq]` and the boolean mask of a [`TokenBatch`].
pub fn batch_tensors<B: Backend>(
    batch: &TokenBatch,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
    let rows = batch.input_ids.len();
    let cols = batch.input_ids.first().map_or(0, Vec::len);
    let ids: Vec<i64> = batch
        .input_ids
        .iter()
        .flatten()
        .map(|&i| i as i64)
        .collect();
    let mask: Vec<bool> = batch
        .attention_mask
        .iter()
        .flatten()
        .map(|&m| m != 0)
        .collect();
    (
        Tensor::from_data(
            TensorData::new(ids, [rows, cols]).convert::<B::IntElem>(),
            device,
        ),
        Tensor::from_data(TensorData::new(mask, [rows, cols]), device),
    )
}
