//! Running the frozen text encoder and reading its outputs back to the host.

use burn::tensor::backend::Backend;
use imagen_text::TextEncoder;

use crate::data::DataError;

/// Host copies of one encoder call.
pub(crate) struct Encoded {
    /// `[batch * max_length * d_model]` f32, row-major.
    pub states: Vec<f32>,
    /// `[batch * max_length]`, `true` for real tokens.
    pub mask: Vec<bool>,
    /// Indices (in the call) of captions cut to `max_length`.
    pub truncated: Vec<usize>,
}

/// Encodes `captions` in one forward pass and copies the results to the host.
pub(crate) fn encode<B: Backend>(
    encoder: &TextEncoder<B>,
    captions: &[&str],
) -> Result<Encoded, DataError> {
    let out = encoder.encode(captions)?;
    let rows = captions.len() * encoder.max_length();
    let states = out
        .embeddings
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| DataError::Tensor {
            reason: format!("text states: {e:?}"),
        })?;
    let mask = out
        .mask
        .int()
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| DataError::Tensor {
            reason: format!("attention mask: {e:?}"),
        })?;
    if mask.len() != rows || states.len() % rows.max(1) != 0 {
        return Err(DataError::Tensor {
            reason: format!(
                "the encoder returned {} mask and {} state values for {} captions of {} tokens",
                mask.len(),
                states.len(),
                captions.len(),
                encoder.max_length()
            ),
        });
    }
    Ok(Encoded {
        states,
        mask: mask.into_iter().map(|m| m != 0).collect(),
        truncated: out.truncated.iter().map(|t| t.index).collect(),
    })
}
