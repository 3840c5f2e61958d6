//! A whole training run (`TrainingRun`) on a tiny U-Net and procedural
//! shapes: a resumed run continues exactly, the log gets its header once,
//! the EMA U-Net is exported, the preview hook runs on schedule (its error
//! ends the step after the step was saved), and two data-parallel peers
//! write what one device accumulating both micro-batches writes.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn_flex::Flex;
use imagen_shapes::SamplerConfig;
use imagen_train::data::{DataLoaderConfig, EmbeddingCache, EmbeddingCacheConfig, ShapesDataset};
use imagen_train::{
    RunConfig, RunStep, StageKind, TrainConfig, TrainError, TrainingRun, UNetInit, materialize,
};
use imagen_unet::UNetConfig;

use crate::data_support::{TempDir, tiny_encoder};
use crate::seeded::seeded;

type B = Autodiff<Flex>;

/// 12 scenes of 16 x 16 pixels, their captions cached with the tiny T5.
struct Fixture {
    dir: TempDir,
    source: ShapesDataset,
    cache: EmbeddingCache,
}

fn fixture(name: &str) -> Fixture {
    let dir = TempDir::new(name);
    let source = ShapesDataset::new(SamplerConfig::default(), 0, 12, 16).unwrap();
    let cache = EmbeddingCache::build(
        &source,
        &tiny_encoder(8),
        dir.path().join("embeddings"),
        &EmbeddingCacheConfig::new(),
    )
    .unwrap();
    Fixture { dir, source, cache }
}

fn train_config(steps: usize, grad_accumulation: usize) -> TrainConfig {
    let mut c = TrainConfig::new(StageKind::Base, 16);
    c.batch_size = 2;
    c.grad_accumulation = grad_accumulation;
    c.steps = steps;
    c.warmup_steps = 1;
    c.lr = 1e-3;
    c.ema_decay = 0.9;
    c.seed = 5;
    c
}

/// Runs `config` to its last step; the checkpoint resumed and every step.
fn run_to_end(f: &Fixture, config: RunConfig) -> (Option<PathBuf>, Vec<RunStep>) {
    let mut run =
        TrainingRun::<B, _>::start(config, &f.source, &f.cache, &Default::default()).unwrap();
    let resumed = run.resumed_from().map(Path::to_path_buf);
    let mut steps = Vec::new();
    while !run.is_done() {
        steps.push(run.step().unwrap());
    }
    assert!(matches!(
        run.step(),
        Err(TrainError::RunFinished { steps: _ })
    ));
    assert_eq!(run.finish().unwrap().trainer.step, run_steps(&steps));
    (resumed, steps)
}

fn run_steps(steps: &[RunStep]) -> usize {
    steps.last().map_or(0, |s| s.report.step + 1)
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `log.csv` without its timing columns (`steps_per_s`, `images_per_s`).
fn log_without_timing(out: &Path) -> Vec<String> {
    String::from_utf8(read(out.join("log.csv")))
        .unwrap()
        .lines()
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            [&cells[..4], &cells[6..]].concat().join(",")
        })
        .collect()
}

