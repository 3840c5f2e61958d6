//! Our own cascade format and the request / error paths, on a tiny cascade of
//! the paper presets (IF fixture text encoder, random U-Nets).

use std::path::PathBuf;

use burn_flex::Flex;
use image::{GrayImage, Luma, Rgb, RgbImage};
use imagen_diffusion::SchedulerConfig;
use imagen_pipeline::{
    Cascade, Edit, GenerateRequest, PipelineError, SamplerKind, Stage, StageOverrides,
    StageSettings, StageUNet, TextSource,
};
use imagen_text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen_unet::UNetConfig;

type B = Flex;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn scheduler() -> SchedulerConfig {
    serde_json::from_str(
        r#"{"beta_schedule": "squaredcos_cap_v2", "prediction_type": "epsilon",
            "variance_type": "fixed_small", "thresholding": true,
            "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5}"#,
    )
    .unwrap()
}

fn stage(
    name: &str,
    config: UNetConfig,
    resolution: usize,
    noise_level: Option<usize>,
) -> Stage<B> {
    Stage {
        name: name.into(),
        unet: StageUNet::Resident(config.init(&Default::default()).unwrap()),
        unet_config: config,
        scheduler: scheduler(),
        noising: None,
        resolution,
        defaults: StageSettings {
            steps: 3,
            guidance_scale: 3.0,
            sampler: SamplerKind::Ddpm,
            noise_level,
            guidance_interval: None,
            high_noise_guidance: None,
        },
    }
}

fn text_encoder() -> (TextEncoder<B>, TextSource) {
    let dir = fixtures().join("if_stage1");
    let source = TextSource {
        model_dir: dir.join("text_encoder"),
        tokenizer: dir.join("tokenizer/tokenizer.json"),
    };
    let device = Default::default();
    let enc = TextEncoder::new(
        T5Tokenizer::from_file(&source.tokenizer).unwrap(),
        T5Encoder::from_dir(&source.model_dir, &device).unwrap(),
        &device,
    )
    .with_max_length(16);
    (enc, source)
}

