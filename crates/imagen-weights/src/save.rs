//! Writing a burn module as a safetensors checkpoint, in the layout
//! [`Checkpoint::load_into`](crate::Checkpoint::load_into) reads back.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, TensorData};
use burn_store::{BurnToPyTorchAdapter, ModuleAdapter, ModuleSnapshot};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::LoadSpec;
use crate::WeightsError;
use crate::rename::apply_first;

impl LoadSpec {
    /// Writes every parameter of `module` to the safetensors file `path`
    /// under the checkpoint names this spec reads (renames run backwards;
    /// with [`LoadSpec::pytorch`], `nn.Linear` weights are stored `[out, in]`
    /// and norm parameters as `weight` / `bias`), so that
    /// `Checkpoint::open(path)?.load_into(module, &spec)` restores it exactly.
    ///
    /// `dtype` (`F32`, `F16`, `BF16`) is the stored float type; `None` keeps
    /// the module's own. The file is written to `path` + `.tmp` and renamed,
    /// so a crash never leaves a half-written checkpoint under `path`.
    pub fn save<B: Backend, M: ModuleSnapshot<B>>(
        &self,
        module: &M,
        path: impl AsRef<Path>,
        dtype: Option<DType>,
    ) -> Result<(), WeightsError> {
        let path = path.as_ref();
        let adapter: Option<Box<dyn ModuleAdapter>> = self
            .is_pytorch()
            .then(|| Box::new(BurnToPyTorchAdapter) as Box<dyn ModuleAdapter>);
        let snapshots = module.collect(None, adapter, false);
        let mut tensors: Vec<(String, TensorData)> = Vec::with_capacity(snapshots.len());
        for s in &snapshots {
            let key = apply_first(self.renames(), &s.full_path(), false);
            let data = s.to_data().map_err(|e| WeightsError::Load {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            let data = match dtype {
                Some(d) if data.dtype != d && data.dtype.is_float() => data.convert_dtype(d),
                _ => data,
            };
            tensors.push((key, data));
        }
        save_tensors(path, tensors)
    }
}

/// Writes named tensors (any float or integer dtype) to the safetensors file
/// `path`, keys sorted, through `path` + `.tmp` and a rename so a crash never
/// leaves a half-written file under `path`. [`LoadSpec::save`] and
/// optimiser-state checkpoints write through it.
pub fn save_tensors(
    path: impl AsRef<Path>,
    mut tensors: Vec<(String, TensorData)>,
) -> Result<(), WeightsError> {
    let path = path.as_ref();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let views = tensors
        .iter()
        .map(|(key, data)| {
            let view = TensorView::new(
                st_dtype(key, data.dtype)?,
                data.shape.to_vec(),
                data.as_bytes(),
            )
            .map_err(|e| WeightsError::Load {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            Ok((key.as_str(), view))
        })
        .collect::<Result<Vec<_>, WeightsError>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    let io = |source| WeightsError::Io {
        path: tmp.clone(),
        source,
    };
    let bytes = safetensors::serialize(views, None).map_err(|e| WeightsError::InvalidFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn st_dtype(key: &str, dtype: DType) -> Result<Dtype, WeightsError> {
    Ok(match dtype {
        DType::F64 => Dtype::F64,
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::U8 => Dtype::U8,
        DType::Bool(_) => Dtype::BOOL,
        other => {
            return Err(WeightsError::Load {
                key: key.to_string(),
                reason: format!("cannot store dtype {other:?} in safetensors"),
            });
        }
    })
}
