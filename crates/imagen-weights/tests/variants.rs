//! Finding the weight files of a directory: plain files, variants (`fp16`...)
//! single or sharded under the names transformers and diffusers write, the
//! choice when none is asked for, and the errors when nothing fits or a shard
//! index is broken or hostile.

use crate::common;

use common::{Scratch, value};
use imagen_weights::{Checkpoint, Layout, WeightsError};

/// `(variant, layout, file name)` of each set `variants_in` lists.
fn listing(dir: &std::path::Path, stem: &str) -> Vec<(Option<String>, Layout, String)> {
    Checkpoint::variants_in(dir, stem)
        .unwrap()
        .iter()
        .map(|s| {
            (
                s.variant().map(str::to_string),
                s.layout(),
                s.file_name().to_string(),
            )
        })
        .collect()
}

/// A directory with only `model.safetensors` is read as plain files, asked or
/// not, and lists one plain single set.
#[test]
fn plain_single_file_only() {
    let s = Scratch::new("plain-single");
    s.tensors("model.safetensors", &[("x", 1.0)]);
    assert_eq!(
        listing(&s.dir, "model"),
        [(None, Layout::Single, "model.safetensors".to_string())]
    );
    let ckpt = Checkpoint::open_dir(&s.dir, "model").unwrap();
    assert_eq!(ckpt.variant(), None);
    assert_eq!(value(&ckpt, "x"), 1.0);
    let ckpt = Checkpoint::open_dir_variant(&s.dir, "model", None).unwrap();
    assert_eq!(ckpt.variant(), None);
}

/// Plain shards (`model-00001-of-00002.safetensors`) are read through
/// `model.safetensors.index.json` and are not listed as variants.
#[test]
fn plain_sharded_only() {
    let s = Scratch::new("plain-sharded");
    s.sharded(
        "model.safetensors.index.json",
        &[
            ("model-00001-of-00002.safetensors", &[("a", 1.0)]),
            ("model-00002-of-00002.safetensors", &[("b", 2.0)]),
        ],
    );
    assert_eq!(
        listing(&s.dir, "model"),
        [(
            None,
            Layout::Sharded,
            "model.safetensors.index.json".to_string()
        )]
    );
    let ckpt = Checkpoint::open_dir(&s.dir, "model").unwrap();
    assert_eq!(ckpt.variant(), None);
    assert_eq!(ckpt.files().len(), 2);
    assert_eq!((value(&ckpt, "a"), value(&ckpt, "b")), (1.0, 2.0));
}

/// A diffusers single-file variant (`diffusion_pytorch_model.fp16.safetensors`)
/// is found when asked for, and read without being asked when it is all the
/// directory holds; `variant()` reports it.
#[test]
fn variant_single_file_only() {
    let s = Scratch::new("variant-single");
    s.tensors("diffusion_pytorch_model.fp16.safetensors", &[("x", 2.0)]);
    let stem = "diffusion_pytorch_model";
    assert_eq!(
        listing(&s.dir, stem),
        [(
            Some("fp16".to_string()),
            Layout::Single,
            "diffusion_pytorch_model.fp16.safetensors".to_string()
        )]
    );
    for asked in [None, Some("fp16")] {
        let ckpt = Checkpoint::open_dir_variant(&s.dir, stem, asked).unwrap();
        assert_eq!(ckpt.variant(), Some("fp16"), "asked {asked:?}");
        assert_eq!(value(&ckpt, "x"), 2.0);
    }
}

