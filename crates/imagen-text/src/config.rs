//! `T5Config`: a Hugging Face T5 `config.json`, as it is.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::{T5Encoder, TextError};

/// The encoder-relevant part of a Hugging Face `T5Config` (`config.json`),
/// same keys and defaults as `transformers.T5Config`.
///
/// Covers the original T5 (`feed_forward_proj = "relu"`) and T5 v1.1 / Flan-T5
/// (`"gated-gelu"`). Other keys of the file are ignored.
///
/// ```
/// let cfg: imagen_text::T5Config = serde_json::from_str(
///     r#"{"d_model": 512, "d_ff": 1024, "num_layers": 8, "num_heads": 6,
///         "feed_forward_proj": "gated-gelu"}"#).unwrap();
/// assert_eq!(cfg.activation().unwrap().gated, true);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    /// Vocabulary size of the token embedding.
    #[serde(default = "defaults::vocab_size")]
    pub vocab_size: usize,
    /// Width of the residual stream.
    #[serde(default = "defaults::d_model")]
    pub d_model: usize,
    /// Width of each attention head.
    #[serde(default = "defaults::d_kv")]
    pub d_kv: usize,
    /// Inner width of the feed-forward layers.
    #[serde(default = "defaults::d_ff")]
    pub d_ff: usize,
    /// Number of encoder blocks.
    #[serde(default = "defaults::num_layers")]
    pub num_layers: usize,
    /// Number of attention heads.
    #[serde(default = "defaults::num_heads")]
    pub num_heads: usize,
    /// Number of relative-position buckets.
    #[serde(default = "defaults::num_buckets")]
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which relative positions share a bucket.
    #[serde(default = "defaults::max_distance")]
    pub relative_attention_max_distance: usize,
    /// Dropout rate (training only; the frozen encoder runs without dropout).
    #[serde(default = "defaults::dropout_rate")]
    pub dropout_rate: f64,
    /// Epsilon of the RMS layer norms.
    #[serde(default = "defaults::layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// `"relu"`, `"gated-gelu"`, or `[gated-]ACT` for ACT in `relu`, `gelu`,
    /// `gelu_new`, `gelu_pytorch_tanh`, `silu`, `swish`.
    #[serde(default = "defaults::feed_forward_proj")]
    pub feed_forward_proj: String,
}

mod defaults {
    pub fn vocab_size() -> usize {
        32128
    }
    pub fn d_model() -> usize {
        512
    }
    pub fn d_kv() -> usize {
        64
    }
    pub fn d_ff() -> usize {
        2048
    }
    pub fn num_layers() -> usize {
        6
    }
    pub fn num_heads() -> usize {
        8
    }
    pub fn num_buckets() -> usize {
        32
    }
    pub fn max_distance() -> usize {
        128
    }
    pub fn dropout_rate() -> f64 {
        0.1
    }
    pub fn layer_norm_epsilon() -> f64 {
        1e-6
    }
    pub fn feed_forward_proj() -> String {
        "relu".into()
    }
}

/// An activation function of the feed-forward layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`.
    Relu,
    /// Exact (erf) GELU, transformers' `"gelu"`.
    Gelu,
    /// Tanh-approximate GELU, transformers' `"gelu_new"` / `"gelu_pytorch_tanh"`.
    GeluTanh,
    /// `x * sigmoid(x)`, transformers' `"silu"` / `"swish"`.
    Silu,
}

/// The feed-forward variant named by `feed_forward_proj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedForwardKind {
    /// `wo(act(wi_0 x) * wi_1 x)` when true, `wo(act(wi x))` otherwise.
    pub gated: bool,
    /// The activation.
    pub activation: Activation,
}

