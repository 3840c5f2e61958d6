//! Fixture readers for the diffusers traces recorded by `tools/fixtures/schedulers.py`.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use imagen_diffusion::NoiseSource;
use safetensors::SafeTensors;

pub type TestBackend = burn_flex::Flex;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

pub struct Trace {
    bytes: Vec<u8>,
}

impl Trace {
    pub fn open(name: &str) -> Self {
        Self {
            bytes: std::fs::read(fixtures().join(name)).unwrap(),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .tensor(key)
            .is_ok()
    }

    pub fn f32(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{key}");
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (t.shape().to_vec(), v)
    }

    pub fn f64(&self, key: &str) -> Vec<f64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        assert_eq!(t.dtype(), safetensors::Dtype::F64, "{key}");
        t.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn i64(&self, key: &str) -> Vec<i64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("fixture key {key}"));
        t.data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn tensor(&self, key: &str) -> Tensor<TestBackend, 4> {
        let (shape, v) = self.f32(key);
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }
}

pub fn max_abs_diff(actual: Tensor<TestBackend, 4>, expected: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(actual.dims().to_vec(), expected.0);
    let a: Vec<f32> = actual.into_data().to_vec().unwrap();
    a.iter()
        .zip(&expected.1)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

/// Replays the noise diffusers drew, in order, and fails if a step asks for
/// noise where diffusers drew none.
pub struct RecordedNoise {
    pub next: Option<Tensor<TestBackend, 4>>,
}

impl NoiseSource<TestBackend> for RecordedNoise {
    fn gaussian(
        &mut self,
        shape: [usize; 4],
        _device: &burn_flex::FlexDevice,
    ) -> Tensor<TestBackend, 4> {
        let t = self
            .next
            .take()
            .expect("the step drew noise where diffusers drew none");
        assert_eq!(t.dims(), shape);
        t
    }
}
