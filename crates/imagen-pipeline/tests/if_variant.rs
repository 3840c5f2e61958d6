//! DeepFloyd IF as its repositories publish it: tiny stage I / II directories
//! written by diffusers with `variant="fp16"` only (`unet/diffusion_pytorch_model.fp16.safetensors`,
//! the T5 sharded as `model.fp16-0000k-of-00002.safetensors` with
//! `model.safetensors.index.fp16.json`), run non-square (16x24, then 32x48)
//! with a negative prompt, against diffusers' `IFPipeline` /
//! `IFSuperResolutionPipeline` loaded with `variant="fp16",
//! torch_dtype=float32` (`tools/fixtures/if_variant.py`), replaying its noise.

use burn::tensor::DType;
use imagen_pipeline::{Cascade, CascadeOptions, GenerateRequest, Residency, StageOverrides};

use crate::if_pipeline::{Replay, Trace, fixtures, max_abs};

type B = burn_flex::Flex;

fn trace() -> Trace {
    Trace::named("if_fp16_trace")
}

fn cascade(options: &CascadeOptions) -> Cascade<B> {
    Cascade::from_pretrained_if_with(
        fixtures().join("if_fp16_stage1"),
        Some(&fixtures().join("if_fp16_stage2")),
        options,
        &Default::default(),
    )
    .unwrap()
}

fn request(trace: &Trace) -> GenerateRequest {
    let s1 = &trace.json["stage1"];
    let s2 = &trace.json["stage2"];
    let settings = |s: &serde_json::Value| StageOverrides {
        steps: Some(s["num_inference_steps"].as_u64().unwrap() as usize),
        guidance_scale: Some(s["guidance_scale"].as_f64().unwrap()),
        ..Default::default()
    };
    GenerateRequest::new(trace.json["prompt"].as_str().unwrap())
        .negative(trace.json["negative_prompt"].as_str().unwrap())
        .size(
            s1["height"].as_u64().unwrap() as usize,
            s1["width"].as_u64().unwrap() as usize,
        )
        .stage(0, settings(s1))
        .stage(
            1,
            StageOverrides {
                noise_level: Some(s2["noise_level"].as_u64().unwrap() as usize),
                ..settings(s2)
            },
        )
}

/// Stage I and II match diffusers to 1e-3 max abs (the bound) with
/// the fp16 files computed in f32, found without naming the variant
/// (each directory holds only `fp16`), resident and sequential alike.
#[test]
fn fp16_variant_directories_match_diffusers_non_square_with_a_negative_prompt() {
    let trace = trace();
    for residency in [Residency::Resident, Residency::Sequential] {
        let cascade = cascade(&CascadeOptions::default().residency(residency));
        for report in &cascade.reports {
            assert_eq!(report.variant.as_deref(), Some("fp16"), "{report}");
            assert!(report.variant_inferred, "{report}");
            assert_eq!(report.dtype, DType::F32);
        }
        let text_files = &cascade.reports[0].files;
        assert_eq!(text_files.len(), 2, "two T5 shards: {text_files:?}");
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
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(out.outputs[0].dims(), [1, 3, 16, 24]);
        assert_eq!(out.outputs[1].dims(), [1, 3, 32, 48]);
        let e1 = max_abs(out.outputs[0].clone(), trace.tensor("stage1_output_pt"));
        let e2 = max_abs(out.outputs[1].clone(), trace.tensor("stage2_output_pt"));
        eprintln!("{residency:?}: stage I max abs error {e1:e}, stage II {e2:e}");
        assert!(e1 <= 1e-3, "stage I: {e1}");
        assert!(e2 <= 1e-3, "stage II: {e2}");
    }
}

/// Naming the variant reads the same files; naming one that is absent is an
/// error listing what the directory holds.
#[test]
fn the_variant_can_be_named_and_a_missing_one_is_listed() {
    let named = cascade(&CascadeOptions::default().variant("fp16"));
    assert!(named.reports.iter().all(|r| !r.variant_inferred));
    let err = Cascade::<B>::from_pretrained_if_with(
        fixtures().join("if_fp16_stage1"),
        None,
        &CascadeOptions::default().variant("bf16"),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("bf16") && err.contains("fp16"), "{err}");
}