impl T5Config {
    /// Reads a Hugging Face `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TextError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|source| TextError::Config {
            path: path.to_path_buf(),
            source,
        })?;
        cfg.validate().map_err(|e| e.in_file(path))?;
        Ok(cfg)
    }

    /// Parses `feed_forward_proj` as transformers does: `ACT` or `gated-ACT`;
    /// `gated-gelu` means the tanh approximation (`gelu_new`).
    pub fn activation(&self) -> Result<FeedForwardKind, TextError> {
        let unsupported = |reason: &str| TextError::UnsupportedConfig {
            path: None,
            field: "feed_forward_proj",
            value: format!("{:?}", self.feed_forward_proj),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = self.feed_forward_proj.split('-').collect();
        let (gated, act) = match parts[..] {
            [act] => (false, act),
            ["gated", act] => (true, act),
            _ => return Err(unsupported("expected `ACT` or `gated-ACT`")),
        };
        let activation = match act {
            "relu" => Activation::Relu,
            "gelu" if gated => Activation::GeluTanh,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "silu" | "swish" => Activation::Silu,
            _ => {
                return Err(unsupported(
                    "ACT must be one of relu, gelu, gelu_new, gelu_pytorch_tanh, silu, swish",
                ));
            }
        };
        Ok(FeedForwardKind { gated, activation })
    }

    /// Checks every value the encoder depends on.
    pub fn validate(&self) -> Result<(), TextError> {
        self.activation()?;
        let positive = [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(TextError::UnsupportedConfig {
                    path: None,
                    field,
                    value: "0".into(),
                    reason: "must be positive".into(),
                });
            }
        }
        if self.relative_attention_num_buckets < 4 {
            return Err(TextError::UnsupportedConfig {
                path: None,
                field: "relative_attention_num_buckets",
                value: self.relative_attention_num_buckets.to_string(),
                reason: "bidirectional buckets need at least 4".into(),
            });
        }
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets / 4 {
            return Err(TextError::UnsupportedConfig {
                path: None,
                field: "relative_attention_max_distance",
                value: self.relative_attention_max_distance.to_string(),
                reason: format!(
                    "must exceed relative_attention_num_buckets / 4 = {}",
                    self.relative_attention_num_buckets / 4
                ),
            });
        }
        if self.layer_norm_epsilon.is_nan() || self.layer_norm_epsilon <= 0.0 {
            return Err(TextError::UnsupportedConfig {
                path: None,
                field: "layer_norm_epsilon",
                value: self.layer_norm_epsilon.to_string(),
                reason: "must be positive".into(),
            });
        }
        Ok(())
    }

    /// Builds an encoder with freshly initialised weights (load real ones with
    /// [`T5Encoder::load`](crate::T5Encoder::load) or
    /// [`TextEncoder::from_dir`](crate::TextEncoder::from_dir)).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<T5Encoder<B>, TextError> {
        self.validate()?;
        Ok(T5Encoder::new(self, self.activation()?, device))
    }

    /// T5 v1.1 small's shape (`google/t5-v1_1-small`).
    pub fn t5_v1_1_small() -> Self {
        Self::gated(512, 1024, 8, 6)
    }

    /// T5 v1.1 base's shape (`google/t5-v1_1-base`).
    pub fn t5_v1_1_base() -> Self {
        Self::gated(768, 2048, 12, 12)
    }

    /// T5 v1.1 large's shape (`google/t5-v1_1-large`).
    pub fn t5_v1_1_large() -> Self {
        Self::gated(1024, 2816, 24, 16)
    }

    /// T5 v1.1 XXL's shape (`google/t5-v1_1-xxl`, the encoder of Imagen and DeepFloyd IF).
    pub fn t5_v1_1_xxl() -> Self {
        Self::gated(4096, 10240, 24, 64)
    }

    fn gated(d_model: usize, d_ff: usize, num_layers: usize, num_heads: usize) -> Self {
        Self {
            vocab_size: 32128,
            d_model,
            d_kv: 64,
            d_ff,
            num_layers,
            num_heads,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "gated-gelu".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ff(ff: &str) -> T5Config {
        T5Config {
            feed_forward_proj: ff.into(),
            ..T5Config::t5_v1_1_small()
        }
    }

    #[test]
    fn parses_activations_like_transformers() {
        let k = with_ff("gated-gelu").activation().unwrap();
        assert!(k.gated);
        assert_eq!(k.activation, Activation::GeluTanh);
        let k = with_ff("relu").activation().unwrap();
        assert!(!k.gated);
        assert_eq!(k.activation, Activation::Relu);
        assert_eq!(
            with_ff("gelu").activation().unwrap().activation,
            Activation::Gelu
        );
        assert_eq!(
            with_ff("gated-silu").activation().unwrap().activation,
            Activation::Silu
        );
    }

    #[test]
    fn rejects_unknown_activation_naming_the_field() {
        for bad in ["mish", "gated-gelu-fast", "fancy-relu"] {
            let err = with_ff(bad).validate().unwrap_err().to_string();
            assert!(err.contains("feed_forward_proj"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn defaults_match_transformers() {
        let cfg: T5Config = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg.d_model, 512);
        assert_eq!(cfg.feed_forward_proj, "relu");
        assert_eq!(cfg.relative_attention_num_buckets, 32);
        assert_eq!(cfg.relative_attention_max_distance, 128);
    }
}