/// transformers 5 / diffusers 0.42 with `variant="fp16"`: shards
/// `model.fp16-00001-of-00002.safetensors` named in
/// `model.safetensors.index.fp16.json`. The shards are not mistaken for a
/// variant called `fp16-00001-of-00002`.
#[test]
fn variant_sharded_with_transformers5_names() {
    let s = Scratch::new("variant-sharded-t5");
    s.sharded(
        "model.safetensors.index.fp16.json",
        &[
            ("model.fp16-00001-of-00002.safetensors", &[("a", 1.0)]),
            ("model.fp16-00002-of-00002.safetensors", &[("b", 2.0)]),
        ],
    );
    assert_eq!(
        listing(&s.dir, "model"),
        [(
            Some("fp16".to_string()),
            Layout::Sharded,
            "model.safetensors.index.fp16.json".to_string()
        )]
    );
    for asked in [None, Some("fp16")] {
        let ckpt = Checkpoint::open_dir_variant(&s.dir, "model", asked).unwrap();
        assert_eq!(ckpt.variant(), Some("fp16"));
        assert_eq!(ckpt.files().len(), 2);
        assert_eq!((value(&ckpt, "a"), value(&ckpt, "b")), (1.0, 2.0));
    }
}

/// Older transformers named the shards `model-00001-of-00002.fp16.safetensors`;
/// the names are taken from the index, so they load the same.
#[test]
fn variant_sharded_with_legacy_transformers_shard_names() {
    let s = Scratch::new("variant-sharded-legacy-t");
    s.sharded(
        "model.safetensors.index.fp16.json",
        &[
            ("model-00001-of-00002.fp16.safetensors", &[("a", 1.0)]),
            ("model-00002-of-00002.fp16.safetensors", &[("b", 2.0)]),
        ],
    );
    assert_eq!(listing(&s.dir, "model").len(), 1);
    let ckpt = Checkpoint::open_dir_variant(&s.dir, "model", Some("fp16")).unwrap();
    assert_eq!(ckpt.variant(), Some("fp16"));
    assert_eq!((value(&ckpt, "a"), value(&ckpt, "b")), (1.0, 2.0));
}

/// Current diffusers writes a sharded variant's index as
/// `diffusion_pytorch_model.safetensors.index.fp16.json`; older diffusers wrote
/// `diffusion_pytorch_model.safetensors.fp16.index.json` (the name diffusers
/// still reads as "legacy"). Both are read.
#[test]
fn variant_sharded_with_diffusers_index_names() {
    let stem = "diffusion_pytorch_model";
    for index in [
        "diffusion_pytorch_model.safetensors.index.fp16.json",
        "diffusion_pytorch_model.safetensors.fp16.index.json",
    ] {
        let s = Scratch::new("variant-sharded-diffusers");
        s.sharded(
            index,
            &[
                (
                    "diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                    &[("a", 1.0)],
                ),
                (
                    "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
                    &[("b", 2.0)],
                ),
            ],
        );
        assert_eq!(
            listing(&s.dir, stem),
            [(Some("fp16".to_string()), Layout::Sharded, index.to_string())]
        );
        let ckpt = Checkpoint::open_dir_variant(&s.dir, stem, Some("fp16")).unwrap();
        assert_eq!(ckpt.variant(), Some("fp16"), "{index}");
        assert_eq!((value(&ckpt, "a"), value(&ckpt, "b")), (1.0, 2.0));
    }
}

/// With plain files and a variant side by side, `None` reads the plain files
/// and `Some("fp16")` the variant (the values tell which file was read).
#[test]
fn plain_and_variant_side_by_side() {
    let s = Scratch::new("plain-and-variant");
    s.tensors("model.safetensors", &[("x", 1.0)]);
    s.tensors("model.fp16.safetensors", &[("x", 2.0)]);
    assert_eq!(
        listing(&s.dir, "model"),
        [
            (None, Layout::Single, "model.safetensors".to_string()),
            (
                Some("fp16".to_string()),
                Layout::Single,
                "model.fp16.safetensors".to_string()
            ),
        ]
    );
    let plain = Checkpoint::open_dir(&s.dir, "model").unwrap();
    assert_eq!((plain.variant(), value(&plain, "x")), (None, 1.0));
    let fp16 = Checkpoint::open_dir_variant(&s.dir, "model", Some("fp16")).unwrap();
    assert_eq!((fp16.variant(), value(&fp16, "x")), (Some("fp16"), 2.0));
}

