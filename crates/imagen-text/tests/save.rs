//! `T5Encoder::save_dir` writes a transformers-layout directory that
//! `T5Encoder::from_dir` reads back exactly (the recorded fixture goes
//! through a save and a load unchanged), in f32 or rounded to f16.

use crate::common;

use burn::tensor::{Bool, DType, Int, Tensor};
use burn_flex::Flex;
use common::fixtures;
use imagen_text::{T5Config, T5Encoder};
use imagen_weights::Checkpoint;

fn run(model: &T5Encoder<Flex>) -> Tensor<Flex, 3> {
    let device = Default::default();
    let ids = Tensor::<Flex, 2, Int>::from_ints([[5, 9, 1, 0], [7, 3, 8, 1]], &device);
    let mask = Tensor::<Flex, 2, Bool>::from_bool(
        [[true, true, true, false], [true, true, true, true]].into(),
        &device,
    );
    model.forward(ids, mask)
}

#[test]
fn save_dir_round_trips_through_the_transformers_layout() {
    let device = Default::default();
    let src = fixtures().join("t5_gated");
    let config = T5Config::from_file(src.join("config.json")).unwrap();
    let model = T5Encoder::<Flex>::from_dir(&src, &device).unwrap();
    let dir = std::env::temp_dir().join("imagen-t5-save-test");
    let _ = std::fs::remove_dir_all(&dir);
    model.save_dir(&config, &dir, None).unwrap();
    // The same keys as the transformers checkpoint we started from.
    let (a, b) = (
        Checkpoint::open_dir(&src, "model").unwrap(),
        Checkpoint::open_dir(&dir, "model").unwrap(),
    );
    let keys = |c: &Checkpoint| {
        let mut k: Vec<String> = c.keys().map(str::to_string).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&a), keys(&b));
    let back = T5Encoder::<Flex>::from_dir(&dir, &device).unwrap();
    assert_eq!(
        T5Config::from_file(dir.join("config.json")).unwrap(),
        config
    );
    let diff = (run(&model) - run(&back)).abs().max().into_scalar();
    assert_eq!(diff, 0.0);

    model.save_dir(&config, &dir, Some(DType::F16)).unwrap();
    let half = T5Encoder::<Flex>::from_dir(&dir, &device).unwrap();
    let diff = (run(&model) - run(&half)).abs().max().into_scalar();
    assert!(diff > 0.0 && diff < 0.05, "f16 storage: {diff}");
}
