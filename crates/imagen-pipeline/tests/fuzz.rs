//! Bad input at scale for `Cascade::load` (issue 39, part 3): the cascade
//! `manifest.json` (hostile paths, wrong versions, huge sizes...) and the
//! per-stage JSON it points to (scheduler configs, U-Net configs, the T5
//! config), on a tiny two-stage cascade the test saves first (the IF fixture
//! text encoder, the paper presets' tiny U-Nets). The weight files
//! themselves are the weights, text and U-Net targets' business. See
//! `fuzz_support` (in imagen-weights' tests) for the mutations and checks
//! and `docs/robustness.md` for the ten-minute runs.

#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn_flex::Flex;
use fuzz_support::{Target, run};
use imagen_diffusion::SchedulerConfig;
use imagen_pipeline::{Cascade, SamplerKind, Stage, StageSettings, StageUNet, TextSource};
use imagen_text::{T5Encoder, T5Tokenizer, TextEncoder};
use imagen_unet::UNetConfig;

type B = Flex;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

fn stage(name: &str, config: UNetConfig, resolution: usize, noise: Option<usize>) -> Stage<B> {
    let scheduler: SchedulerConfig = serde_json::from_str(
        r#"{"beta_schedule": "squaredcos_cap_v2", "variance_type": "learned_range",
            "thresholding": true, "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5}"#,
    )
    .unwrap();
    Stage {
        name: name.into(),
        unet: StageUNet::Resident(config.init(&Default::default()).unwrap()),
        unet_config: config,
        scheduler: scheduler.clone(),
        noising: noise.map(|_| scheduler),
        resolution,
        defaults: StageSettings {
            steps: 3,
            guidance_scale: 3.0,
            sampler: SamplerKind::Ddpm,
            noise_level: noise,
            guidance_interval: None,
            high_noise_guidance: None,
        },
    }
}

/// Saves the tiny cascade; returns its directory.
fn saved_cascade() -> PathBuf {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/if_stage1");
    let source = TextSource {
        model_dir: fixtures.join("text_encoder"),
        tokenizer: fixtures.join("tokenizer/tokenizer.json"),
    };
    let device = Default::default();
    let text = TextEncoder::new(
        T5Tokenizer::from_file(&source.tokenizer).unwrap(),
        T5Encoder::from_dir(&source.model_dir, &device).unwrap(),
        &device,
    )
    .with_max_length(16);
    let stages = vec![
        stage("base", UNetConfig::tiny_base(32), 64, None),
        stage("sr", UNetConfig::tiny_sr(32), 256, Some(100)),
    ];
    let mut cascade = Cascade::new(text, stages, &device).unwrap();
    cascade.text_source = Some(source);
    let dir = std::env::temp_dir().join(format!("imagen-pipeline-fuzz-src-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    cascade.save(&dir, None).unwrap();
    dir
}

/// Every `.json` file under `dir` but the tokenizer (its own target).
fn json_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            json_files(&e.path(), &format!("{name}/"), out);
        } else if name.ends_with(".json") && !name.ends_with("tokenizer.json") {
            out.push(name);
        }
    }
}

/// A config that loads but describes other weights names the tensor key
/// (see the U-Net and text targets); a T5 config and a U-Net config that
/// disagree on the text width name the stage and both widths: neither file
/// alone is at fault.
fn accepts(msg: &str) -> bool {
    msg.starts_with("tensor `") || msg.contains("reads text states")
}

#[test]
fn fuzz_cascade_load() {
    let dir = saved_cascade();
    let mut list = Vec::new();
    json_files(&dir, "", &mut list);
    assert!(list.iter().any(|f| f == "manifest.json"), "{list:?}");
    let mut target = Target::new("cascade_load", &dir, &[], corpus(), |dir| {
        Cascade::<B>::load(dir, &Default::default())?;
        Ok(())
    })
    .accept(accepts)
    .ci_cases(60);
    target.files = list;
    run(target);
}
