//! Shared helpers: scratch directories and tiny safetensors checkpoints.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use imagen_weights::Checkpoint;

/// A fresh directory under the system temp dir, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    /// An empty directory named after the test and this process.
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("imagen-weights-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the safetensors file `name`: one single-element f32 tensor per
    /// `(key, value)`.
    pub fn tensors(&self, name: &str, tensors: &[(&str, f32)]) {
        write_tensors(&self.path(name), tensors);
    }

    /// Writes a sharded checkpoint: each shard file with its tensors, and
    /// the index `index` mapping every key to its shard.
    pub fn sharded(&self, index: &str, shards: &[(&str, &[(&str, f32)])]) {
        let mut map = Vec::new();
        for (shard, tensors) in shards {
            self.tensors(shard, tensors);
            map.extend(tensors.iter().map(|(k, _)| (*k, *shard)));
        }
        self.index(index, &map);
    }

    /// Writes only the index `name`, mapping each key to a shard name as
    /// given (which may be missing or hostile).
    pub fn index(&self, name: &str, map: &[(&str, &str)]) {
        let weight_map: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(k, s)| (k.to_string(), serde_json::Value::from(*s)))
            .collect();
        let json = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
        std::fs::write(self.path(name), json.to_string()).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes one single-element f32 tensor per `(key, value)` to `path`.
pub fn write_tensors(path: &Path, tensors: &[(&str, f32)]) {
    let bytes: Vec<[u8; 4]> = tensors.iter().map(|(_, v)| v.to_le_bytes()).collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((k, _), b)| {
            (
                *k,
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// The value of the single-element tensor `key`.
pub fn value(ckpt: &Checkpoint, key: &str) -> f32 {
    ckpt.read(key, DType::F32).unwrap().to_vec::<f32>().unwrap()[0]
}
