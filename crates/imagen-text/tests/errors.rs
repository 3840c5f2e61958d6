//! Bad checkpoints and configs give typed errors that name the file, key or field.

use crate::common;

use std::path::{Path, PathBuf};

use common::{TestBackend, fixtures};
use imagen_text::{T5Config, T5Encoder, TextEncoder, TextError};
use imagen_weights::{Checkpoint, WeightsError};

/// A scratch copy of a fixture directory that a test may damage.
fn scratch(name: &str, from: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imagen-text-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join(from)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

fn load(dir: &Path) -> Result<T5Encoder<TestBackend>, TextError> {
    T5Encoder::from_dir(dir, &Default::default())
}

/// Rewrites a safetensors file, letting `edit` change its tensors.
fn rewrite(
    path: &Path,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, d, s, b)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn missing_directory_and_files_are_named() {
    let err = load(Path::new("/nonexistent/t5")).unwrap_err();
    assert!(matches!(err, TextError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/t5/config.json"),
        "{err}"
    );

    let dir = scratch("nofile", "t5_gated");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(err, TextError::Weights(WeightsError::NotFound { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let err = TextEncoder::<TestBackend>::from_dir(
        scratch("notok", "t5_gated").join("x"),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn garbage_and_truncated_safetensors_are_rejected() {
    let dir = scratch("garbage", "t5_gated");
    let file = dir.join("model.safetensors");
    std::fs::write(&file, b"this is not a safetensors file at all").unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(err, TextError::Weights(WeightsError::InvalidFile { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let dir = scratch("truncated", "t5_gated");
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(err, TextError::Weights(WeightsError::InvalidFile { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn wrong_shape_names_key_and_both_shapes() {
    let dir = scratch("shape", "t5_gated");
    rewrite(&dir.join("model.safetensors"), |t| {
        let q = t
            .iter_mut()
            .find(|t| t.0 == "encoder.block.1.layer.0.SelfAttention.q.weight")
            .unwrap();
        // [48, 40] stored as [40, 48]: the classic transposed-weight mistake.
        q.2 = vec![40, 48];
    });
    match load(&dir).unwrap_err() {
        TextError::Weights(WeightsError::ShapeMismatch {
            key,
            expected,
            found,
        }) => {
            assert_eq!(key, "encoder.block.1.layer.0.SelfAttention.q.weight");
            assert_eq!(expected, vec![48, 40]);
            assert_eq!(found, vec![40, 48]);
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
}

#[test]
fn missing_key_is_named_as_the_checkpoint_names_it() {
    let dir = scratch("missing", "t5_gated");
    rewrite(&dir.join("model.safetensors"), |t| {
        t.retain(|t| t.0 != "encoder.block.2.layer.1.DenseReluDense.wi_1.weight")
    });
    match load(&dir).unwrap_err() {
        TextError::Weights(WeightsError::MissingTensor { key, others }) => {
            assert_eq!(key, "encoder.block.2.layer.1.DenseReluDense.wi_1.weight");
            assert!(others.is_empty());
        }
        other => panic!("expected MissingTensor, got {other}"),
    }
}

#[test]
fn unexpected_key_is_named() {
    let dir = scratch("unexpected", "t5_gated");
    rewrite(&dir.join("model.safetensors"), |t| {
        let extra = t[0].clone();
        t.push((
            "encoder.block.7.layer.0.SelfAttention.q.weight".into(),
            extra.1,
            extra.2,
            extra.3,
        ));
    });
    match load(&dir).unwrap_err() {
        TextError::Weights(WeightsError::UnexpectedTensor { key, .. }) => {
            assert_eq!(key, "encoder.block.7.layer.0.SelfAttention.q.weight");
        }
        other => panic!("expected UnexpectedTensor, got {other}"),
    }
}

#[test]
fn integer_weights_are_an_unsupported_dtype() {
    let dir = scratch("dtype", "t5_gated");
    rewrite(&dir.join("model.safetensors"), |t| {
        let ln = t
            .iter_mut()
            .find(|t| t.0 == "encoder.final_layer_norm.weight")
            .unwrap();
        ln.1 = safetensors::Dtype::I32;
    });
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            TextError::Weights(WeightsError::UnsupportedDtype { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("encoder.final_layer_norm.weight"),
        "{err}"
    );
}

#[test]
fn unknown_feed_forward_proj_names_the_field() {
    let dir = scratch("ffproj", "t5_gated");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"gated-gelu\"", "\"gated-mish\""),
    )
    .unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            TextError::UnsupportedConfig {
                field: "feed_forward_proj",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gated-mish"), "{err}");
}

#[test]
fn config_mismatching_the_checkpoint_is_a_shape_error() {
    let mut cfg = T5Config::from_file(fixtures().join("t5_gated/config.json")).unwrap();
    cfg.d_ff = 80;
    let ckpt = Checkpoint::open_dir(fixtures().join("t5_gated"), "model").unwrap();
    let err = T5Encoder::<TestBackend>::load(&cfg, &ckpt, &Default::default()).unwrap_err();
    assert!(
        matches!(err, TextError::Weights(WeightsError::ShapeMismatch { .. })),
        "{err}"
    );
}

#[test]
fn sharded_index_pointing_at_a_missing_shard_is_named() {
    let dir = scratch("shards", "t5_gated_sharded");
    std::fs::remove_file(dir.join("model-00003-of-00014.safetensors")).unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        err.to_string().contains("model-00003-of-00014.safetensors"),
        "{err}"
    );
}

/// Issue 39: a tokenizer with more ids than the model has embedding rows (a
/// tokenizer of another model) is refused at load, naming both numbers,
/// instead of indexing past the table at encode time.
#[test]
fn tokenizer_ids_beyond_vocab_size_are_refused_at_load() {
    let dir = scratch("vocab", "t5_gated");
    let config = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["vocab_size"] = 80.into();
    std::fs::write(&config, json.to_string()).unwrap();
    rewrite(&dir.join("model.safetensors"), |tensors| {
        let shared = tensors.iter_mut().find(|t| t.0 == "shared.weight").unwrap();
        let row_bytes = shared.3.len() / shared.2[0];
        shared.2[0] = 80;
        shared.3.truncate(80 * row_bytes);
    });
    let err = TextEncoder::<TestBackend>::from_dir(&dir, &Default::default()).unwrap_err();
    assert!(
        matches!(
            err,
            TextError::VocabSize {
                max_id: 90,
                vocab_size: 80,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    // The fixture as recorded fits: 91 ids, 91 rows.
    TextEncoder::<TestBackend>::from_dir(fixtures().join("t5_gated"), &Default::default()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