fn checkpoints(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A tiny base U-Net drawn from `seed`, saved in the diffusers layout under
/// the fixture's folder: runs fine-tuned from it start alike, whatever else
/// in this binary draws from the backend's generator meanwhile.
fn pretrained(f: &Fixture, seed: u64) -> PathBuf {
    let unet_config = UNetConfig::tiny_base(f.cache.d_model());
    let unet = seeded::<Flex, _>(seed, || {
        unet_config
            .init::<Flex>(&Default::default())
            .map(materialize)
    })
    .unwrap();
    let dir = f.dir.path().join("pretrained");
    unet.save_dir(&unet_config, &dir, None).unwrap();
    dir
}

/// Four steps in one go, and two steps then two more resumed, end with
/// the same checkpoint, EMA export and log (but for the timings): the log
/// is continued, its header written once.
#[test]
fn a_resumed_run_continues_exactly() {
    let f = fixture("run-resume");
    let init = UNetInit::Pretrained(pretrained(&f, 1));
    let config = |steps, out: &str| {
        RunConfig::new(train_config(steps, 2), init.clone(), f.dir.path().join(out))
            .with_save_every(2)
    };

    let (resumed, steps) = run_to_end(&f, config(4, "straight").with_keep_checkpoints(1));
    assert_eq!((resumed, steps.len()), (None, 4));
    let (_, first) = run_to_end(&f, config(2, "resumed"));
    assert_eq!(first.len(), 2);
    let (resumed, second) = run_to_end(&f, config(4, "resumed").with_resume(true));
    let out = f.dir.path().join("resumed");
    assert_eq!(resumed, Some(out.join("checkpoints/step-00000002")));
    assert_eq!(second.len(), 2);
    assert_eq!(
        second[1].checkpoint,
        Some(out.join("checkpoints/step-00000004"))
    );

    let straight = f.dir.path().join("straight");
    assert_eq!(checkpoints(&straight), ["step-00000004"]);
    assert_eq!(checkpoints(&out), ["step-00000002", "step-00000004"]);
    for file in [
        "checkpoints/step-00000004/model/diffusion_pytorch_model.safetensors",
        "checkpoints/step-00000004/ema/diffusion_pytorch_model.safetensors",
        "checkpoints/step-00000004/optimizer.safetensors",
        "unet-ema/diffusion_pytorch_model.safetensors",
        "unet-ema/config.json",
    ] {
        assert!(read(straight.join(file)) == read(out.join(file)), "{file}");
    }
    let state = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&read(dir.join("checkpoints/step-00000004/state.json"))).unwrap()
    };
    assert_eq!(state(&straight), state(&out));

    let log = log_without_timing(&out);
    assert_eq!(log, log_without_timing(&straight));
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(log[0].starts_with("step,loss,lr,grad_norm,loss_snr_-inf_-5,"));
    let steps: Vec<&str> = log[1..].iter().map(|r| &r[..2]).collect();
    assert_eq!(steps, ["0,", "1,", "2,", "3,"]);
}

/// A fresh run from a config: checkpoints every 3 steps and at the last,
/// the EMA U-Net exported, the preview hook called after steps 2 and 4;
/// the hook's error ends step 4 after its log row and checkpoint.
#[test]
fn a_fresh_run_logs_checkpoints_exports_and_previews() {
    let f = fixture("run-fresh");
    let unet_config = UNetConfig::tiny_base(f.cache.d_model());
    let out = f.dir.path().join("out");
    let config = RunConfig::new(
        train_config(4, 1),
        UNetInit::Config(unet_config.clone()),
        &out,
    )
    .with_save_every(3);
    let mut previews = Vec::new();
    let mut run = TrainingRun::<B, _>::start(config, &f.source, &f.cache, &Default::default())
        .unwrap()
        .with_preview(2, |trainer| {
            previews.push(trainer.step);
            match trainer.step {
                4 => Err("no room for the grid".into()),
                _ => Ok(()),
            }
        });
    assert_eq!(
        (run.rank(), run.is_lead(), run.resumed_from()),
        ((0, 1), true, None)
    );
    let steps: Vec<RunStep> = (0..3).map(|_| run.step().unwrap()).collect();
    assert_eq!(run.data_position(), 3 * 2);
    let err = run.step().unwrap_err();
    assert!(
        matches!(err, TrainError::Preview { step: 4, .. }) && err.to_string().contains("no room"),
        "{err}"
    );
    assert!(run.is_done());
    assert!(matches!(
        run.step(),
        Err(TrainError::RunFinished { steps: 4 })
    ));
    let finished = run.finish().unwrap();
    assert_eq!((finished.trainer.step, finished.skipped_corrupt), (4, 0));
    assert_eq!(previews, [2, 4]);

    let saved: Vec<Option<PathBuf>> = steps.iter().map(|s| s.checkpoint.clone()).collect();
    assert_eq!(
        saved,
        [None, None, Some(out.join("checkpoints/step-00000003"))]
    );
    for s in &steps {
        let ratio = s.images_per_s / s.steps_per_s;
        assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    }
    assert_eq!(checkpoints(&out), ["step-00000003", "step-00000004"]);
    assert_eq!(
        UNetConfig::from_file(out.join("unet-ema/config.json")).unwrap(),
        unet_config
    );
    assert!(
        out.join("unet-ema/diffusion_pytorch_model.safetensors")
            .is_file()
    );
    let log = String::from_utf8(read(out.join("log.csv"))).unwrap();
    assert_eq!(log.lines().count(), 5, "{log}");
    assert_eq!(log.matches("step,").count(), 1, "{log}");
}

