//! Embedding cache with the tiny T5 fixture: build, open, get, extend, refuse.

use crate::data_support;
use crate::seeded::seeded;

use burn_flex::Flex;
use data_support::{Captions, TempDir, fixture_dir, tiny_encoder};
use imagen_text::{T5Config, T5Tokenizer, TextEncoder};
use imagen_train::data::{
    DataError, EmbeddingCache, EmbeddingCacheConfig, ImageTextSource, StateDtype, caption_key,
};
use imagen_train::materialize;

const CAPTIONS: [&str; 6] = [
    "a red circle",
    "two blue squares",
    "a red circle", // a repeat: encoded once
    "a green star above a yellow triangle, and a purple hexagon to the left of them",
    "three stars",
    "a cat",
];

fn fresh(encoder: &TextEncoder<Flex>, caption: &str) -> (Vec<f32>, Vec<bool>) {
    let out = encoder.encode(&[caption]).unwrap();
    let states = out.embeddings.into_data().to_vec::<f32>().unwrap();
    let mask = out
        .mask
        .int()
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap();
    (states, mask.into_iter().map(|m| m != 0).collect())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn build_open_get_round_trip() {
    let tmp = TempDir::new("cache");
    let encoder = tiny_encoder(16);
    let data = Captions::new(&CAPTIONS);
    let config = EmbeddingCacheConfig::new()
        .with_shard_size(2)
        .with_batch_size(3);
    let mut reports = Vec::new();
    let built = EmbeddingCache::build_with_progress(&data, &encoder, tmp.path(), &config, |p| {
        reports.push(p)
    })
    .unwrap();
    // 5 distinct captions + the null caption, 2 per shard.
    assert_eq!(built.len(), 6);
    assert_eq!(reports.last().map(|p| (p.encoded, p.total)), Some((6, 6)));
    for name in [
        "index.json",
        "embeddings-00000.safetensors",
        "embeddings-00002.safetensors",
    ] {
        assert!(tmp.path().join(name).is_file(), "{name}");
    }
    assert!(!tmp.path().join("embeddings-00003.safetensors").exists());
    assert!(built.truncated() >= 1, "the long caption exceeds 16 tokens");
    assert_eq!((built.max_length(), built.d_model()), (16, 32));

    let cache = EmbeddingCache::open_for(tmp.path(), &encoder).unwrap();
    assert_eq!(cache.len(), 6);
    assert_eq!(cache.identity(), built.identity());
    for caption in CAPTIONS.iter().copied().chain([""]) {
        assert!(cache.contains(caption));
        let cached = cache.get(caption).unwrap();
        let (states, mask) = fresh(&encoder, caption);
        assert!(max_diff(&cached.states, &states) < 1e-5, "{caption}");
        assert_eq!(cached.mask, mask, "{caption}");
    }
    assert_eq!(cache.null().unwrap(), cache.get("").unwrap());

    let batch = cache.get_batch(&["a cat", "", "a cat"]).unwrap();
    assert_eq!(batch.states.shape.as_slice(), &[3, 16, 32]);
    assert_eq!(batch.mask.shape.as_slice(), &[3, 16]);
    let states = batch.states.to_vec::<f32>().unwrap();
    assert_eq!(states[..512], states[1024..]);

    match cache.get("a dog") {
        Err(DataError::MissingEmbedding { caption }) => assert_eq!(caption, "a dog"),
        other => panic!("{other:?}"),
    }
    let err = cache.get_batch(&["a cat", "a dog"]).unwrap_err();
    assert!(err.to_string().contains("a dog"), "{err}");
}

#[test]
fn another_encoder_is_refused() {
    let tmp = TempDir::new("cache-refuse");
    let encoder = tiny_encoder(16);
    let data = Captions::new(&CAPTIONS[..2]);
    EmbeddingCache::build(&data, &encoder, tmp.path(), &EmbeddingCacheConfig::new()).unwrap();

    let field = |err: DataError| match err {
        DataError::CacheMismatch { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let shorter = tiny_encoder(8);
    assert_eq!(
        field(EmbeddingCache::open_for(tmp.path(), &shorter).unwrap_err()),
        "max_length"
    );
    // Same architecture and tokenizer, other (random) weights.
    let dir = fixture_dir();
    let config = T5Config::from_file(dir.join("text_encoder/config.json")).unwrap();
    let tokenizer = T5Tokenizer::from_file(dir.join("tokenizer/tokenizer.json")).unwrap();
    let device = Default::default();
    // Seeded under the shared lock: an unlocked draw from the process-wide
    // generator would land inside another test's seeded sequence.
    let weights = seeded::<Flex, _>(3, || config.init::<Flex>(&device).map(materialize)).unwrap();
    let random = TextEncoder::new(tokenizer, weights, &device).with_max_length(16);
    assert!(field(EmbeddingCache::open_for(tmp.path(), &random).unwrap_err()).contains("probe"));
    // Extending with another encoder or dtype is refused too.
    let err = EmbeddingCache::build(&data, &random, tmp.path(), &EmbeddingCacheConfig::new());
    assert!(field(err.unwrap_err()).contains("probe"));
    let f16 = EmbeddingCacheConfig::new().with_dtype(StateDtype::F16);
    assert_eq!(
        field(EmbeddingCache::build(&data, &encoder, tmp.path(), &f16).unwrap_err()),
        "dtype"
    );
    // Opening without an encoder does not check.
    assert!(EmbeddingCache::open(tmp.path()).is_ok());
}

#[test]
fn building_again_only_adds_what_is_missing() {
    let tmp = TempDir::new("cache-extend");
    let encoder = tiny_encoder(16);
    let config = EmbeddingCacheConfig::new().with_shard_size(2);
    let first = Captions::new(&CAPTIONS[..2]);
    EmbeddingCache::build(&first, &encoder, tmp.path(), &config).unwrap();
    let shard0 = std::fs::read(tmp.path().join("embeddings-00000.safetensors")).unwrap();

    let all = Captions::new(&CAPTIONS);
    let mut total = None;
    let cache = EmbeddingCache::build_with_progress(&all, &encoder, tmp.path(), &config, |p| {
        total = Some(p.total)
    })
    .unwrap();
    assert_eq!(total, Some(3));
    assert_eq!(cache.len(), 6);
    assert_eq!(
        std::fs::read(tmp.path().join("embeddings-00000.safetensors")).unwrap(),
        shard0
    );
    for i in 0..all.len() {
        let caption = all.caption(i).unwrap();
        let (states, _) = fresh(&encoder, &caption);
        assert!(max_diff(&cache.get(&caption).unwrap().states, &states) < 1e-5);
    }
    // Nothing new: no encoder call, nothing written.
    let mut calls = 0;
    EmbeddingCache::build_with_progress(&all, &encoder, tmp.path(), &config, |_| calls += 1)
        .unwrap();
    assert_eq!(calls, 0);
    assert!(!tmp.path().join("index.json.tmp").exists());
}

#[test]
fn half_precision_and_damaged_caches() {
    let tmp = TempDir::new("cache-f16");
    let encoder = tiny_encoder(16);
    let data = Captions::new(&CAPTIONS[..2]);
    let config = EmbeddingCacheConfig::new().with_dtype(StateDtype::F16);
    let cache = EmbeddingCache::build(&data, &encoder, tmp.path(), &config).unwrap();
    assert_eq!(cache.dtype(), StateDtype::F16);
    let (states, _) = fresh(&encoder, CAPTIONS[0]);
    let cached = cache.get(CAPTIONS[0]).unwrap();
    let scale = states.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_diff(&cached.states, &states) <= scale * 1e-3);

    // A truncated shard is an error naming the file, not a panic.
    let shard = tmp.path().join("embeddings-00000.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let err = EmbeddingCache::open(tmp.path())
        .unwrap()
        .get(CAPTIONS[0])
        .unwrap_err();
    assert!(err.to_string().contains("embeddings-00000"), "{err}");
    // A malformed index likewise.
    std::fs::write(tmp.path().join("index.json"), "{\"format\": 1}").unwrap();
    assert!(matches!(
        EmbeddingCache::open(tmp.path()),
        Err(DataError::CacheFormat { .. })
    ));
    assert_eq!(caption_key("a cat").len(), 16);
}

#[test]
fn cache_and_loader_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<EmbeddingCache>();
    send_sync::<imagen_train::data::DataLoader<imagen_train::data::FolderDataset>>();
    send_sync::<Box<dyn ImageTextSource>>();
}
