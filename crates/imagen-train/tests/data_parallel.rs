//! Data-parallel training over burn-collective: two peers (threads, each
//! with its own trainer on a CPU device) that all-reduce their gradients
//! follow the same trajectory as one trainer accumulating both micro-batches.
#![cfg(feature = "collective")]

use burn::module::AutodiffModule;
use imagen_train::{DataParallel, StageKind, TrainConfig, Trainer, materialize};
use imagen_unet::{UNet, UNetConfig};

use crate::parallel_support;
use crate::seeded::seeded;

use parallel_support::{B, collective_lock, micro_batch, null};

/// A tiny SR U-Net drawn from `seed`.
fn unet(seed: u64) -> UNet<B> {
    let unet_config = UNetConfig::tiny_sr(16);
    seeded::<B, _>(seed, || {
        unet_config.init::<B>(&Default::default()).map(materialize)
    })
    .unwrap()
}

fn trainer(grad_accumulation: usize, unet: UNet<B>) -> Trainer<B> {
    let stage = StageKind::SuperResolution {
        lowres: 8,
        max_noise_level: 250,
    };
    let mut c = TrainConfig::new(stage, 16);
    c.batch_size = 2;
    c.grad_accumulation = grad_accumulation;
    c.lr = 1e-3;
    c.warmup_steps = 2;
    c.ema_decay = 0.9;
    c.cond_drop_prob = 0.3;
    c.seed = 11;
    Trainer::new(c, UNetConfig::tiny_sr(16), unet).unwrap()
}

/// Every weight of the trained network and of its EMA, flattened.
fn weights(t: &Trainer<B>) -> Vec<f32> {
    let mut out = Vec::new();
    for m in [t.unet().valid(), t.ema.clone()] {
        let dir = std::env::temp_dir().join(format!(
            "imagen-dp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        m.save_dir(&t.unet_config, &dir, None).unwrap();
        let ckpt = imagen_weights::Checkpoint::open_dir(&dir, "diffusion_pytorch_model").unwrap();
        let mut keys: Vec<String> = ckpt.keys().map(str::to_owned).collect();
        keys.sort();
        for k in keys {
            let data = ckpt.read(&k, burn::tensor::DType::F32).unwrap();
            out.extend(data.to_vec::<f32>().unwrap());
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    out
}

const STEPS: usize = 3;

/// Two devices with a micro-batch each equal one device accumulating both,
/// to 1e-5 absolute on every weight (only the order of the float sums
/// differs), and the peers stay bit-identical to each other. Peer 1 starts
/// from other random weights: joining replaces them by rank 0's.
#[test]
fn two_devices_equal_one_device_with_the_doubled_batch() {
    let _collective = collective_lock();
    let batches = [micro_batch(21), micro_batch(22)];
    let null = null();

    // Rank 0 starts from a copy of the one-device run's weights rather than
    // from the same seed drawn again: the backend's generator is one per
    // process, and an unlocked draw of any other test in this binary can land
    // between (it did: `UNet::from_dir` drew the attention pooling's
    // embedding eagerly before it loaded the checkpoint's).
    let init = unet(1);
    let mut single = trainer(2, init.clone());
    let mut single_losses = Vec::new();
    for _ in 0..STEPS {
        single_losses.push(single.train_step(&batches, &null).unwrap().loss);
    }
    let expected = weights(&single);

    let peers = [trainer(1, init), trainer(1, unet(2))];
    let results: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = peers
            .into_iter()
            .enumerate()
            .map(|(rank, t)| {
                let batch = batches[rank].clone();
                let null = null.clone();
                s.spawn(move || {
                    let mut t = t
                        .join(DataParallel::local(rank, 2), &Default::default())
                        .unwrap();
                    assert_eq!(t.rank(), (rank, 2));
                    let mut losses = Vec::new();
                    for _ in 0..STEPS {
                        let report = t.train_step(std::slice::from_ref(&batch), &null).unwrap();
                        losses.push(report.loss);
                    }
                    t.leave().unwrap();
                    (weights(&t), losses)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    assert!(results[0].0 == results[1].0, "the two peers diverged");
    for (step, ((a, b), (la, lb))) in results[0]
        .1
        .iter()
        .zip(&single_losses)
        .zip(results[1].1.iter().zip(&single_losses))
        .enumerate()
    {
        assert!(
            (a - b).abs() < 1e-5 && (la - lb).abs() < 1e-5,
            "step {step}: loss {a} (peer 0) and {la} (peer 1) vs {b} (one device)"
        );
    }
    assert_eq!(expected.len(), results[0].0.len());
    let max_diff = expected
        .iter()
        .zip(&results[0].0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "max |w_2dev - w_1dev| = {max_diff:e} over {} weights",
        expected.len()
    );
    assert!(max_diff < 1e-5, "max weight difference {max_diff}");
}

#[test]
fn a_rank_outside_the_world_is_refused() {
    let err = DataParallel::local(2, 2).validate().unwrap_err();
    assert!(err.to_string().contains("rank 2"), "{err}");
}
