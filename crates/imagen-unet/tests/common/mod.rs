//! Fixture readers shared by the parity tests (files from `tools/fixtures/unet.py`).
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use burn_flex::Flex;
use safetensors::SafeTensors;

/// The backend of the GPU parity tests (`unet::`, `precision::`), chosen by
/// this crate's features; the other tests run on burn-flex whatever is on.
#[cfg(feature = "cuda")]
pub type TestBackend = burn::backend::Cuda;
/// The backend of the GPU parity tests (`unet::`, `precision::`), chosen by
/// this crate's features; the other tests run on burn-flex whatever is on.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type TestBackend = burn::backend::Wgpu;
/// The backend of the GPU parity tests (`unet::`, `precision::`), chosen by
/// this crate's features; the other tests run on burn-flex whatever is on.
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
pub type TestBackend = burn::backend::NdArray;
/// The backend of the GPU parity tests (`unet::`, `precision::`), chosen by
/// this crate's features; the other tests run on burn-flex whatever is on.
#[cfg(not(any(feature = "wgpu", feature = "ndarray", feature = "cuda")))]
pub type TestBackend = Flex;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `units.json`: what each unit fixture recorded.
pub fn units() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("units.json")).unwrap()).unwrap()
}

/// A recorded safetensors file.
pub struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    pub fn open(name: &str) -> Self {
        Self {
            bytes: std::fs::read(fixtures().join(name)).unwrap(),
        }
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).unwrap()
    }

    pub fn floats(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        let st = self.st();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), v)
    }

    pub fn ints(&self, key: &str) -> (Vec<usize>, Vec<i64>) {
        let st = self.st();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        let v = t
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), v)
    }

    pub fn tensor<const D: usize>(&self, key: &str) -> Tensor<Flex, D> {
        self.tensor_on(key, &Default::default())
    }

    /// A recorded f32 tensor on `device` of any backend.
    pub fn tensor_on<B: Backend, const D: usize>(
        &self,
        key: &str,
        device: &B::Device,
    ) -> Tensor<B, D> {
        let (shape, v) = self.floats(key);
        Tensor::from_data(burn::tensor::TensorData::new(v, shape), device)
    }
}

/// Largest absolute difference from the recorded values (shapes must match).
pub fn max_abs_err<B: Backend, const D: usize>(
    got: Tensor<B, D>,
    want: &(Vec<usize>, Vec<f32>),
) -> f32 {
    assert_eq!(got.dims().to_vec(), want.0, "shape");
    let got: Vec<f32> = got.into_data().convert::<f32>().to_vec().unwrap();
    got.iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

/// The conditioning of a U-Net `*_io` fixture: timesteps, the class labels
/// (noise levels, when `has_class`) and the text mask.
pub fn conditioning<B: Backend>(
    io: &Fixture,
    has_class: bool,
    device: &B::Device,
) -> (Vec<f32>, Option<Vec<f32>>, Tensor<B, 2, Bool>) {
    let floats = |key: &str| io.ints(key).1.iter().map(|&v| v as f32).collect();
    let timesteps = floats("timestep");
    let labels = has_class.then(|| floats("class_labels"));
    let (shape, m) = io.ints("encoder_attention_mask");
    let mask = Tensor::from_data(
        TensorData::new(m.iter().map(|&v| v != 0).collect::<Vec<_>>(), shape),
        device,
    );
    (timesteps, labels, mask)
}
