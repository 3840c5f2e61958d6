//! DataLoader: seeded order, epochs, flips, resumption, skipping, workers.

use crate::data_support;

use data_support::Captions;
use imagen_shapes::SamplerConfig;
use imagen_train::data::{Batch, DataError, DataLoader, DataLoaderConfig, ShapesDataset};

fn shapes(len: usize) -> ShapesDataset {
    ShapesDataset::new(SamplerConfig::default(), 3, len, 8).unwrap()
}

fn take<S: imagen_train::data::ImageTextSource>(
    loader: &mut DataLoader<S>,
    n: usize,
) -> Vec<Batch> {
    (0..n).map(|_| loader.next_batch().unwrap()).collect()
}

fn same(a: &[Batch], b: &[Batch]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.indices == y.indices
                && x.captions == y.captions
                && x.flipped == y.flipped
                && x.images.as_bytes() == y.images.as_bytes()
        })
}

#[test]
fn same_seed_same_batches_other_seed_other_order() {
    let data = shapes(20);
    let config = DataLoaderConfig::new(3, 8)
        .with_seed(5)
        .with_random_flip(true);
    let a = take(&mut config.init(&data).unwrap(), 10);
    let b = take(&mut config.init(&data).unwrap(), 10);
    assert!(same(&a, &b));
    let c = take(&mut config.clone().with_seed(6).init(&data).unwrap(), 10);
    let order = |batches: &[Batch]| {
        batches
            .iter()
            .flat_map(|b| b.indices.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(order(&a), order(&c));
    // Captions travel with their images.
    for batch in &a {
        for (i, caption) in batch.indices.iter().zip(&batch.captions) {
            assert_eq!(*caption, data.example(*i).unwrap().1);
        }
    }
}

#[test]
fn epochs_are_permutations_with_fresh_order() {
    let data = shapes(12);
    let mut loader = DataLoaderConfig::new(4, 8)
        .with_seed(1)
        .init(&data)
        .unwrap();
    let epoch = |loader: &mut DataLoader<&ShapesDataset>| {
        take(loader, 3)
            .iter()
            .flat_map(|b| b.indices.clone())
            .collect::<Vec<_>>()
    };
    let first = epoch(&mut loader);
    assert_eq!(loader.epoch(), 1);
    let second = epoch(&mut loader);
    for e in [&first, &second] {
        let mut sorted = e.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).collect::<Vec<_>>());
    }
    assert_ne!(first, second);
    assert_ne!(first, (0..12).collect::<Vec<_>>());
}

#[test]
fn flips_are_random_and_mirror_the_image() {
    let data = shapes(16);
    let config = DataLoaderConfig::new(16, 8).with_seed(2);
    let plain = config.init(&data).unwrap().next_batch().unwrap();
    let flipped = config
        .clone()
        .with_random_flip(true)
        .init(&data)
        .unwrap()
        .next_batch()
        .unwrap();
    assert_eq!(plain.indices, flipped.indices);
    assert!(plain.flipped.iter().all(|&f| !f));
    let n = flipped.flipped.iter().filter(|&&f| f).count();
    assert!(n > 0 && n < 16, "{n} of 16 flipped");
    let (p, f) = (
        plain.images.to_vec::<f32>().unwrap(),
        flipped.images.to_vec::<f32>().unwrap(),
    );
    let plane = 8 * 8;
    for (k, &was_flipped) in flipped.flipped.iter().enumerate() {
        for c in 0..3 {
            for y in 0..8 {
                for x in 0..8 {
                    let at = |x: usize| ((k * 3 + c) * plane) + y * 8 + x;
                    let mirrored = if was_flipped { 7 - x } else { x };
                    assert_eq!(f[at(x)], p[at(mirrored)]);
                }
            }
        }
    }
}

#[test]
fn seek_resumes_exactly_even_with_skipped_examples() {
    let mut data = Captions::new(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]);
    data.broken = vec![2, 7];
    let config = DataLoaderConfig::new(3, 4)
        .with_seed(11)
        .with_random_flip(true);
    let mut first = config.init(&data).unwrap();
    take(&mut first, 7);
    let saved = first.position();
    let rest = take(&mut first, 6);
    assert_eq!(first.skipped_corrupt(), 2);
    assert!(
        rest.iter()
            .all(|b| !b.indices.contains(&2) && !b.indices.contains(&7))
    );

    // A fresh loader knows nothing of the broken examples, yet continues identically.
    let mut resumed = config.init(&data).unwrap();
    resumed.seek(saved);
    assert!(same(&rest, &take(&mut resumed, 6)));
    assert_eq!(resumed.position(), first.position());
}