/// When a variant is there both as a single file and as shards, the single
/// file is read.
#[test]
fn single_file_wins_over_shards_of_the_same_variant() {
    let s = Scratch::new("single-over-shards");
    s.tensors("model.fp16.safetensors", &[("x", 1.0)]);
    s.sharded(
        "model.safetensors.index.fp16.json",
        &[("model.fp16-00001-of-00001.safetensors", &[("x", 2.0)])],
    );
    let ckpt = Checkpoint::open_dir(&s.dir, "model").unwrap();
    assert_eq!(ckpt.variant(), Some("fp16"));
    assert_eq!(value(&ckpt, "x"), 1.0);
}

/// Two variants and no plain files: `None` refuses to guess and names the
/// directory and both variants; asking for one reads it.
#[test]
fn two_variants_without_plain_files_are_ambiguous() {
    let s = Scratch::new("two-variants");
    s.tensors("model.fp16.safetensors", &[("x", 1.0)]);
    s.sharded(
        "model.safetensors.index.bf16.json",
        &[("model.bf16-00001-of-00001.safetensors", &[("x", 2.0)])],
    );
    let err = Checkpoint::open_dir(&s.dir, "model").unwrap_err();
    match &err {
        WeightsError::AmbiguousVariant {
            dir,
            stem,
            variants,
        } => {
            assert_eq!(dir, &s.dir);
            assert_eq!(stem, "model");
            assert_eq!(variants, &["bf16", "fp16"]);
        }
        other => panic!("expected AmbiguousVariant, got {other:?}"),
    }
    let msg = err.to_string();
    for part in [&s.dir.display().to_string(), "bf16", "fp16", "model"] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    let bf16 = Checkpoint::open_dir_variant(&s.dir, "model", Some("bf16")).unwrap();
    assert_eq!((bf16.variant(), value(&bf16, "x")), (Some("bf16"), 2.0));
}

