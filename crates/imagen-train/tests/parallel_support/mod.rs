//! Inputs shared by the data-parallel tests: smooth random 16 x 16 images
//! with 6 random text tokens of width 16, and the null caption.
#![allow(dead_code)]

use burn::backend::Autodiff;
use burn::tensor::{Distribution, Int, Tensor};
use burn_flex::Flex;
use imagen_train::{NullText, TrainBatch};

use crate::seeded::seeded;

pub type B = Autodiff<Flex>;

/// Held by each test that registers peers with burn-collective: its local
/// level is one per process, so two such tests at once would mix their
/// peers.
pub static COLLECTIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`COLLECTIVE`] (also after another test panicked holding it).
pub fn collective_lock() -> std::sync::MutexGuard<'static, ()> {
    COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Two examples drawn from `seed`.
pub fn micro_batch(seed: u64) -> TrainBatch<B> {
    let device = Default::default();
    let (images, text) = seeded::<B, _>(seed, || {
        (
            Tensor::<B, 4>::random([2, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device),
            Tensor::random([2, 6, 16], Distribution::Normal(0.0, 1.0), &device),
        )
    });
    TrainBatch {
        images: burn::tensor::module::avg_pool2d(images, [5, 5], [1, 1], [2, 2], false, true),
        text,
        text_mask: Tensor::<B, 2, Int>::ones([2, 6], &device),
    }
}

/// The null caption (all padding).
pub fn null() -> NullText<B> {
    let device = Default::default();
    NullText {
        text: Tensor::zeros([1, 6, 16], &device),
        mask: Tensor::<B, 2, Int>::zeros([1, 6], &device),
    }
}
