//! Loading transformers T5 checkpoints: the key renames between transformers'
//! names and ours, in one place.

use std::path::Path;

use burn::tensor::DType;
use burn::tensor::backend::Backend;
use imagen_weights::{Checkpoint, LoadOptions, LoadSpec, Rename, WeightsError, check_dtype};

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

/// The feed-forward output projections, which transformers keeps in f32 when
/// it loads T5 in f16 (`_keep_in_fp32_modules = ["wo"]`): T5 was trained in
/// bf16, and in f16 their outputs overflow.
const WO: &str = "encoder.block.{n}.layer.1.DenseReluDense.wo.";

/// transformers' names → our module paths, every float tensor in `dtype` but
/// for f16, whose `wo` weights load as f32. Block 0 holds the relative
/// position bias, which our stack owns once for all blocks.
fn load_spec(ckpt: &Checkpoint, dtype: DType) -> LoadSpec {
    let mut spec = spec_with_shared()
        .dtype(dtype)
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
    if dtype == DType::F16 {
        spec = spec.dtype_for(WO, DType::F32);
    }
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
    /// Builds the encoder described by `config` and loads `checkpoint` into it,
    /// computing in the backend's default float type.
    ///
    /// Accepts a transformers `T5EncoderModel` or a full
    /// `T5ForConditionalGeneration` checkpoint (the decoder is skipped), stored
    /// in f32, f16 or bf16.
    pub fn load(
        config: &T5Config,
        checkpoint: &Checkpoint,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        let dtype = LoadOptions::default().resolve_dtype::<B>(device)?;
        Self::load_with(config, checkpoint, dtype, device)
    }

    /// Like [`T5Encoder::load`], computing in `dtype` (f32, f16 or bf16):
    /// each stored tensor is converted once, from whatever dtype the file
    /// holds.
    ///
    /// In f16 the feed-forward output projections (`wo`) are kept in f32, as
    /// transformers' `from_pretrained(..., dtype=torch.float16)` keeps them:
    /// T5 was trained in bf16 and its feed-forward outputs overflow f16. The
    /// residual stream then turns f32 after the first feed-forward block; the
    /// rest computes in f16. bf16 keeps everything in bf16. See the crate docs
    /// on precision.
    ///
    /// Fails with [`WeightsError::UnsupportedComputeDtype`](imagen_weights::WeightsError::UnsupportedComputeDtype)
    /// when `dtype` is not a float dtype the backend holds on `device`.
    pub fn load_with(
        config: &T5Config,
        checkpoint: &Checkpoint,
        dtype: DType,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        check_dtype::<B>(dtype, device)?;
        if dtype == DType::F16 {
            check_dtype::<B>(DType::F32, device)?;
        }
        fits_checkpoint(config, checkpoint)?;
        let model = config.init::<B>(device)?;
        Ok(checkpoint.load_into(model, &load_spec(checkpoint, dtype))?)
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
    /// Hugging Face T5 directory, computing in the backend's default float type.
    pub fn from_dir(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self, TextError> {
        Self::from_dir_with(dir, &LoadOptions::default(), device)
    }

    /// Like [`T5Encoder::from_dir`], reading the weight files of
    /// `options.variant` (`"fp16"`: `model.fp16.safetensors` or
    /// `model.safetensors.index.fp16.json`) and computing in `options.dtype`
    /// (see [`T5Encoder::load_with`]).
    pub fn from_dir_with(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self, TextError> {
        let dir = dir.as_ref();
        let dtype = options.resolve_dtype::<B>(device)?;
        let config = T5Config::from_file(dir.join("config.json"))?;
        let checkpoint = Checkpoint::open_dir_variant(dir, "model", options.variant.as_deref())?;
        Self::load_with(&config, &checkpoint, dtype, device)
    }
}

/// Checks the sizes `config` gives against the checkpoint before the encoder
/// is built. Building allocates every parameter first; a corrupt config
/// (`num_layers` or `d_model` of 2^31, found by the fuzz tests) asked for
/// terabytes before loading could report the mismatch. The number of
/// blocks and the shapes of the embedding, block 0's attention, position
/// bias and feed-forward input bound every size the encoder allocates; a
/// mismatch is the error loading would give, naming the tensor.
fn fits_checkpoint(config: &T5Config, checkpoint: &Checkpoint) -> Result<(), TextError> {
    let missing = |key: String| WeightsError::MissingTensor {
        key,
        others: Vec::new(),
    };
    if let Some(last) = config.num_layers.checked_sub(1) {
        let key = format!("encoder.block.{last}.layer.0.layer_norm.weight");
        if !checkpoint.contains(&key) {
            return Err(missing(key).into());
        }
    }
    let embedding = ["shared.weight", "encoder.embed_tokens.weight"]
        .into_iter()
        .find(|k| checkpoint.contains(k))
        .ok_or_else(|| missing("shared.weight".into()))?;
    let attention = "encoder.block.0.layer.0.SelfAttention.";
    let feed_forward = "encoder.block.0.layer.1.DenseReluDense.";
    let wi = if checkpoint.contains(&format!("{feed_forward}wi.weight")) {
        "wi.weight"
    } else {
        "wi_0.weight"
    };
    let inner = config.num_heads.saturating_mul(config.d_kv);
    let expected = [
        (
            embedding.to_string(),
            vec![config.vocab_size, config.d_model],
        ),
        (format!("{attention}q.weight"), vec![inner, config.d_model]),
        (
            format!("{attention}relative_attention_bias.weight"),
            vec![config.relative_attention_num_buckets, config.num_heads],
        ),
        (
            format!("{feed_forward}{wi}"),
            vec![config.d_ff, config.d_model],
        ),
    ];
    // Without blocks, only the embedding is built.
    let checked = if config.num_layers == 0 {
        1
    } else {
        expected.len()
    };
    for (key, expected) in expected.into_iter().take(checked) {
        checkpoint.expect_shape(&key, &expected)?;
    }
    Ok(())
}
