//! What running a cascade too large for memory needs, checked on the tiny IF
//! directories: sequential loading gives the resident result bit for bit,
//! precomputed text states stand in for the text encoder, any aspect ratio
//! the U-Nets divide, IF's named timestep lists, and typed errors for the
//! rest.

use burn::tensor::DType;
use burn_flex::Flex;
use imagen_diffusion::SMART27;
use imagen_pipeline::{
    CascadeOptions, GenerateRequest, PipelineError, Residency, SamplerKind, StageOverrides,
    TextStates,
};
use imagen_weights::{LoadOptions, WeightsError};

use crate::if_pipeline::{Trace, if_cascade, request};

type B = Flex;

fn sequential() -> CascadeOptions {
    CascadeOptions::default().residency(Residency::Sequential)
}

fn bits(out: &imagen_pipeline::StageOutputs<B>) -> Vec<burn::tensor::TensorData> {
    out.outputs.iter().map(|t| t.to_data()).collect()
}

#[test]
fn sequential_loading_gives_the_resident_result_exactly() {
    let trace = Trace::load();
    let req = request(&trace).seed(3).negative("a green triangle");
    let resident = if_cascade::<B>(&CascadeOptions::default()).unwrap();
    let on_demand = if_cascade::<B>(&sequential()).unwrap();
    assert!(resident.text.is_resident());
    assert!(!on_demand.text.is_resident());
    assert!(on_demand.stages.iter().all(|s| !s.unet.is_resident()));
    let a = resident.run(&req, &mut |_| {}).unwrap();
    let b = on_demand.run(&req, &mut |_| {}).unwrap();
    assert_eq!(bits(&a), bits(&b));
    // Reports say where each component came from.
    let names: Vec<&str> = on_demand
        .reports
        .iter()
        .map(|r| r.component.as_str())
        .collect();
    assert_eq!(names, ["text_encoder", "stage1", "stage2"]);
    assert!(on_demand.reports.iter().all(|r| !r.resident));
    assert!(on_demand.reports.iter().all(|r| r.dtype == DType::F32));
}

#[test]
fn precomputed_text_states_replace_the_text_encoder() {
    let trace = Trace::load();
    let cascade = if_cascade::<B>(&sequential()).unwrap();
    let prompt = trace.json["prompt"].as_str().unwrap().to_string();
    let req = request(&trace).seed(5).negative("blurry");
    let from_text = cascade.run(&req, &mut |_| {}).unwrap();

    let cond = TextStates::from_embeddings(&cascade.encode(&[prompt]).unwrap());
    let uncond = TextStates::from_embeddings(&cascade.encode(&["blurry".to_string()]).unwrap());
    let mut cached = GenerateRequest::from_embeddings(cond.clone())
        .negative_prompt_embeds(uncond)
        .seed(5);
    cached.stages = req.stages.clone();
    let from_states = cascade.run(&cached, &mut |_| {}).unwrap();
    assert_eq!(bits(&from_text), bits(&from_states));

    // States of the wrong width, or with NaNs, are refused by name.
    let narrow = TextStates::new(
        burn::tensor::TensorData::new(vec![0.0f32; 77 * 3], [1, 77, 3]),
        None,
    )
    .unwrap();
    let err = cascade
        .run(&GenerateRequest::from_embeddings(narrow), &mut |_| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("prompt_embeds are 3 wide"),
        "{err}"
    );
    let width = cond.width();
    let mut values = vec![0.0f32; 77 * width];
    values[5] = f32::NAN;
    let nan = TextStates::new(burn::tensor::TensorData::new(values, [1, 77, width]), None).unwrap();
    let err = cascade
        .run(&GenerateRequest::from_embeddings(nan), &mut |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}

#[test]
fn non_square_sizes_scale_through_the_cascade() {
    let trace = Trace::load();
    let cascade = if_cascade::<B>(&CascadeOptions::default()).unwrap();
    let out = cascade
        .run(&request(&trace).size(16, 24), &mut |_| {})
        .unwrap();
    assert_eq!(out.outputs[0].dims(), [1, 3, 16, 24]);
    assert_eq!(out.outputs[1].dims(), [1, 3, 32, 48]);
}

#[test]
fn a_size_the_unet_cannot_take_names_the_factor() {
    let trace = Trace::load();
    let cascade = if_cascade::<B>(&CascadeOptions::default()).unwrap();
    let factor = cascade.stages[0].unet_config.downsampling_factor();
    let err = cascade
        .run(&request(&trace).size(16, factor * 3 + 1), &mut |_| {})
        .unwrap_err();
    match &err {
        PipelineError::Size {
            stage,
            factor: f,
            width,
            ..
        } => {
            assert_eq!(stage, "stage1");
            assert_eq!(*f, factor);
            assert_eq!(*width, factor * 3 + 1);
        }
        other => panic!("expected a size error, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("multiples of {factor}")));
}

#[test]
fn named_timestep_lists_run_per_stage() {
    let trace = Trace::load();
    let cascade = if_cascade::<B>(&CascadeOptions::default()).unwrap();
    let req = request(&trace).stop_after(0).stage(
        0,
        StageOverrides {
            timesteps: Some(SMART27.to_vec()),
            ..Default::default()
        },
    );
    let mut totals = Vec::new();
    cascade.run(&req, &mut |p| totals.push(p.total)).unwrap();
    assert_eq!(totals.len(), 27);
    assert!(totals.iter().all(|&t| t == 27));

    // DDIM takes evenly spaced steps only: a typed error, before sampling.
    let ddim = request(&trace).stop_after(0).stage(
        0,
        StageOverrides {
            timesteps: Some(SMART27.to_vec()),
            sampler: Some(SamplerKind::Ddim {
                eta: 0.0,
                clipped_model_output: false,
            }),
            ..Default::default()
        },
    );
    let err = cascade.run(&ddim, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("DDIM"), "{err}");
}

#[test]
fn a_dtype_the_backend_cannot_compute_in_is_a_typed_error() {
    let options = CascadeOptions::default().text(LoadOptions::default().dtype(DType::I32));
    match if_cascade::<B>(&options) {
        Err(PipelineError::Weights(WeightsError::UnsupportedComputeDtype { dtype, .. })) => {
            assert!(dtype.contains("I32"), "{dtype}")
        }
        other => panic!("expected UnsupportedComputeDtype, got {other:?}"),
    }
}

#[test]
fn a_variant_that_is_not_there_fails_at_load() {
    let options = sequential().variant("fp8");
    let err = if_cascade::<B>(&options).unwrap_err();
    assert!(err.to_string().contains("fp8"), "{err}");
}
