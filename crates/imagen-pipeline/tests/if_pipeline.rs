//! The cascade against diffusers' `IFPipeline` + `IFSuperResolutionPipeline`
//! on tiny random IF directories written by `tools/fixtures/if_pipeline.py`,
//! replaying the Gaussian draws diffusers made (recorded in order).

use std::collections::VecDeque;
use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use imagen_diffusion::NoiseSource;
use imagen_pipeline::{Cascade, CascadeOptions, GenerateRequest, PipelineError, StageOverrides};
use safetensors::SafeTensors;

type B = crate::TestBackend;

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub(crate) struct Trace {
    bytes: Vec<u8>,
    pub(crate) json: serde_json::Value,
}

impl Trace {
    pub(crate) fn load() -> Self {
        Self::named("if_trace")
    }

    /// `fixtures/{name}.json` + `.safetensors`.
    pub(crate) fn named(name: &str) -> Self {
        let dir = fixtures();
        Self {
            bytes: std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap(),
            json: serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
            )
            .unwrap(),
        }
    }

    pub(crate) fn tensor<const D: usize>(&self, name: &str) -> Tensor<B, D> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st.tensor(name).unwrap();
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Tensor::from_data(
            TensorData::new(values, view.shape().to_vec()),
            &Default::default(),
        )
    }

    /// The recorded draws of one stage, in order.
    pub(crate) fn noise(&self, stage: &str) -> VecDeque<Tensor<B, 4>> {
        self.json["noise_draws"][stage]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| self.tensor::<4>(d["name"].as_str().unwrap()))
            .collect()
    }
}

/// Hands out recorded tensors in order, checking each shape.
pub(crate) struct Replay(pub(crate) VecDeque<Tensor<B, 4>>);

impl NoiseSource<B> for Replay {
    fn gaussian(&mut self, shape: [usize; 4], _: &burn::tensor::Device<B>) -> Tensor<B, 4> {
        let t = self.0.pop_front().expect("more draws than diffusers made");
        assert_eq!(t.dims(), shape, "draw shape");
        t
    }
}

pub(crate) fn max_abs(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn cascade() -> Cascade<B> {
    Cascade::from_pretrained_if(
        fixtures().join("if_stage1"),
        Some(&fixtures().join("if_stage2")),
        &Default::default(),
    )
    .unwrap()
}

/// The tiny IF cascade on any backend (memory_and_shape.rs keeps burn-flex).
pub(crate) fn if_cascade<C: burn::tensor::backend::Backend>(
    options: &CascadeOptions,
) -> Result<Cascade<C>, PipelineError> {
    Cascade::from_pretrained_if_with(
        fixtures().join("if_stage1"),
        Some(&fixtures().join("if_stage2")),
        options,
        &Default::default(),
    )
}

pub(crate) fn request(trace: &Trace) -> GenerateRequest {
    let s1 = &trace.json["stage1"];
    let s2 = &trace.json["stage2"];
    let settings = |s: &serde_json::Value| StageOverrides {
        steps: Some(s["num_inference_steps"].as_u64().unwrap() as usize),
        guidance_scale: Some(s["guidance_scale"].as_f64().unwrap()),
        ..Default::default()
    };
    GenerateRequest::new(trace.json["prompt"].as_str().unwrap())
        .stage(0, settings(s1))
        .stage(
            1,
            StageOverrides {
                noise_level: Some(s2["noise_level"].as_u64().unwrap() as usize),
                ..settings(s2)
            },
        )
}

/// Stage I matches `IFPipeline` (tolerance 1e-3 max abs, the bound;
/// measured ~1e-6) and stage II `IFSuperResolutionPipeline` (same bound).
#[test]
fn matches_diffusers_if_pipelines_with_their_noise() {
    let trace = Trace::load();
    let cascade = cascade();
    assert_eq!(cascade.stages[0].resolution, 16);
    assert_eq!(cascade.stages[1].resolution, 32);
    let mut steps = Vec::new();
    let out = cascade
        .run_with_noise(
            &request(&trace),
            &mut |stage, _| {
                Box::new(Replay(trace.noise(if stage == 0 {
                    "stage1"
                } else {
                    "stage2"
                })))
            },
            &mut |p| steps.push((p.stage, p.step)),
        )
        .unwrap();
    assert_eq!(
        steps,
        [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3)]
    );
    let e1 = max_abs(out.outputs[0].clone(), trace.tensor("stage1_output_pt"));
    let e2 = max_abs(out.outputs[1].clone(), trace.tensor("stage2_output_pt"));
    eprintln!("stage I max abs error {e1:e}, stage II {e2:e}");
    assert!(e1 <= 1e-3, "stage I: {e1}");
    assert!(e2 <= 1e-3, "stage II: {e2}");
}

#[test]
fn text_embeddings_match_the_pipelines_encode_prompt() {
    let trace = Trace::load();
    let cascade = cascade();
    let prompt = trace.json["prompt"].as_str().unwrap().to_uppercase() + "  ";
    // IF lowercases and trims prompts.
    let emb = cascade.encode(&[prompt]).unwrap().embeddings;
    let want: Tensor<B, 3> = trace.tensor("prompt_embeds");
    let err: f32 = (emb - want).abs().max().into_scalar();
    assert!(err < 1e-4, "{err}");
}

/// The IF-layout cascade run to 64 and 256 pixels (the tiny U-Nets are
/// resolution-agnostic), seeded.
#[test]
fn one_seed_one_result_another_seed_another() {
    let trace = Trace::load();
    let mut cascade = cascade();
    cascade.stages[0].resolution = 64;
    cascade.stages[1].resolution = 256;
    let req = request(&trace).seed(11);
    let a = cascade.run(&req, &mut |_| {}).unwrap();
    let b = cascade.run(&req, &mut |_| {}).unwrap();
    for (x, y) in a.outputs.iter().zip(&b.outputs) {
        assert_eq!(x.clone().into_data(), y.clone().into_data());
    }
    assert_eq!(a.outputs[1].dims(), [1, 3, 256, 256]);
    let c = cascade.run(&req.clone().seed(12), &mut |_| {}).unwrap();
    assert!(max_abs(a.outputs[1].clone(), c.outputs[1].clone()) > 1e-2);
    // Stopping after the base stage gives the same base output.
    let base = cascade
        .run(&req.clone().stop_after(0), &mut |_| {})
        .unwrap();
    assert_eq!(base.outputs.len(), 1);
    assert_eq!(
        base.outputs[0].clone().into_data(),
        a.outputs[0].clone().into_data()
    );
}
