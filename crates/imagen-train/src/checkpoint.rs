//! Resumable checkpoints: weights, EMA weights, AdamW state, step and data
//! position; the last K are kept.
//!
//! Layout of `<dir>/step-00000100/`: `model/` and `ema/` (diffusers `unet/`
//! layout, loadable by the pipeline), `optimizer.safetensors` (AdamW moments
//! keyed by parameter path: `<path>.moment_1`, `<path>.moment_2`), and
//! `state.json` ([`CheckpointState`]).
//!
//! # Crash safety
//! A checkpoint is written to `<dir>/.step-00000100.tmp/`; every file and
//! folder in it is fsynced, the folder is renamed into place, and `<dir>`
//! is fsynced so that the rename itself survives a power loss. Whatever the
//! moment of a crash, `<dir>` then holds complete checkpoints plus, at
//! most, a `.step-*.tmp` folder, which [`latest_checkpoint`] never returns
//! and the next save or resume removes. Old checkpoints are pruned by
//! order of writing (each `state.json` carries a `sequence` number), never
//! by step, so a run resumed from an earlier step never deletes the
//! checkpoint it just wrote; a pruned or replaced checkpoint is first
//! renamed to a `.step-*.tmp` name, so a crash while deleting it leaves
//! nothing that looks complete. One run per checkpoint folder: a save or
//! resume removes the temporary folders it finds there.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{AdamW, AdamWState, AdaptiveMomentumState, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_store::ModuleSnapshot;
use imagen_unet::{UNet, UNetConfig};
use imagen_weights::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::error::io;
use crate::trainer::adamw;
use crate::{TrainConfig, TrainError, Trainer};

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimiser steps taken.
    pub step: usize,
    /// Examples the data loader had consumed.
    pub data_position: u64,
    /// AdamW step counts by parameter path.
    pub adam_time: HashMap<String, usize>,
    /// The run's settings.
    pub config: TrainConfig,
    /// The network's config.
    pub unet_config: UNetConfig,
    /// Order of writing among the checkpoints of its folder: one more than
    /// the highest found there when it was saved (0 in checkpoints written
    /// before this field existed). The newest checkpoint is the one with
    /// the highest `sequence`, then the highest step.
    #[serde(default)]
    pub sequence: u64,
}

/// Every file a complete checkpoint holds, relative to its folder.
const CHECKPOINT_FILES: [&str; 6] = [
    "state.json",
    "optimizer.safetensors",
    "model/config.json",
    "model/diffusion_pytorch_model.safetensors",
    "ema/config.json",
    "ema/diffusion_pytorch_model.safetensors",
];

/// A complete checkpoint found in a folder.
struct Found {
    sequence: u64,
    step: usize,
    path: PathBuf,
}

/// The complete checkpoints in `dir` (`step-*` folders holding every file
/// of [`CHECKPOINT_FILES`] and a readable `state.json`), oldest written
/// first.
fn checkpoint_dirs(dir: &Path) -> Vec<Found> {
    let mut found: Vec<Found> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("step-")?.parse().ok()?;
            let path = e.path();
            if !CHECKPOINT_FILES.iter().all(|f| path.join(f).is_file()) {
                return None;
            }
            let text = std::fs::read_to_string(path.join("state.json")).ok()?;
            let state: CheckpointState = serde_json::from_str(&text).ok()?;
            Some(Found {
                sequence: state.sequence,
                step,
                path,
            })
        })
        .collect();
    found.sort_by(|a, b| (a.sequence, a.step, &a.path).cmp(&(b.sequence, b.step, &b.path)));
    found
}

/// The newest complete checkpoint in `dir`, if any: the one written last
/// (see [`CheckpointState::sequence`]). Temporary `.step-*.tmp` folders and
/// `step-*` folders missing a file or holding an unreadable `state.json`
/// are skipped.
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Option<PathBuf> {
    checkpoint_dirs(dir.as_ref()).pop().map(|c| c.path)
}

/// Whether `name` is a temporary checkpoint folder (`.step-*.tmp`).
fn is_temporary(name: &str) -> bool {
    name.starts_with(".step-") && name.ends_with(".tmp")
}

