//! Dtype plumbing of a half-precision encoder: casts that skip no-ops, the
//! promotion rule of a residual add, the backend's default float dtype.
//!
//! transformers loads T5 in f16 with its `wo` projections kept in f32, so a
//! forward pass mixes dtypes the way PyTorch's type promotion decides. burn's
//! binary ops want equal dtypes; these helpers make the promotions explicit.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, get_device_settings};

/// `x` in `dtype` (no copy when it already is).
pub(crate) fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype { x } else { x.cast(dtype) }
}

/// The float dtype tensors are created in on `device` unless told otherwise
/// (burn's device settings; f32 on every backend's defaults).
pub(crate) fn default_float_dtype<B: Backend>(device: &B::Device) -> DType {
    get_device_settings::<B>(device).float_dtype.into()
}

/// `a + b` with PyTorch's promotion: equal dtypes add as they are; otherwise
/// both go to the wider of the two (f16 + f32 → f32, as the residual stream
/// of transformers' f16 T5 after its f32 `wo`; f16 + bf16 → f32).
pub(crate) fn add_promoted<B: Backend, const D: usize>(
    a: Tensor<B, D>,
    b: Tensor<B, D>,
) -> Tensor<B, D> {
    let (da, db) = (a.dtype(), b.dtype());
    if da == db {
        return a + b;
    }
    let wide = if da == DType::F64 || db == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    to_dtype(a, wide) + to_dtype(b, wide)
}
