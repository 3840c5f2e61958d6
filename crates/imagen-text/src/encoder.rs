//! The T5 encoder stack: embedding, blocks sharing one relative position bias,
//! final norm.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor};

use crate::block::T5Block;
use crate::config::{FeedForwardKind, T5Config};
use crate::norm::T5LayerNorm;
use crate::position_bias::RelativePositionBias;
use crate::precision::{default_float_dtype, to_dtype};

/// transformers' `T5EncoderModel` (inference): token ids and padding mask in,
/// `last_hidden_state` out.
///
/// Build it with [`T5Config::init`] and load weights with
/// [`T5Encoder::load`], or use [`TextEncoder`](crate::TextEncoder) for
/// tokenizer + encoder from one directory. Dropout is not applied: the encoder
/// is frozen in Imagen.
#[derive(Module, Debug)]
pub struct T5Encoder<B: Backend> {
    /// Token embedding (`shared.weight`).
    pub shared: Embedding<B>,
    /// The stack (`encoder.*`).
    pub encoder: T5Stack<B>,
}

/// `encoder.*` of a T5 checkpoint.
#[derive(Module, Debug)]
pub struct T5Stack<B: Backend> {
    /// The relative position bias of block 0, shared by all blocks.
    pub relative_attention_bias: RelativePositionBias<B>,
    /// The blocks.
    pub block: Vec<T5Block<B>>,
    /// Norm after the last block.
    pub final_layer_norm: T5LayerNorm<B>,
}

impl<B: Backend> T5Encoder<B> {
    pub(crate) fn new(cfg: &T5Config, kind: FeedForwardKind, device: &B::Device) -> Self {
        let eps = cfg.layer_norm_epsilon;
        Self {
            shared: EmbeddingConfig::new(cfg.vocab_size, cfg.d_model).init(device),
            encoder: T5Stack {
                relative_attention_bias: RelativePositionBias::new(
                    cfg.relative_attention_num_buckets,
                    cfg.relative_attention_max_distance,
                    cfg.num_heads,
                    device,
                ),
                block: (0..cfg.num_layers)
                    .map(|_| {
                        T5Block::new(
                            cfg.d_model,
                            cfg.num_heads,
                            cfg.d_kv,
                            cfg.d_ff,
                            kind,
                            eps,
                            device,
                        )
                    })
                    .collect(),
                final_layer_norm: T5LayerNorm::new(cfg.d_model, eps, device),
            },
        }
    }

    /// The compute dtype: the dtype the weights were loaded in (see
    /// [`T5Encoder::load_with`]). A model loaded in f16 keeps its `wo`
    /// projections in f32, as transformers does; this still says f16.
    pub fn dtype(&self) -> DType {
        self.encoder.final_layer_norm.weight.val().dtype()
    }

    /// Encodes a batch of token sequences.
    ///
    /// Padded positions (mask `false`) are hidden from every attention, as
    /// transformers does with its additive mask; their own outputs are still
    /// computed (they attend to the real tokens) and are returned as they are.
    ///
    /// The output is in the backend's default float dtype (f32 unless the
    /// device settings say otherwise), whatever [`T5Encoder::dtype`] the
    /// network computes in, so that callers never convert it.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]`
    /// - `mask`: `[batch, seq]`, `true` for real tokens
    /// - returns `[batch, seq, d_model]`
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Bool>) -> Tensor<B, 3> {
        let dtype = default_float_dtype::<B>(&input_ids.device());
        to_dtype(self.forward_in_compute_dtype(input_ids, mask), dtype)
    }

    /// [`T5Encoder::forward`] without the final cast: `last_hidden_state` in
    /// the compute dtype, as transformers returns it.
    fn forward_in_compute_dtype(
        &self,
        input_ids: Tensor<B, 2, Int>,
        mask: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        let device = input_ids.device();
        let [batch, seq] = input_ids.dims();
        let mut x = self.shared.forward(input_ids);
        let position = self.encoder.relative_attention_bias.forward(seq, &device);
        let padding = Tensor::<B, 2>::zeros([batch, seq], (&device, x.dtype()))
            .mask_fill(mask.bool_not(), masked_value(x.dtype()))
            .reshape([batch, 1, 1, seq]);
        let bias = position + padding;
        for block in &self.encoder.block {
            x = block.forward(x, bias.clone());
        }
        self.encoder.final_layer_norm.forward(x)
    }
}

/// The additive bias of a masked key: the dtype's lowest finite value, as
/// transformers uses (`torch.finfo(dtype).min`).
fn masked_value(dtype: DType) -> f32 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.389_531_4e38,
        _ => f32::MIN,
    }
}
