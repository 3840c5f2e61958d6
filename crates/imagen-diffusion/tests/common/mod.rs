//! Fixture readers for the diffusers traces recorded by `tools/fixtures/schedulers.py`.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use imagen_diffusion::{NoiseSource, SchedulerConfig, StepOutput};
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

/// Largest absolute value.
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// A diffusers trajectory recorded by `tools/fixtures/schedulers.py`.
pub struct Recorded {
    pub case: String,
    pub meta: serde_json::Value,
    pub trace: Trace,
    /// The timesteps diffusers visited.
    pub timesteps: Vec<usize>,
}

impl Recorded {
    pub fn open(case: &str) -> Self {
        let meta = json(&format!("{case}.json"));
        let timesteps = serde_json::from_value(meta["timesteps"].clone()).unwrap();
        Self {
            case: case.to_string(),
            trace: Trace::open(&format!("{case}.safetensors")),
            meta,
            timesteps,
        }
    }

    /// The scheduler config diffusers ran with.
    pub fn config(&self) -> SchedulerConfig {
        serde_json::from_value(self.meta["config"].clone()).unwrap()
    }

    /// The explicit timestep list, if the run used one.
    pub fn custom_timesteps(&self) -> Option<Vec<usize>> {
        self.meta["custom_timesteps"]
            .as_array()
            .map(|l| l.iter().map(|v| v.as_u64().unwrap() as usize).collect())
    }

    /// `num_inference_steps` of `set_timesteps(n)` runs.
    pub fn num_inference_steps(&self) -> usize {
        self.meta["num_inference_steps"].as_u64().unwrap() as usize
    }

    /// Replays every step: `step(i, model_output, t, sample, noise)` gets
    /// diffusers' inputs (the recorded noise where diffusers drew some) and
    /// its `prev_sample` and `pred_original_sample` must be within `tol`, or
    /// within `tol * max(1, max |expected|)` when `relative`. Each step starts
    /// from diffusers' own sample so that errors do not compound. Returns the
    /// worst absolute and scaled errors.
    pub fn replay(
        &self,
        tol: f32,
        relative: bool,
        mut step: impl FnMut(
            usize,
            Tensor<TestBackend, 4>,
            usize,
            Tensor<TestBackend, 4>,
            &mut RecordedNoise,
        ) -> StepOutput<TestBackend>,
    ) -> (f32, f32) {
        let case = &self.case;
        let mut sample = self.trace.tensor("sample_0");
        let (mut worst_abs, mut worst_rel) = (0.0f32, 0.0f32);
        for (i, &t) in self.timesteps.iter().enumerate() {
            let key = format!("noise_{i}");
            let mut noise = RecordedNoise {
                next: self.trace.has(&key).then(|| self.trace.tensor(&key)),
            };
            let out = step(
                i,
                self.trace.tensor(&format!("model_output_{i}")),
                t,
                sample,
                &mut noise,
            );
            assert!(
                noise.next.is_none(),
                "{case} step {i}: recorded noise was not used"
            );
            for (name, actual) in [
                ("prev_sample", out.prev_sample),
                ("pred_original_sample", out.pred_original_sample),
            ] {
                let expected = self.trace.f32(&format!("{name}_{i}"));
                let scale = max_abs(&expected.1).max(1.0);
                let err = max_abs_diff(actual, &expected);
                let bound = if relative { tol * scale } else { tol };
                assert!(
                    err <= bound,
                    "{case} step {i} (t={t}) {name}: max abs error {err:e} > {bound:e}"
                );
                worst_abs = worst_abs.max(err);
                worst_rel = worst_rel.max(err / scale);
            }
            sample = self.trace.tensor(&format!("prev_sample_{i}"));
        }
        eprintln!(
            "{case}: {} steps, max abs error {worst_abs:e}, max error / max(1, |expected|) {worst_rel:e}",
            self.timesteps.len()
        );
        (worst_abs, worst_rel)
    }
}