#[test]
fn settings_a_run_cannot_start_with_are_refused() {
    let ok = RunConfig::new(
        train_config(1, 1),
        UNetInit::Config(UNetConfig::tiny_base(16)),
        "unused",
    );
    ok.validate().unwrap();
    assert_eq!(
        (ok.data.batch_size, ok.data.resolution, ok.data.seed),
        (2, 16, 5)
    );
    let message = |c: RunConfig| c.validate().unwrap_err().to_string();
    assert!(message(ok.clone().with_save_every(0)).contains("save_every"));
    let mut c = ok.clone();
    c.data.batch_size = 3;
    assert!(message(c).contains("batch_size 3"));
    let c = ok
        .clone()
        .with_data(DataLoaderConfig::new(2, 32).with_crop(8));
    assert!(message(c).contains("8 x 8"));
    let mut c = ok;
    c.train.lr = 0.0;
    assert!(message(c).contains("lr"));
}

/// Two peers with one micro-batch each write the checkpoint, EMA export and
/// log one device accumulating both writes (the same trajectory, bit for
/// bit on the CPU), and only rank 0 writes.
#[cfg(feature = "collective")]
#[test]
fn two_peers_write_what_one_device_accumulating_writes() {
    use imagen_train::DataParallel;

    let _collective = crate::parallel_support::collective_lock();
    let f = fixture("run-parallel");
    let pretrained = pretrained(&f, 2);
    let config = |accumulate, out: &str| {
        RunConfig::new(
            train_config(3, accumulate),
            UNetInit::Pretrained(pretrained.clone()),
            f.dir.path().join(out),
        )
        .with_save_every(3)
    };
    run_to_end(&f, config(2, "one"));
    std::thread::scope(|s| {
        for rank in 0..2 {
            let config = config(1, if rank == 0 { "two" } else { "two-rank1" });
            let f = &f;
            s.spawn(move || {
                let peer = DataParallel::local(rank, 2);
                let mut run = TrainingRun::<B, _>::start_parallel(
                    config,
                    &f.source,
                    &f.cache,
                    peer,
                    &Default::default(),
                )
                .unwrap();
                assert_eq!((run.rank(), run.is_lead()), ((rank, 2), rank == 0));
                while !run.is_done() {
                    run.step().unwrap();
                }
                run.finish().unwrap();
            });
        }
    });
    assert!(!f.dir.path().join("two-rank1").exists());
    let (one, two) = (f.dir.path().join("one"), f.dir.path().join("two"));
    for file in [
        "checkpoints/step-00000003/model/diffusion_pytorch_model.safetensors",
        "checkpoints/step-00000003/optimizer.safetensors",
        "unet-ema/diffusion_pytorch_model.safetensors",
    ] {
        assert!(read(one.join(file)) == read(two.join(file)), "{file}");
    }
    // Step, loss, learning rate and gradient norm (rank 0's loss buckets
    // hold its own examples only).
    let head = |out: &Path| -> Vec<String> {
        let log = log_without_timing(out);
        log.iter()
            .map(|r| r.split(',').take(4).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(head(&one), head(&two));
    assert_eq!(head(&two).len(), 4);
}