/// Removes the `.step-*.tmp` folders in `dir`: checkpoints whose writing or
/// deletion a crash interrupted.
fn remove_temporaries(dir: &Path) -> Result<(), TrainError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if entry.file_name().to_str().is_some_and(is_temporary) {
            let path = entry.path();
            let removed = if entry.file_type().map_err(io(&path))?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io(&path))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` and flushes them to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Flushes a folder's entries (a rename, a new file) to the disk. Only
/// Unix can open a folder for that; elsewhere this does nothing.
fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Flushes every file and folder under `dir`, and `dir` itself, to the
/// disk (some are written by other crates without an fsync).
fn sync_tree(dir: &Path) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path))?;
        }
    }
    sync_dir(dir)
}

/// Deletes the checkpoint folder `path` in `dir`: renamed to a temporary
/// name first (atomic), so that a crash while deleting leaves a folder the
/// next save removes rather than a half-deleted checkpoint.
fn remove_checkpoint(dir: &Path, path: &Path) -> Result<(), TrainError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trash = dir.join(format!(".{name}.removed.tmp"));
    std::fs::rename(path, &trash).map_err(io(path))?;
    sync_dir(dir)?;
    std::fs::remove_dir_all(&trash).map_err(io(&trash))
}

/// Parameter id → module path and shape of every float parameter.
fn paths<B: Backend, M: ModuleSnapshot<B>>(module: &M) -> HashMap<ParamId, (String, Vec<usize>)> {
    module
        .collect(None, None, false)
        .into_iter()
        .filter_map(|s| Some((s.tensor_id?, (s.full_path(), s.shape.to_vec()))))
        .collect()
}

/// Reads the AdamW moment `key` of `parameter` from `moments` (the file
/// `path`), refusing one whose shape is not the parameter's: a moment of
/// another rank would panic in `Tensor::from_data`, one of another shape
/// would break (or silently mis-scale) the next update.
fn read_moment(
    moments: &Checkpoint,
    path: &Path,
    parameter: &str,
    key: String,
    shape: &[usize],
) -> Result<TensorData, TrainError> {
    let data = moments.read(&key, burn::tensor::DType::F32)?;
    if data.shape.as_slice() != shape {
        return Err(TrainError::OptimizerState {
            path: path.to_path_buf(),
            parameter: parameter.to_string(),
            key,
            found: data.shape.to_vec().into(),
            expected: shape.into(),
        });
    }
    Ok(data)
}

fn state_parts<B: AutodiffBackend, const D: usize>(
    record: AdaptorRecord<AdamW, B>,
) -> (usize, TensorData, TensorData) {
    let s: AdamWState<B::InnerBackend, D> = record.into_state::<D>();
    (
        s.momentum.time,
        s.momentum.moment_1.into_data(),
        s.momentum.moment_2.into_data(),
    )
}

fn record_from<B: AutodiffBackend, const D: usize>(
    time: usize,
    m1: TensorData,
    m2: TensorData,
    device: &B::Device,
) -> AdaptorRecord<AdamW, B> {
    AdaptorRecord::from_state::<D>(AdamWState {
        momentum: AdaptiveMomentumState {
            time,
            moment_1: Tensor::from_data(m1, device),
            moment_2: Tensor::from_data(m2, device),
            max_moment_2: None,
        },
    })
}

/// The [`TrainConfig`] fields a resumed run may change: they shape the
/// learning rate from the saved step on and leave the weights, moments and
/// data order as they were.
pub const SCHEDULE_FIELDS: [&str; 4] = ["steps", "lr", "warmup_steps", "lr_schedule"];

/// The first top-level key whose value differs between two configs.
fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (a, b) else {
        return (a != b).then(|| (String::new(), a.to_string(), b.to_string()));
    };
    a.iter().find_map(|(k, v)| {
        let w = b.get(k).unwrap_or(&serde_json::Value::Null);
        (v != w).then(|| (k.clone(), v.to_string(), w.to_string()))
    })
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Writes a checkpoint for the current step under `dir` and deletes all
    /// but the newest `keep` (at least 1) checkpoints, newest by order of
    /// writing: the one just written is always kept. `data_position` is the
    /// data loader's position, returned on resume. A checkpoint of the same
    /// step already in `dir` is replaced. Crash-safe: see the module docs.
    pub fn save(
        &self,
        dir: impl AsRef<Path>,
        data_position: u64,
        keep: usize,
    ) -> Result<PathBuf, TrainError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        remove_temporaries(dir)?;
        let sequence = checkpoint_dirs(dir)
            .last()
            .map_or(1, |c| c.sequence.saturating_add(1));
        let final_dir = dir.join(format!("step-{:08}", self.step));
        let tmp = dir.join(format!(".step-{:08}.tmp", self.step));
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        self.unet()
            .valid()
            .save_dir(&self.unet_config, tmp.join("model"), None)?;
        self.ema
            .save_dir(&self.unet_config, tmp.join("ema"), None)?;

        let ids = paths(self.unet());
        let mut adam_time = HashMap::new();
        let mut tensors: Vec<(String, TensorData)> = Vec::new();
        for (id, record) in self.optim.to_record() {
            let Some((path, shape)) = ids.get(&id) else {
                continue;
            };
            let (time, m1, m2) = match shape.len() {
                1 => state_parts::<B, 1>(record),
                2 => state_parts::<B, 2>(record),
                3 => state_parts::<B, 3>(record),
                _ => state_parts::<B, 4>(record),
            };
            adam_time.insert(path.clone(), time);
            tensors.push((format!("{path}.moment_1"), m1.convert::<f32>()));
            tensors.push((format!("{path}.moment_2"), m2.convert::<f32>()));
        }
        imagen_weights::save_tensors(tmp.join("optimizer.safetensors"), tensors)?;

        let state = CheckpointState {
            step: self.step,
            data_position,
            adam_time,
            config: self.config.clone(),
            unet_config: self.unet_config.clone(),
            sequence,
        };
        let state_path = tmp.join("state.json");
        let json = serde_json::to_string_pretty(&state).map_err(|source| TrainError::Json {
            path: state_path.clone(),
            source,
        })?;
        write_synced(&state_path, json.as_bytes())?;
        // Every file and folder of the checkpoint is on the disk before the
        // rename makes it visible.
        sync_tree(&tmp)?;

        if final_dir.exists() {
            remove_checkpoint(dir, &final_dir)?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        sync_dir(dir)?;

        let older: Vec<Found> = checkpoint_dirs(dir)
            .into_iter()
            .filter(|c| c.path != final_dir)
            .collect();
        let excess = (older.len() + 1).saturating_sub(keep.max(1));
        for old in older.iter().take(excess) {
            remove_checkpoint(dir, &old.path)?;
        }
        Ok(final_dir)
    }

    /// Restores a trainer from `checkpoint` (a `step-*` directory) for a run
    /// with `config`; returns it and the saved data position. Refuses a
    /// checkpoint whose config differs, naming the setting, except for the
    /// learning-rate schedule ([`SCHEDULE_FIELDS`]): a continued run may be
    /// made longer or decay differently, and picks up at the saved step.
    /// Also refuses, with typed errors naming the files, a checkpoint whose
    /// `state.json` U-Net config differs from `model/config.json` or
    /// `ema/config.json`, and an optimiser moment whose shape is not its
    /// parameter's. Removes the stale `.step-*.tmp` folders beside
    /// `checkpoint` (see the module docs).
    pub fn resume(
        checkpoint: impl AsRef<Path>,
        config: TrainConfig,
        device: &B::Device,
    ) -> Result<(Self, u64), TrainError> {
        let dir = checkpoint.as_ref();
        // A crash may have left a half-written checkpoint beside this one.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            remove_temporaries(parent)?;
        }
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
        let state: CheckpointState =
            serde_json::from_str(&text).map_err(|source| TrainError::Json {
                path: state_path.clone(),
                source,
            })?;
        let mut saved = serde_json::to_value(&state.config).expect("serializable");
        let mut now = serde_json::to_value(&config).expect("serializable");
        for v in [&mut saved, &mut now] {
            if let Some(o) = v.as_object_mut() {
                for field in SCHEDULE_FIELDS {
                    o.remove(field);
                }
            }
        }
        if let Some((field, checkpoint, current)) = first_difference(&saved, &now) {
            return Err(TrainError::ConfigMismatch {
                path: dir.to_path_buf(),
                field,
                checkpoint,
                current,
            });
        }
        // The trainer keeps state.json's U-Net config (and writes it into
        // the next checkpoint); the weights come with model/config.json and
        // ema/config.json. All three must agree.
        for part in ["model", "ema"] {
            let config_path = dir.join(part).join("config.json");
            let on_disk = UNetConfig::from_file(&config_path)?;
            if on_disk != state.unet_config {
                let (field, a_value, b_value) = first_difference(
                    &serde_json::to_value(&state.unet_config).expect("serializable"),
                    &serde_json::to_value(&on_disk).expect("serializable"),
                )
                .unwrap_or_else(|| ("unet_config".into(), String::new(), String::new()));
                return Err(TrainError::InconsistentCheckpoint {
                    a: state_path,
                    b: config_path,
                    field,
                    a_value: a_value.into(),
                    b_value: b_value.into(),
                });
            }
        }
        let unet = UNet::<B>::from_dir(dir.join("model"), device)?;
        let ema = unet.valid().load_checkpoint(&Checkpoint::open_dir(
            dir.join("ema"),
            "diffusion_pytorch_model",
        )?)?;

        let optim_path = dir.join("optimizer.safetensors");
        let moments = Checkpoint::open(&optim_path)?;
        let mut records: <OptimizerAdaptor<AdamW, UNet<B>, B> as Optimizer<UNet<B>, B>>::Record =
            Default::default();
        for (id, (path, shape)) in paths(&unet) {
            let Some(&time) = state.adam_time.get(&path) else {
                continue;
            };
            let moment =
                |k: &str| read_moment(&moments, &optim_path, &path, format!("{path}.{k}"), &shape);
            let (m1, m2) = (moment("moment_1")?, moment("moment_2")?);
            let d = device;
            let record = match shape.len() {
                1 => record_from::<B, 1>(time, m1, m2, d),
                2 => record_from::<B, 2>(time, m1, m2, d),
                3 => record_from::<B, 3>(time, m1, m2, d),
                4 => record_from::<B, 4>(time, m1, m2, d),
                rank => {
                    return Err(TrainError::InvalidConfig(format!(
                        "parameter `{path}` has rank {rank}; optimiser state of ranks 1 to 4 only"
                    )));
                }
            };
            records.insert(id, record);
        }
        let optim = adamw::<B>(&config).load_record(records);
        let trainer = Trainer::from_parts(config, state.unet_config, unet, ema, optim, state.step)?;
        Ok((trainer, state.data_position))
    }
}
