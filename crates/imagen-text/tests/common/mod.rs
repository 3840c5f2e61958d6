//! Shared helpers for the parity tests: the backend under test and fixture readers.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use safetensors::SafeTensors;

/// The backend the tests run on, chosen by this crate's features.
#[cfg(feature = "wgpu")]
pub type TestBackend = burn::backend::Wgpu;
/// The backend the tests run on, chosen by this crate's features.
#[cfg(all(feature = "ndarray", not(feature = "wgpu")))]
pub type TestBackend = burn::backend::NdArray;
/// The backend the tests run on, chosen by this crate's features.
#[cfg(not(any(feature = "wgpu", feature = "ndarray")))]
pub type TestBackend = burn_flex::Flex;

pub type Device = burn::tensor::Device<TestBackend>;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A recorded `*_io.safetensors`: inputs and reference outputs.
pub struct Recording {
    bytes: Vec<u8>,
}

impl Recording {
    pub fn open(name: &str) -> Self {
        let bytes = std::fs::read(fixtures().join(name)).expect("fixture file");
        Self { bytes }
    }

    fn view(&self, key: &str) -> (Vec<usize>, safetensors::Dtype, Vec<u8>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        (t.shape().to_vec(), t.dtype(), t.data().to_vec())
    }

    pub fn f32(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        let (shape, dtype, data) = self.view(key);
        assert_eq!(dtype, safetensors::Dtype::F32);
        let v = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    }

    pub fn i64(&self, key: &str) -> (Vec<usize>, Vec<i64>) {
        let (shape, dtype, data) = self.view(key);
        assert_eq!(dtype, safetensors::Dtype::I64);
        let v = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    }

    /// `input_ids` and the boolean mask from `attention_mask`.
    pub fn inputs<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Bool>) {
        let (shape, ids) = self.i64("input_ids");
        let (_, mask) = self.i64("attention_mask");
        let mask: Vec<bool> = mask.iter().map(|&m| m != 0).collect();
        (
            Tensor::from_data(
                TensorData::new(ids, shape.clone()).convert::<B::IntElem>(),
                device,
            ),
            Tensor::from_data(TensorData::new(mask, shape), device),
        )
    }
}

/// Largest absolute difference between `actual` and the recorded `expected`.
pub fn max_abs_diff<B: Backend, const D: usize>(
    actual: Tensor<B, D>,
    expected: &(Vec<usize>, Vec<f32>),
) -> f32 {
    assert_eq!(actual.dims().to_vec(), expected.0, "shape");
    let actual: Vec<f32> = actual.into_data().convert::<f32>().to_vec().unwrap();
    actual
        .iter()
        .zip(&expected.1)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}
