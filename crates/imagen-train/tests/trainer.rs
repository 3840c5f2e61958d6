//! The trainer on a tiny U-Net: the loss falls, resuming from a checkpoint
//! continues exactly, a half-written checkpoint never counts, and a
//! checkpoint of another config is refused. Resuming is checked on both CPU
//! backends (bit-identical weights on burn-flex and on burn-ndarray).

use burn::backend::Autodiff;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor};
use burn_flex::Flex;
use imagen_train::{
    LrSchedule, NullText, StageKind, TrainBatch, TrainConfig, Trainer, latest_checkpoint,
    materialize,
};
use imagen_unet::UNetConfig;

use crate::seeded::seeded;

type B = Autodiff<Flex>;

fn batch<B: AutodiffBackend>(seed: u64) -> (TrainBatch<B>, NullText<B>) {
    let device = Default::default();
    let (images, text) = seeded::<B, _>(seed, || {
        (
            Tensor::<B, 4>::random([4, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device),
            Tensor::<B, 3>::random([4, 6, 16], Distribution::Normal(0.0, 1.0), &device),
        )
    });
    let images = burn::tensor::module::avg_pool2d(images, [5, 5], [1, 1], [2, 2], false, true);
    let text_mask = Tensor::<B, 2, Int>::ones([4, 6], &device);
    let null = NullText {
        text: Tensor::zeros([1, 6, 16], &device),
        mask: Tensor::<B, 2, Int>::zeros([1, 6], &device),
    };
    (
        TrainBatch {
            images,
            text,
            text_mask,
        },
        null,
    )
}

fn config(stage: StageKind) -> TrainConfig {
    let mut c = TrainConfig::new(stage, 16);
    c.batch_size = 4;
    c.lr = 2e-3;
    c.warmup_steps = 5;
    c.ema_decay = 0.9;
    c.seed = 9;
    c
}

fn trainer<B: AutodiffBackend>(c: TrainConfig) -> Trainer<B> {
    let unet_config = match c.stage {
        StageKind::Base => UNetConfig::tiny_base(16),
        StageKind::SuperResolution { .. } => UNetConfig::tiny_sr(16),
    };
    let unet = seeded::<B, _>(1, || {
        unet_config.init::<B>(&Default::default()).map(materialize)
    })
    .unwrap();
    Trainer::new(c, unet_config, unet).unwrap()
}

fn weights<B: AutodiffBackend>(t: &Trainer<B>) -> Vec<u8> {
    use burn::module::AutodiffModule;
    let dir = std::env::temp_dir().join(format!(
        "imagen-train-w-{}-{:?}-{}",
        std::process::id(),
        std::thread::current().id(),
        t.step
    ));
    t.unet()
        .valid()
        .save_dir(&t.unet_config, &dir, None)
        .unwrap();
    let bytes = std::fs::read(dir.join("diffusion_pytorch_model.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("imagen-train-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

/// The eps loss on one fixed batch, averaged over a window, falls below half
/// its starting value within 150 steps.
#[test]
fn loss_on_a_fixed_batch_halves() {
    let (b, null) = batch::<B>(3);
    let mut c = config(StageKind::Base);
    c.cond_drop_prob = 0.0;
    let mut t = trainer(c);
    let mut losses = Vec::new();
    for _ in 0..150 {
        losses.push(t.train_step(std::slice::from_ref(&b), &null).unwrap().loss);
    }
    let start: f32 = losses[..20].iter().sum::<f32>() / 20.0;
    let end: f32 = losses[130..].iter().sum::<f32>() / 20.0;
    eprintln!("loss {start:.4} -> {end:.4}");
    assert!(end < 0.5 * start, "{start} -> {end}");
}

#[test]
fn resuming_continues_exactly() {
    resuming_continues_exactly_on::<B>("flex");
}

#[test]
fn resuming_continues_exactly_on_ndarray() {
    resuming_continues_exactly_on::<Autodiff<burn_ndarray::NdArray>>("ndarray");
}

fn resuming_continues_exactly_on<B: AutodiffBackend>(name: &str) {
    let (b, null) = batch::<B>(4);
    let sr = StageKind::SuperResolution {
        lowres: 8,
        max_noise_level: 250,
    };
    let mut straight = trainer::<B>(config(sr));
    for _ in 0..4 {
        straight
            .train_step(std::slice::from_ref(&b), &null)
            .unwrap();
    }

    let dir = temp(&format!("resume-{name}"));
    let mut first = trainer::<B>(config(sr));
    for _ in 0..2 {
        first.train_step(std::slice::from_ref(&b), &null).unwrap();
    }
    first.save(&dir, 8, 2).unwrap();
    drop(first);
    let ckpt = latest_checkpoint(&dir).unwrap();
    let (mut resumed, position) =
        Trainer::<B>::resume(&ckpt, config(sr), &Default::default()).unwrap();
    assert_eq!((resumed.step, position), (2, 8));
    for _ in 0..2 {
        resumed.train_step(std::slice::from_ref(&b), &null).unwrap();
    }
    assert!(
        weights(&straight) == weights(&resumed),
        "weights differ after resume"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn half_written_checkpoints_never_count_and_old_ones_are_pruned() {
    let (b, null) = batch::<B>(5);
    let dir = temp("atomic");
    let mut t = trainer(config(StageKind::Base));
    t.train_step(std::slice::from_ref(&b), &null).unwrap();
    let good = t.save(&dir, 4, 2).unwrap();
    // A crash between writing the temporary directory and the rename.
    let tmp = dir.join(".step-00000002.tmp");
    std::fs::create_dir_all(tmp.join("model")).unwrap();
    std::fs::write(tmp.join("state.json"), "{ truncated").unwrap();
    assert_eq!(latest_checkpoint(&dir).unwrap(), good);
    Trainer::<B>::resume(&good, config(StageKind::Base), &Default::default()).unwrap();

    for _ in 0..3 {
        t.train_step(std::slice::from_ref(&b), &null).unwrap();
        t.save(&dir, 0, 2).unwrap();
    }
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("step-"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_of_another_config_is_refused_naming_the_setting() {
    let (b, null) = batch::<B>(6);
    let dir = temp("mismatch");
    let mut t = trainer(config(StageKind::Base));
    t.train_step(std::slice::from_ref(&b), &null).unwrap();
    let ckpt = t.save(&dir, 0, 1).unwrap();
    let mut other = config(StageKind::Base);
    other.ema_decay = 0.5;
    let msg = Trainer::<B>::resume(&ckpt, other, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("ema_decay"), "{msg}");
    // A longer run with another learning-rate schedule continues the same one.
    let mut longer = config(StageKind::Base);
    longer.steps *= 2;
    longer.lr /= 2.0;
    longer.warmup_steps += 1;
    longer.lr_schedule = LrSchedule::Cosine { min_lr: 1e-6 };
    Trainer::<B>::resume(&ckpt, longer, &Default::default()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// Every tensor of a safetensors file as f32, in file order.
fn read_tensors(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (k, v.shape().to_vec(), data)
        })
        .collect()
}

fn write_tensors(path: &std::path::Path, tensors: Vec<(String, Vec<usize>, Vec<f32>)>) {
    let tensors = tensors
        .into_iter()
        .map(|(k, shape, data)| (k, burn::tensor::TensorData::new(data, shape)))
        .collect();
    imagen_weights::save_tensors(path, tensors).unwrap();
}

/// Issue 39: an optimiser moment of the wrong rank (which panicked in
/// `Tensor::from_data`) or of the right rank but another shape (never
/// checked) is a typed error naming the parameter and the file.
#[test]
fn optimizer_moments_that_do_not_fit_their_parameter_are_refused() {
    let (b, null) = batch::<B>(7);
    let dir = temp("moments");
    let mut t = trainer(config(StageKind::Base));
    t.train_step(std::slice::from_ref(&b), &null).unwrap();
    let ckpt = t.save(&dir, 0, 1).unwrap();
    let optim = ckpt.join("optimizer.safetensors");
    let original = read_tensors(&optim);
    let (key, shape) = original
        .iter()
        .find(|(k, s, _)| k.ends_with(".moment_2") && s.len() == 4 && s[0] > 1)
        .map(|(k, s, _)| (k.clone(), s.clone()))
        .unwrap();
    let parameter = key.trim_end_matches(".moment_2").to_string();
    let numel: usize = shape.iter().product();
    for bad in [vec![numel], vec![1, numel / shape[0], shape[0], 1]] {
        let tensors = original
            .iter()
            .cloned()
            .map(|(k, s, d)| {
                if k == key {
                    (k, bad.clone(), d)
                } else {
                    (k, s, d)
                }
            })
            .collect();
        write_tensors(&optim, tensors);
        let msg = match Trainer::<B>::resume(&ckpt, config(StageKind::Base), &Default::default()) {
            Ok(_) => panic!("a moment of shape {bad:?} for {shape:?} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(&parameter), "{msg}");
        assert!(msg.contains("optimizer.safetensors"), "{msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 39: `state.json`'s U-Net config must be the one in
/// `model/config.json`; a difference is a typed error naming both files and
/// the field.
#[test]
fn a_state_whose_unet_config_differs_from_the_model_is_refused() {
    let (b, null) = batch::<B>(8);
    let dir = temp("unet-config");
    let mut t = trainer(config(StageKind::Base));
    t.train_step(std::slice::from_ref(&b), &null).unwrap();
    let ckpt = t.save(&dir, 0, 1).unwrap();
    let state_path = ckpt.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let channels = state["unet_config"]["in_channels"].as_u64().unwrap();
    state["unet_config"]["in_channels"] = (channels + 1).into();
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();
    let msg = match Trainer::<B>::resume(&ckpt, config(StageKind::Base), &Default::default()) {
        Ok(_) => panic!("a state.json with another U-Net config was accepted"),
        Err(e) => e.to_string(),
    };
    for part in ["in_channels", "state.json", "config.json"] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn step_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Issue 39: after a crash, resume finds the newest complete checkpoint: a
/// stale `.step-*.tmp` folder, a checkpoint missing its state file and one
/// missing its optimiser state are skipped, and saving or resuming removes
/// the stale temporary folders.
#[test]
fn incomplete_checkpoints_are_skipped_and_stale_temporaries_cleaned() {
    let (b, null) = batch::<B>(9);
    let dir = temp("complete");
    let mut t = trainer(config(StageKind::Base));
    t.train_step(std::slice::from_ref(&b), &null).unwrap();
    let good = t.save(&dir, 4, 3).unwrap();
    // A crash while writing step 5's temporary folder.
    std::fs::create_dir_all(dir.join(".step-00000005.tmp/model")).unwrap();
    // A later checkpoint that lost its state file, one that lost its
    // optimiser state.
    for (step, lost) in [(7, "state.json"), (8, "optimizer.safetensors")] {
        let copy = dir.join(format!("step-{step:08}"));
        std::fs::create_dir_all(copy.join("model")).unwrap();
        std::fs::create_dir_all(copy.join("ema")).unwrap();
        for f in [
            "state.json",
            "optimizer.safetensors",
            "model/config.json",
            "model/diffusion_pytorch_model.safetensors",
            "ema/config.json",
            "ema/diffusion_pytorch_model.safetensors",
        ] {
            if f != lost {
                std::fs::copy(good.join(f), copy.join(f)).unwrap();
            }
        }
    }
    assert_eq!(latest_checkpoint(&dir).unwrap(), good);
    let (mut resumed, position) =
        Trainer::<B>::resume(&good, config(StageKind::Base), &Default::default()).unwrap();
    assert_eq!(position, 4);
    assert!(
        !dir.join(".step-00000005.tmp").exists(),
        "resume left {:?}",
        step_dirs(&dir)
    );
    std::fs::create_dir_all(dir.join(".step-00000006.tmp")).unwrap();
    resumed.train_step(std::slice::from_ref(&b), &null).unwrap();
    let next = resumed.save(&dir, 8, 3).unwrap();
    assert!(
        step_dirs(&dir).iter().all(|n| !n.ends_with(".tmp")),
        "save left {:?}",
        step_dirs(&dir)
    );
    assert_eq!(latest_checkpoint(&dir).unwrap(), next);
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 39: after resuming from an earlier checkpoint, the checkpoint just
/// written is the newest (resume picks it) and pruning never deletes it,
/// even when checkpoints of higher steps (from the abandoned run) exist.
#[test]
fn pruning_after_resuming_from_an_earlier_step_keeps_the_new_checkpoint() {
    let (b, null) = batch::<B>(10);
    let dir = temp("prune");
    let mut t = trainer(config(StageKind::Base));
    let mut saved = Vec::new();
    for _ in 0..3 {
        t.train_step(std::slice::from_ref(&b), &null).unwrap();
        saved.push(t.save(&dir, 0, 3).unwrap());
    }
    // Back to step 1, then on to step 2 and 3 again; keep one checkpoint.
    let (mut resumed, _) =
        Trainer::<B>::resume(&saved[0], config(StageKind::Base), &Default::default()).unwrap();
    resumed.train_step(std::slice::from_ref(&b), &null).unwrap();
    let written = resumed.save(&dir, 0, 1).unwrap();
    assert!(written.join("state.json").exists(), "{:?}", step_dirs(&dir));
    assert_eq!(latest_checkpoint(&dir).unwrap(), written);
    assert_eq!(step_dirs(&dir), ["step-00000002"]);
    std::fs::remove_dir_all(&dir).ok();
}
