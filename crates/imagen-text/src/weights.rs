//! Loading transformers T5 checkpoints: the key renames between transformers'
//! names and ours, in one place.

use std::path::Path;

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_weights::{Checkpoint, LoadSpec, Rename};

use crate::{T5Config, T5Encoder, TextError};

/// transformers' names → our module paths (first match wins).
const RENAMES: [(&str, &str); 5] = [
    (
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.",
        "encoder.relative_attention_bias.relative_attention_bias.",
    ),
    (
        "encoder.block.{n}.layer.0.SelfAttention.",
        "encoder.block.{n}.attention.",
    ),
    (
        "encoder.block.{n}.layer.0.layer_norm.",
        "encoder.block.{n}.attention_norm.",
    ),
    (
        "encoder.block.{n}.layer.1.DenseReluDense.",
        "encoder.block.{n}.feed_forward.",
    ),
    (
        "encoder.block.{n}.layer.1.layer_norm.",
        "encoder.block.{n}.feed_forward_norm.",
    ),
];

/// transformers' names → our module paths. Block 0 holds the relative
/// position bias, which our stack owns once for all blocks.
fn load_spec(ckpt: &Checkpoint) -> LoadSpec {
    let mut spec = spec_with_shared()
        // The decoder and LM head of a full `T5ForConditionalGeneration`.
        .ignore_prefix("decoder.")
        .ignore_prefix("lm_head.");
    // transformers 5 stores only `shared.weight`; older encoder checkpoints may
    // hold `encoder.embed_tokens.weight` as well, or instead.
    spec = if ckpt.contains("shared.weight") {
        spec.ignore_prefix("encoder.embed_tokens.")
    } else {
        spec.rename(Rename::new("encoder.embed_tokens.", "shared."))
    };
    spec
}

/// The spec of a checkpoint holding `shared.weight` (what we write).
fn spec_with_shared() -> LoadSpec {
    let mut spec = LoadSpec::pytorch();
    for (from, to) in RENAMES {
        spec = spec.rename(Rename::new(from, to));
    }
    spec
}

impl<B: Backend> T5Encoder<B> {
    /// Builds the encoder described by `config` and loads `checkpoint` into it.
    ///
    /// Accepts a transformers `T5EncoderModel` or a full
    /// `T5ForConditionalGeneration` checkpoint (the decoder is skipped), stored
    /// in f32, f16 or bf16.
    pub fn load(
        config: &T5Config,
        checkpoint: &Checkpoint,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        let model = config.init::<B>(device)?;
        Ok(checkpoint.load_into(model, &load_spec(checkpoint))?)
    }

    /// Like [`T5Encoder::load`], with the weights (and so the computation) in
    /// `dtype`, e.g. `DType::BF16` to halve memory on a backend that computes
    /// in its tensors' dtype. See the crate docs on precision.
    pub fn load_with_dtype(
        config: &T5Config,
        checkpoint: &Checkpoint,
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        let model = config.init::<B>(device)?;
        Ok(checkpoint.load_into(model, &load_spec(checkpoint).dtype(dtype))?)
    }

    /// SHIM (replaced by the precision branch).
    pub fn load_with(
        config: &T5Config,
        checkpoint: &Checkpoint,
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        Self::load_with_dtype(config, checkpoint, dtype, device)
    }

    /// Writes the weights as a transformers `T5EncoderModel` `model.safetensors`
    /// at `path` (atomically; `dtype` `None` keeps the module's float type),
    /// which [`T5Encoder::load`] and transformers read back.
    pub fn save(&self, path: impl AsRef<Path>, dtype: Option<DType>) -> Result<(), TextError> {
        Ok(spec_with_shared().save(self, path, dtype)?)
    }

    /// Writes `config.json` and `model.safetensors` into `dir` (created if
    /// needed): a directory [`T5Encoder::from_dir`] loads.
    pub fn save_dir(
        &self,
        config: &T5Config,
        dir: impl AsRef<Path>,
        dtype: Option<DType>,
    ) -> Result<(), TextError> {
        let dir = dir.as_ref();
        let io = |source| TextError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut json = serde_json::to_value(config).map_err(|e| io(e.into()))?;
        json["architectures"] = serde_json::json!(["T5EncoderModel"]);
        json["model_type"] = "t5".into();
        json["is_encoder_decoder"] = false.into();
        json["pad_token_id"] = 0.into();
        json["eos_token_id"] = 1.into();
        let text = serde_json::to_string_pretty(&json).map_err(|e| io(e.into()))?;
        std::fs::write(dir.join("config.json"), text).map_err(io)?;
        self.save(dir.join("model.safetensors"), dtype)
    }

    /// Loads `config.json` and `model.safetensors` (or its sharded index) from a
    /// Hugging Face T5 directory.
    pub fn from_dir(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, TextError> {
        let dir = dir.as_ref();
        let config = T5Config::from_file(dir.join("config.json"))?;
        let checkpoint = Checkpoint::open_dir(dir, "model")?;
        Self::load(&config, &checkpoint, device)
    }
}
