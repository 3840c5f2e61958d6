//! Bad input at scale for imagen-train's loaders of user files (issue 39,
//! part 3): a training checkpoint directory (`Trainer::resume`: state.json,
//! the model and EMA U-Nets, the optimiser moments) and the text-embedding
//! cache (`EmbeddingCache::open` and reads: its index and shards). The valid
//! files are written by the test (a tiny U-Net trained zero steps; the cache
//! of a few captions with the tiny T5 fixture). See `fuzz_support` (in
//! imagen-weights' tests) for the mutations and checks and
//! `docs/robustness.md` for the ten-minute runs.

use crate::data_support;
#[path = "../../imagen-weights/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn_flex::Flex;
use data_support::{Captions, tiny_encoder};
use fuzz_support::{Target, run};
use imagen_train::data::{EmbeddingCache, EmbeddingCacheConfig};
use imagen_train::{StageKind, TrainConfig, Trainer, materialize};
use imagen_unet::UNetConfig;

type B = Autodiff<Flex>;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("imagen-train-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

fn config() -> TrainConfig {
    let mut c = TrainConfig::new(StageKind::Base, 16);
    c.batch_size = 2;
    c.seed = 3;
    c
}

/// `Trainer::resume` refuses a state whose config differs from this run's
/// naming the checkpoint directory and the setting (`ConfigMismatch`),
/// which holds `state.json`; an optimiser moment that does not fit its
/// parameter names the parameter and `optimizer.safetensors`; a U-Net
/// config that loads but describes other weights names the tensor key (see
/// the U-Net target).
fn resume_accepts(msg: &str) -> bool {
    (msg.starts_with("checkpoint `") && msg.contains("was trained with"))
        || msg.starts_with("tensor `")
}

#[test]
fn fuzz_train_checkpoint() {
    let unet_config = UNetConfig::tiny_base(16);
    let unet = materialize(unet_config.init::<B>(&Default::default()).unwrap());
    let trainer = Trainer::new(config(), unet_config, unet).unwrap();
    let root = scratch("checkpoint");
    let step = trainer.save(&root, 4, 1).unwrap();
    let mut list = Vec::new();
    files(&step, "", &mut list);
    let mut target = Target::new("train_checkpoint", &step, &[], corpus(), |dir| {
        Trainer::<B>::resume(dir, config(), &Default::default())?;
        Ok(())
    })
    .accept(resume_accepts)
    .ci_cases(40);
    target.files = list;
    run(target);
}

const CAPTIONS: [&str; 4] = ["a red circle", "two blue squares", "a cat", "three stars"];

/// Errors of `get` that name captions rather than a file: a caption the
/// (mutated) index no longer lists, or two captions whose keys really
/// collide.
fn cache_accepts(msg: &str) -> bool {
    msg.starts_with("caption ") || msg.contains("share the cache key")
}

#[test]
fn fuzz_embedding_cache() {
    let dir = scratch("cache");
    let encoder = tiny_encoder(8);
    let config = EmbeddingCacheConfig::new().with_shard_size(2);
    EmbeddingCache::build(&Captions::new(&CAPTIONS), &encoder, &dir, &config).unwrap();
    let mut list = Vec::new();
    files(&dir, "", &mut list);
    let mut target = Target::new("embedding_cache", &dir, &[], corpus(), |dir| {
        let cache = EmbeddingCache::open(dir)?;
        cache.null()?;
        for c in CAPTIONS {
            cache.get(c)?;
        }
        cache.get_batch(&CAPTIONS)?;
        Ok(())
    })
    .accept(cache_accepts)
    .ci_cases(200);
    target.files = list;
    run(target);
}
