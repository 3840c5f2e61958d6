//! `EncoderIdentity`: what makes cached text embeddings valid for an encoder.

use burn::tensor::backend::Backend;
use imagen_text::TextEncoder;
use serde::{Deserialize, Serialize};

use super::encode::encode;
use super::hash::fnv1a;
use crate::data::DataError;

/// A fingerprint of a [`TextEncoder`]: its shapes, its tokenizer's ids for
/// a probe sentence, and its output for that sentence.
///
/// Stored in the cache's `index.json`; a cache is refused for an encoder
/// whose identity differs ([`EncoderIdentity::check`]). The probe output is
/// compared with a tolerance ([`EncoderIdentity::PROBE_TOLERANCE`]), so the
/// same weights on another backend or in bf16 still match, while other
/// weights do not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderIdentity {
    /// Padded sequence length `L` of the stored states.
    pub max_length: usize,
    /// Width `D` of the stored states.
    pub d_model: usize,
    /// Rows of the token embedding.
    pub vocab_size: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// FNV-1a of the pad id and the probe's token ids (padded to 128, as
    /// little-endian u32), as 16 hex digits.
    pub tokenizer: String,
    /// The first [`EncoderIdentity::PROBE_CHANNELS`] channels of the probe's
    /// states averaged over its real tokens.
    pub probe: Vec<f32>,
}

impl EncoderIdentity {
    /// The probe sentence.
    pub const PROBE: &'static str =
        "An astronaut riding a horse; 3 red circles above 2 BLUE squares, photo #7.";
    /// Channels of the probe output kept.
    pub const PROBE_CHANNELS: usize = 16;
    /// Largest accepted probe difference, relative to the probe's RMS.
    pub const PROBE_TOLERANCE: f32 = 0.05;

    /// The identity of `encoder` (runs it once on [`Self::PROBE`]).
    pub fn of<B: Backend>(encoder: &TextEncoder<B>) -> Result<Self, DataError> {
        let tokens = encoder.tokenizer().encode(&[Self::PROBE], 128)?;
        let mut words = vec![encoder.tokenizer().pad_id()];
        words.extend(tokens.input_ids.iter().flatten());
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let tokenizer = format!("{:016x}", fnv1a(&bytes));

        let model = encoder.model();
        let [vocab_size, d_model] = model.shared.weight.val().dims();
        let out = encode(encoder, &[Self::PROBE])?;
        let mut sum = vec![0.0f64; d_model];
        let mut count = 0usize;
        for (row, &real) in out.states.chunks_exact(d_model).zip(&out.mask) {
            if real {
                count += 1;
                sum.iter_mut()
                    .zip(row)
                    .for_each(|(s, &v)| *s += f64::from(v));
            }
        }
        let probe = sum
            .iter()
            .take(Self::PROBE_CHANNELS)
            .map(|s| (s / count.max(1) as f64) as f32)
            .collect();
        Ok(EncoderIdentity {
            max_length: encoder.max_length(),
            d_model,
            vocab_size,
            num_layers: model.encoder.block.len(),
            tokenizer,
            probe,
        })
    }

    /// `Ok` when embeddings made by the encoder `self` describes can stand in
    /// for those of `current`.
    ///
    /// # Errors
    /// [`DataError::CacheMismatch`] naming the first field that differs.
    pub fn check(&self, current: &EncoderIdentity) -> Result<(), DataError> {
        let mismatch = |field: &str, cached: String, current: String| {
            Err(DataError::CacheMismatch {
                field: field.to_string(),
                cached,
                current,
            })
        };
        let fields = [
            ("max_length", self.max_length, current.max_length),
            ("d_model", self.d_model, current.d_model),
            ("vocab_size", self.vocab_size, current.vocab_size),
            ("num_layers", self.num_layers, current.num_layers),
        ];
        for (field, cached, now) in fields {
            if cached != now {
                return mismatch(field, cached.to_string(), now.to_string());
            }
        }
        if self.tokenizer != current.tokenizer {
            return mismatch(
                "tokenizer",
                self.tokenizer.clone(),
                current.tokenizer.clone(),
            );
        }
        if !self.probe_matches(&current.probe) {
            return mismatch(
                "probe (encoder weights)",
                format!("{:?}", self.probe),
                format!("{:?}", current.probe),
            );
        }
        Ok(())
    }

    fn probe_matches(&self, other: &[f32]) -> bool {
        if self.probe.len() != other.len() {
            return false;
        }
        let n = self.probe.len().max(1) as f32;
        let rms = (self.probe.iter().map(|v| v * v).sum::<f32>() / n).sqrt();
        let limit = Self::PROBE_TOLERANCE * rms.max(1e-3);
        self.probe
            .iter()
            .zip(other)
            .all(|(a, b)| (a - b).abs() <= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> EncoderIdentity {
        EncoderIdentity {
            max_length: 16,
            d_model: 4,
            vocab_size: 10,
            num_layers: 2,
            tokenizer: "0123456789abcdef".into(),
            probe: vec![1.0, -1.0, 0.5, 2.0],
        }
    }

    #[test]
    fn tolerates_small_probe_differences_only() {
        let cached = identity();
        let mut close = identity();
        close.probe[0] += 0.01;
        assert!(cached.check(&close).is_ok());
        let mut far = identity();
        far.probe[3] = -2.0;
        let err = cached.check(&far).unwrap_err();
        assert!(err.to_string().contains("probe"), "{err}");
    }

    #[test]
    fn names_the_first_differing_field() {
        let cached = identity();
        let mut other = identity();
        other.max_length = 77;
        other.num_layers = 24;
        match cached.check(&other) {
            Err(DataError::CacheMismatch {
                field,
                cached,
                current,
            }) => assert_eq!(
                (field.as_str(), cached.as_str(), current.as_str()),
                ("max_length", "16", "77")
            ),
            other => panic!("{other:?}"),
        }
    }
}
