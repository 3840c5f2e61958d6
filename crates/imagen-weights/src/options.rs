//! How a component is loaded from its directory: which weight files, in which
//! compute dtype. Shared by every loader of the `imagen-*` crates.

use burn::tensor::DType;
use burn::tensor::backend::Backend;

use crate::WeightsError;

/// Which weight files of a directory to read and the dtype to compute in.
///
/// Hugging Face repositories often hold the same weights more than once:
/// `diffusion_pytorch_model.safetensors` beside
/// `diffusion_pytorch_model.fp16.safetensors`, or a T5 sharded as
/// `model.fp16-00001-of-00002.safetensors` ... with
/// `model.safetensors.index.fp16.json`. The *variant* (`"fp16"`) picks one set;
/// the *dtype* is what the module computes in, whatever dtype the files hold
/// (each tensor is converted once, as it is read).
///
/// ```
/// use burn::tensor::DType;
/// use imagen_weights::LoadOptions;
/// let options = LoadOptions::default().variant("fp16").dtype(DType::BF16);
/// assert_eq!(options.variant.as_deref(), Some("fp16"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// Weight-file variant (`"fp16"` reads `{stem}.fp16.safetensors` or
    /// `{stem}.safetensors.index.fp16.json`). `None`: the plain files, or the
    /// only variant the directory holds.
    pub variant: Option<String>,
    /// Compute dtype (f32, f16 or bf16). `None`: the backend's default float
    /// type.
    pub dtype: Option<DType>,
}

impl LoadOptions {
    /// Reads the weight files of `variant`.
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Computes in `dtype`.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// The compute dtype on backend `B`: [`LoadOptions::dtype`], or `B`'s
    /// default float type. Fails when it is not a float dtype or the backend
    /// cannot hold it on `device`.
    pub fn resolve_dtype<B: Backend>(&self, device: &B::Device) -> Result<DType, WeightsError> {
        let dtype = self
            .dtype
            .unwrap_or_else(<B::FloatElem as burn::tensor::Element>::dtype);
        check_dtype::<B>(dtype, device)?;
        Ok(dtype)
    }
}

/// Fails unless `dtype` is f32, f16 or bf16 and the backend holds it on `device`.
pub fn check_dtype<B: Backend>(dtype: DType, device: &B::Device) -> Result<(), WeightsError> {
    let float = matches!(dtype, DType::F32 | DType::F16 | DType::BF16);
    if !float || !B::supports_dtype(device, dtype) {
        return Err(WeightsError::UnsupportedComputeDtype {
            dtype: format!("{dtype:?}"),
            backend: B::name(device),
        });
    }
    Ok(())
}
