//! Resumable checkpoints: weights, EMA weights, AdamW state, step and data
//! position, written to a temporary directory and renamed into place so a
//! crash never leaves a broken checkpoint; the last K are kept.
//!
//! Layout of `<dir>/step-00000100/`: `model/` and `ema/` (diffusers `unet/`
//! layout, loadable by the pipeline), `optimizer.safetensors` (AdamW moments
//! keyed by parameter path: `<path>.moment_1`, `<path>.moment_2`), and
//! `state.json` ([`CheckpointState`]).

use std::collections::HashMap;
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
}

fn checkpoint_dirs(dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("step-")?.parse().ok()?;
            e.path()
                .join("state.json")
                .exists()
                .then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The newest complete checkpoint in `dir`, if any.
pub fn latest_checkpoint(dir: impl AsRef<Path>) -> Option<PathBuf> {
    checkpoint_dirs(dir.as_ref()).pop().map(|(_, p)| p)
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
            found: data.shape.to_vec(),
            expected: shape.to_vec(),
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
    /// but the newest `keep` checkpoints. `data_position` is the data
    /// loader's position, returned on resume.
    pub fn save(
        &self,
        dir: impl AsRef<Path>,
        data_position: u64,
        keep: usize,
    ) -> Result<PathBuf, TrainError> {
        let dir = dir.as_ref();
        let final_dir = dir.join(format!("step-{:08}", self.step));
        let tmp = dir.join(format!(".step-{:08}.tmp", self.step));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
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
        };
        let state_path = tmp.join("state.json");
        let json = serde_json::to_string_pretty(&state).map_err(|source| TrainError::Json {
            path: state_path.clone(),
            source,
        })?;
        std::fs::write(&state_path, json).map_err(io(&state_path))?;

        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        let all = checkpoint_dirs(dir);
        for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
            std::fs::remove_dir_all(old).map_err(io(old))?;
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
    /// parameter's.
    pub fn resume(
        checkpoint: impl AsRef<Path>,
        config: TrainConfig,
        device: &B::Device,
    ) -> Result<(Self, u64), TrainError> {
        let dir = checkpoint.as_ref();
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
                    a_value,
                    b_value,
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