/// Asking for a variant the directory lacks names the directory, the files
/// looked for, and lists what it holds (plain and variant, single and
/// sharded).
#[test]
fn absent_variant_lists_what_the_directory_holds() {
    let s = Scratch::new("absent-variant");
    s.tensors("model.safetensors", &[("x", 1.0)]);
    s.sharded(
        "model.safetensors.index.fp16.json",
        &[("model.fp16-00001-of-00001.safetensors", &[("x", 2.0)])],
    );
    let err = Checkpoint::open_dir_variant(&s.dir, "model", Some("bf16")).unwrap_err();
    match &err {
        WeightsError::NotFound {
            dir, variant, held, ..
        } => {
            assert_eq!(dir, &s.dir);
            assert_eq!(variant.as_deref(), Some("bf16"));
            assert_eq!(held.len(), 2, "{held:?}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let msg = err.to_string();
    for part in [
        &s.dir.display().to_string(),
        "model.bf16.safetensors",
        "model.safetensors.index.bf16.json",
        "`model.safetensors` (plain)",
        "`model.safetensors.index.fp16.json` (variant fp16, sharded)",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert!(!msg.contains("00001-of"), "shards are not listed: {msg}");
}

/// A variant name is looked up among the files the directory holds, never
/// joined into a path: `../fp16` is just absent.
#[test]
fn variant_names_are_not_paths() {
    let s = Scratch::new("variant-path");
    s.tensors("model.fp16.safetensors", &[("x", 1.0)]);
    let err = Checkpoint::open_dir_variant(&s.dir, "model", Some("../fp16")).unwrap_err();
    assert!(matches!(err, WeightsError::NotFound { .. }), "{err}");
}

/// A directory with no weights at all, or only other stems' weights and
/// orphan shards, gives `NotFound` listing its weight files (the shards as
/// files, not as variants).
#[test]
fn no_weights_of_the_stem() {
    let s = Scratch::new("no-weights");
    std::fs::write(s.path("config.json"), "{}").unwrap();
    let err = Checkpoint::open_dir(&s.dir, "model").unwrap_err();
    assert!(
        matches!(&err, WeightsError::NotFound { held, variant: None, .. } if held.is_empty()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&s.dir.display().to_string()), "{msg}");
    assert!(msg.contains("`model.safetensors`"), "{msg}");
    assert!(msg.contains("holds no weight files"), "{msg}");

    s.tensors("model-00001-of-00002.safetensors", &[("x", 1.0)]);
    s.tensors("model.fp16-00001-of-00002.safetensors", &[("x", 1.0)]);
    std::fs::write(s.path("pytorch_model.bin"), "").unwrap();
    assert!(Checkpoint::variants_in(&s.dir, "model").unwrap().is_empty());
    let msg = Checkpoint::open_dir(&s.dir, "model")
        .unwrap_err()
        .to_string();
    for part in [
        "`model-00001-of-00002.safetensors`",
        "`model.fp16-00001-of-00002.safetensors`",
        "`pytorch_model.bin`",
    ] {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
    assert!(!msg.contains("config.json"), "{msg}");
}

/// A directory that does not exist is an I/O error naming it.
#[test]
fn missing_directory_is_named() {
    let s = Scratch::new("missing-dir");
    let dir = s.path("absent");
    let err = Checkpoint::open_dir(&dir, "model").unwrap_err();
    assert!(matches!(err, WeightsError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
}

/// A shard the index names but the disk lacks is `MissingShard`, naming the
/// shard and the index.
#[test]
fn missing_shard_names_shard_and_index() {
    let s = Scratch::new("missing-shard");
    s.tensors("model.fp16-00001-of-00002.safetensors", &[("a", 1.0)]);
    s.index(
        "model.safetensors.index.fp16.json",
        &[
            ("a", "model.fp16-00001-of-00002.safetensors"),
            ("b", "model.fp16-00002-of-00002.safetensors"),
        ],
    );
    let index = s.path("model.safetensors.index.fp16.json");
    let err = Checkpoint::open_dir_variant(&s.dir, "model", Some("fp16")).unwrap_err();
    match &err {
        WeightsError::MissingShard { index: i, shard } => {
            assert_eq!(i, &index);
            assert_eq!(shard, &s.path("model.fp16-00002-of-00002.safetensors"));
        }
        other => panic!("expected MissingShard, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("model.fp16-00002-of-00002.safetensors"),
        "{msg}"
    );
    assert!(msg.contains(&index.display().to_string()), "{msg}");
}

/// Shard names that leave the index's directory (parent, absolute, with a
/// separator) are refused before anything is read, even when a file exists
/// where they point.
#[test]
fn hostile_shard_names_are_refused() {
    let s = Scratch::new("hostile-shard");
    let inner = s.path("ckpt");
    std::fs::create_dir_all(inner.join("sub")).unwrap();
    common::write_tensors(&s.path("x.safetensors"), &[("x", 1.0)]);
    common::write_tensors(&inner.join("sub/x.safetensors"), &[("x", 1.0)]);
    let absolute = s.path("x.safetensors").display().to_string();
    for shard in [
        "../x.safetensors",
        absolute.as_str(),
        "/abs.safetensors",
        "sub/x.safetensors",
        "sub\\x.safetensors",
        "..",
        ".",
        "",
    ] {
        let index = inner.join("model.safetensors.index.json");
        let json = serde_json::json!({ "weight_map": { "x": shard } });
        std::fs::write(&index, json.to_string()).unwrap();
        let err = Checkpoint::open_dir(&inner, "model").unwrap_err();
        match &err {
            WeightsError::UnsafeShardPath { index: i, shard: s } => {
                assert_eq!(i, &index);
                assert_eq!(s, shard);
            }
            other => panic!("{shard:?}: expected UnsafeShardPath, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&index.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("`{shard}`")), "{msg}");
    }
}