#[test]
fn workers_do_not_change_the_stream() {
    let mut data = Captions::new(&["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
    data.broken = vec![4];
    let config = DataLoaderConfig::new(5, 6)
        .with_seed(4)
        .with_random_flip(true);
    let one = take(&mut config.init(&data).unwrap(), 6);
    let four = take(&mut config.clone().with_workers(4).init(&data).unwrap(), 6);
    assert!(same(&one, &four));
}

#[test]
fn unreadable_everything_is_an_error_not_a_hang() {
    let mut data = Captions::new(&["a", "b", "c"]);
    data.broken = vec![0, 1, 2];
    let mut loader = DataLoaderConfig::new(2, 4).init(&data).unwrap();
    let err = loader.next_batch().unwrap_err();
    assert!(
        matches!(err, DataError::NoReadableExamples { len: 3, .. }),
        "{err}"
    );
    assert_eq!(loader.position(), 0);
}

#[test]
fn other_source_errors_stop_the_loader_and_keep_the_position() {
    // A source whose length lies: index 3 does not exist.
    struct Liar(Captions);
    impl imagen_train::data::ImageTextSource for Liar {
        fn len(&self) -> usize {
            4
        }
        fn caption(&self, i: usize) -> Result<String, DataError> {
            self.0.caption(i)
        }
        fn image(&self, i: usize) -> Result<image::RgbImage, DataError> {
            self.0.image(i)
        }
    }
    let mut loader = DataLoaderConfig::new(4, 4)
        .init(Liar(Captions::new(&["a", "b", "c"])))
        .unwrap();
    assert!(matches!(
        loader.next_batch(),
        Err(DataError::IndexOutOfRange { index: 3, .. })
    ));
    assert_eq!(loader.position(), 0);
}

#[test]
fn rejects_bad_settings() {
    let data = shapes(4);
    assert!(DataLoaderConfig::new(0, 8).init(&data).is_err());
    assert!(DataLoaderConfig::new(2, 0).init(&data).is_err());
    assert!(
        DataLoaderConfig::new(2, 8)
            .init(Captions::new(&[]))
            .is_err()
    );
}

#[test]
fn crops_are_windows_of_the_full_image_and_resume_exactly() {
    let data = shapes(10);
    let full = DataLoaderConfig::new(4, 8).with_seed(2);
    let cropped = full.clone().with_crop(5);
    assert_eq!(cropped.output_size(), 5);
    let whole = take(&mut full.init(&data).unwrap(), 3);
    let mut loader = cropped.init(&data).unwrap();
    let crops = take(&mut loader, 3);
    let mut corners = std::collections::BTreeSet::new();
    for (w, c) in whole.iter().zip(&crops) {
        assert_eq!(w.indices, c.indices);
        assert_eq!(c.images.shape.as_slice(), &[4, 3, 5, 5]);
        let (w, c) = (
            w.images.as_slice::<f32>().unwrap(),
            c.images.as_slice::<f32>().unwrap(),
        );
        for e in 0..4 {
            // Find the window of the full image the crop came from.
            let at = |x: usize, y: usize, ch: usize| w[e * 192 + ch * 64 + y * 8 + x];
            let crop = &c[e * 75..(e + 1) * 75];
            let corner = (0..4)
                .flat_map(|y| (0..4).map(move |x| (x, y)))
                .find(|&(x0, y0)| {
                    (0..3).all(|ch| {
                        (0..5).all(|y| {
                            (0..5).all(|x| at(x0 + x, y0 + y, ch) == crop[ch * 25 + y * 5 + x])
                        })
                    })
                });
            corners.insert(corner.expect("the crop is a window of the image"));
        }
    }
    assert!(corners.len() > 1, "crops move: {corners:?}");
    let mut resumed = cropped.init(&data).unwrap();
    resumed.seek(0);
    assert!(same(&crops, &take(&mut resumed, 3)));
    assert!(full.clone().with_crop(9).init(&data).is_err());
    assert!(full.with_crop(0).init(&data).is_err());
}