fn tiny_cascade() -> Cascade<B> {
    let (text, source) = text_encoder();
    let stages = vec![
        stage("base", UNetConfig::tiny_base(32), 64, None),
        stage("sr", UNetConfig::tiny_sr(32), 256, Some(100)),
    ];
    let mut c = Cascade::new(text, stages, &Default::default()).unwrap();
    c.text_source = Some(source);
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imagen-pipeline-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

#[test]
fn runs_both_stages_deterministically_and_round_trips_through_save_load() {
    let cascade = tiny_cascade();
    let req = GenerateRequest::batch(["a red circle", "two blue squares"]).seed(5);
    let mut reports = 0;
    let a = cascade.generate(&req, &mut |_| reports += 1).unwrap();
    assert_eq!(reports, 6);
    assert_eq!(a.images.len(), 2);
    assert_eq!(a.images[0].dimensions(), (256, 256));
    let b = cascade.generate(&req, &mut |_| {}).unwrap();
    assert_eq!(a.images, b.images, "one seed, one result");
    let c = cascade.generate(&req.clone().seed(6), &mut |_| {}).unwrap();
    assert_ne!(a.images, c.images, "another seed, another result");

    let dir = temp_dir("save");
    cascade.save(&dir, None).unwrap();
    let loaded = Cascade::<B>::load(&dir, &Default::default()).unwrap();
    let d = loaded.generate(&req, &mut |_| {}).unwrap();
    assert_eq!(a.images, d.images, "save + load changes nothing");
    std::fs::remove_dir_all(&dir).ok();
}

/// A downloaded manifest must not make the loader read files outside its
/// directory, nor a stage name make `save` write outside it; an unknown
/// manifest version is refused rather than misread.
#[test]
fn manifests_that_escape_their_directory_or_come_from_the_future_are_refused() {
    let mut cascade = tiny_cascade();
    let dir = temp_dir("hostile-manifest");
    cascade.save(&dir, None).unwrap();
    let manifest_path = dir.join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let load_err = |text: &str| {
        std::fs::write(&manifest_path, text).unwrap();
        Cascade::<B>::load(&dir, &Default::default())
            .unwrap_err()
            .to_string()
    };
    for (from, to) in [
        ("\"unet\": \"base/unet\"", "\"unet\": \"../../etc\""),
        ("\"unet\": \"base/unet\"", "\"unet\": \"/etc\""),
        ("\"dir\": \"text_encoder\"", "\"dir\": \"../text_encoder\""),
        (
            "\"scheduler\": \"base/scheduler_config.json\"",
            "\"scheduler\": \"base/../../x.json\"",
        ),
    ] {
        assert!(original.contains(from), "{from}");
        let msg = load_err(&original.replace(from, to));
        assert!(
            msg.contains("must be relative and stay inside"),
            "{to}: {msg}"
        );
    }
    let msg = load_err(&original.replace("\"version\": 1", "\"version\": 2"));
    assert!(msg.contains("manifest version 2"), "{msg}");
    std::fs::write(&manifest_path, &original).unwrap();
    Cascade::<B>::load(&dir, &Default::default()).unwrap();

    cascade.stages[0].name = "../escaped".into();
    let msg = cascade.save(&dir, None).unwrap_err().to_string();
    assert!(msg.contains("stage name"), "{msg}");
    assert!(!dir.join("../escaped").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn per_call_overrides_and_other_samplers_run() {
    let cascade = tiny_cascade();
    for sampler in [
        SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: false,
        },
        SamplerKind::Ddim {
            eta: 0.0,
            clipped_model_output: true,
        },
        SamplerKind::DpmSolver,
    ] {
        let req = GenerateRequest::new("a star").stop_after(0).stage(
            0,
            StageOverrides {
                steps: Some(4),
                guidance_scale: Some(1.0),
                sampler: Some(sampler),
                ..Default::default()
            },
        );
        let out = cascade.run(&req, &mut |_| {}).unwrap();
        assert_eq!(out.outputs[0].dims(), [1, 3, 64, 64]);
    }
}

#[test]
fn img2img_and_inpainting_start_from_the_image() {
    let cascade = tiny_cascade();
    let image = RgbImage::from_fn(64, 64, |x, _| {
        if x < 32 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    // Keep the left half, regenerate the right half.
    let mask = GrayImage::from_fn(64, 64, |x, _| Luma([if x < 32 { 0 } else { 255 }]));
    let inpaint = GenerateRequest::new("a circle")
        .stop_after(0)
        .edit(Edit::Inpaint {
            image: image.clone(),
            mask,
            strength: 1.0,
        });
    let out = cascade.generate(&inpaint, &mut |_| {}).unwrap();
    for y in 0..64 {
        for x in 0..31 {
            assert_eq!(
                out.images[0].get_pixel(x, y),
                &Rgb([255, 0, 0]),
                "({x}, {y})"
            );
        }
    }
    let mut steps = 0;
    let img2img = GenerateRequest::new("a circle")
        .stop_after(0)
        .edit(Edit::Img2Img {
            image,
            strength: 0.34,
        });
    cascade.generate(&img2img, &mut |_| steps += 1).unwrap();
    assert_eq!(steps, 1, "strength 0.34 of 3 steps runs the last one");
}

#[test]
fn bad_requests_and_directories_are_typed_errors_naming_the_problem() {
    let cascade = tiny_cascade();
    let err = |r: Result<_, PipelineError>| {
        r.map(|_: imagen_pipeline::Generated| ())
            .unwrap_err()
            .to_string()
    };

    assert!(
        err(cascade.generate(&GenerateRequest::batch(Vec::<String>::new()), &mut |_| {}))
            .contains("no prompts")
    );
    let zero = GenerateRequest::new("x").stage(
        1,
        StageOverrides {
            steps: Some(0),
            ..Default::default()
        },
    );
    let msg = err(cascade.generate(&zero, &mut |_| {}));
    assert!(msg.contains("zero steps") && msg.contains("sr"), "{msg}");
    let msg = err(cascade.generate(&GenerateRequest::new("x").stop_after(5), &mut |_| {}));
    assert!(msg.contains("stop_after"), "{msg}");

    // A U-Net reading 24-wide text behind a 32-wide encoder.
    let (text, _) = text_encoder();
    let msg = Cascade::new(
        text,
        vec![stage("base", UNetConfig::tiny_base(24), 16, None)],
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("base") && msg.contains("24") && msg.contains("32"),
        "{msg}"
    );

    // Missing unet directory in an IF stage.
    let dir = temp_dir("missing-unet");
    copy_dir(&fixtures().join("if_stage1"), &dir);
    std::fs::remove_dir_all(dir.join("unet")).unwrap();
    let msg = Cascade::<B>::from_pretrained_if(&dir, None, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unet"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();

    let msg = Cascade::<B>::load("/no/such/cascade", &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/no/such/cascade"), "{msg}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
