//! Text states computed ahead of time (diffusers' `prompt_embeds` /
//! `negative_prompt_embeds`): encode once, elsewhere, or from a cache, and
//! hand the result to any number of requests.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor, TensorData};
use imagen_text::TextEmbeddings;

use crate::PipelineError;
use crate::error::invalid;

/// Per-token text states of `n` prompts, backend-independent.
///
/// ```
/// use burn::tensor::TensorData;
/// use imagen_pipeline::TextStates;
/// // Two prompts, 4 tokens, 8 wide; every token real.
/// let states = TextStates::new(TensorData::new(vec![0.0f32; 2 * 4 * 8], [2, 4, 8]), None)?;
/// assert_eq!(states.len(), 2);
/// # Ok::<(), imagen_pipeline::PipelineError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TextStates {
    states: TensorData,
    mask: Option<TensorData>,
}

impl TextStates {
    /// `states`: `[n, L, d_model]` floats (T5's `last_hidden_state`);
    /// `mask`: `[n, L]` bools, `true` for real tokens (`None`: all real, as
    /// diffusers' `prompt_embeds`, which carry no mask).
    pub fn new(states: TensorData, mask: Option<TensorData>) -> Result<Self, PipelineError> {
        let shape = states.shape.clone();
        if shape.len() != 3 || shape.contains(&0) {
            return Err(invalid(format!(
                "text states must be [prompts, tokens, width] with no empty axis, got {shape:?}"
            )));
        }
        if !matches!(
            states.dtype,
            DType::F32 | DType::F16 | DType::BF16 | DType::F64
        ) {
            return Err(invalid(format!(
                "text states must be floats, got {:?}",
                states.dtype
            )));
        }
        if let Some(mask) = &mask {
            if mask.shape.as_slice() != &shape[..2] {
                return Err(invalid(format!(
                    "text mask shape {:?} does not match text states {shape:?}",
                    mask.shape
                )));
            }
            if !matches!(mask.dtype, DType::Bool(_)) {
                return Err(invalid(format!(
                    "text mask must be bool, got {:?}",
                    mask.dtype
                )));
            }
        }
        Ok(Self { states, mask })
    }

    /// The states of an encoder's output (embeddings and mask read back).
    pub fn from_embeddings<B: Backend>(embeddings: &TextEmbeddings<B>) -> Self {
        Self {
            states: embeddings.embeddings.to_data(),
            mask: Some(embeddings.mask.to_data()),
        }
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.states.shape[0]
    }

    /// Whether there are no prompts (never true for a value built by
    /// [`TextStates::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tokens per prompt.
    pub fn tokens(&self) -> usize {
        self.states.shape[1]
    }

    /// Width (`d_model`).
    pub fn width(&self) -> usize {
        self.states.shape[2]
    }

    /// The states `[n, L, d]` in the backend's float type and the mask `[n, L]`.
    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 2, Bool>) {
        let float = <B::FloatElem as burn::tensor::Element>::dtype();
        let states = Tensor::from_data(self.states.clone().convert_dtype(float), device);
        let [n, l, _] = states.dims();
        let mask = match &self.mask {
            Some(m) => Tensor::from_data(m.clone(), device),
            None => Tensor::<B, 2, burn::tensor::Int>::ones([n, l], device).equal_elem(1),
        };
        (states, mask)
    }

    /// Checks that these states are NaN- and infinity-free (a cache gone bad
    /// should fail loudly, not sample noise).
    pub(crate) fn check_finite(&self, what: &str) -> Result<(), PipelineError> {
        let values = self
            .states
            .clone()
            .convert_dtype(DType::F32)
            .to_vec::<f32>()
            .map_err(|e| invalid(format!("{what}: unreadable text states: {e:?}")))?;
        match values.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(invalid(format!(
                "{what}: text states hold a non-finite value ({}) at flat index {i}",
                values[i]
            ))),
            None => Ok(()),
        }
    }
}
