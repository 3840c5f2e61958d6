//! Applying a checkpoint to a burn module through burn-store.

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element};
use burn_store::{ApplyError, ModuleAdapter, ModuleSnapshot};

use crate::adapter::PyTorchLayout;

use crate::rename::apply_first;
use crate::{Checkpoint, Rename, WeightsError};

/// How a checkpoint's keys and layouts map onto a module.
///
/// ```
/// use imagen_weights::{LoadSpec, Rename};
/// let spec = LoadSpec::pytorch()
///     .rename(Rename::new("encoder.embed_tokens.", "shared."))
///     .ignore_prefix("decoder.");
/// ```
#[derive(Debug, Clone, Default)]
pub struct LoadSpec {
    renames: Vec<Rename>,
    ignored: Vec<String>,
    pytorch: bool,
    dtype: Option<DType>,
    dtype_rules: Vec<(String, DType)>,
}

impl LoadSpec {
    /// Keys and layouts used as they are.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checkpoint written by PyTorch: `nn.Linear` weights are stored
    /// `[out, in]` and are transposed into burn's `[in, out]`, norm
    /// parameters renamed (burn-store's `PyTorchToBurnAdapter`, with a faster
    /// transpose).
    pub fn pytorch() -> Self {
        Self {
            pytorch: true,
            ..Self::default()
        }
    }

    /// Adds a rename rule; the first matching rule wins.
    pub fn rename(mut self, rule: Rename) -> Self {
        self.renames.push(rule);
        self
    }

    /// Checkpoint keys starting with `prefix` are expected and skipped (for
    /// example the decoder of an encoder-decoder checkpoint).
    pub fn ignore_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.ignored.push(prefix.into());
        self
    }

    /// Loads float tensors as `dtype` instead of the backend's default float
    /// type (e.g. `DType::F16` or `DType::BF16` on a backend that computes in
    /// the dtype of its tensors, such as burn-flex).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// Loads the float tensors whose checkpoint key starts with `prefix` as
    /// `dtype`, whatever [`LoadSpec::dtype`] says for the rest (the first
    /// matching rule wins). `{n}` in `prefix` stands for a decimal index, as in
    /// [`Rename`]. transformers keeps T5's `wo` projections in f32 when the
    /// rest of the model computes in f16; this is how a loader says so:
    ///
    /// ```
    /// use burn::tensor::DType;
    /// use imagen_weights::LoadSpec;
    /// let spec = LoadSpec::pytorch()
    ///     .dtype(DType::F16)
    ///     .dtype_for("encoder.block.{n}.layer.1.DenseReluDense.wo.", DType::F32);
    /// assert_eq!(spec.dtype_of("encoder.block.3.layer.1.DenseReluDense.wo.weight"), Some(DType::F32));
    /// assert_eq!(spec.dtype_of("encoder.block.3.layer.1.DenseReluDense.wi_0.weight"), Some(DType::F16));
    /// ```
    pub fn dtype_for(mut self, prefix: impl Into<String>, dtype: DType) -> Self {
        self.dtype_rules.push((prefix.into(), dtype));
        self
    }

    /// The dtype the float tensor stored under checkpoint `key` is loaded as:
    /// the first [`LoadSpec::dtype_for`] rule matching it, else
    /// [`LoadSpec::dtype`] (`None`: the backend's default float type).
    pub fn dtype_of(&self, key: &str) -> Option<DType> {
        self.dtype_rules
            .iter()
            .find(|(prefix, _)| {
                Rename::new(prefix.as_str(), prefix.as_str())
                    .to_model(key)
                    .is_some()
            })
            .map(|&(_, dtype)| dtype)
            .or(self.dtype)
    }

    pub(crate) fn is_pytorch(&self) -> bool {
        self.pytorch
    }

    pub(crate) fn renames(&self) -> &[Rename] {
        &self.renames
    }

    fn is_ignored(&self, key: &str) -> bool {
        self.ignored.iter().any(|p| key.starts_with(p.as_str()))
    }
}

impl Checkpoint {
    /// Loads every parameter of `module` from this checkpoint, converting the
    /// stored float dtype (f32, f16, bf16, f64) to the backend's float type
    /// (or to [`LoadSpec::dtype`], or per key to [`LoadSpec::dtype_for`]),
    /// each tensor once, straight from the file's dtype.
    ///
    /// Fails, naming the key, if the model needs a tensor the checkpoint lacks,
    /// if the checkpoint holds a tensor that is neither used nor ignored by
    /// `spec`, or if a shape differs.
    pub fn load_into<B: Backend, M: ModuleSnapshot<B>>(
        &self,
        mut module: M,
        spec: &LoadSpec,
    ) -> Result<M, WeightsError> {
        let default = <B::FloatElem as Element>::dtype();
        let dtype_of = |key: &str| spec.dtype_of(key).unwrap_or(default);
        // One pass per dtype the spec asks for (most specs: one).
        let mut dtypes = vec![spec.dtype.unwrap_or(default)];
        for &(_, d) in &spec.dtype_rules {
            if !dtypes.contains(&d) {
                dtypes.push(d);
            }
        }
        let mut snapshots = Vec::new();
        for dtype in dtypes {
            snapshots.extend(
                self.snapshots(dtype, |key| !spec.is_ignored(key) && dtype_of(key) == dtype)?,
            );
        }
        for s in &mut snapshots {
            let key = s.full_path();
            let path = apply_first(&spec.renames, &key, true);
            if path != key {
                s.path_stack = Some(path.split('.').map(str::to_string).collect());
            }
        }
        let adapter: Option<Box<dyn ModuleAdapter>> = spec
            .pytorch
            .then(|| Box::new(PyTorchLayout) as Box<dyn ModuleAdapter>);
        let result = module.apply(snapshots, None, adapter, false);
        // burn's norm layers name their affine parameters `gamma` / `beta`;
        // PyTorch's are `weight` / `bias` (the adapter reads one as the other).
        let checkpoint_key = |path: &str| {
            let path = if spec.pytorch {
                norm_param_to_pytorch(path)
            } else {
                path.to_string()
            };
            apply_first(&spec.renames, &path, false)
        };
        let applied: std::collections::HashSet<String> = result
            .applied
            .iter()
            .map(|p| {
                if spec.pytorch {
                    norm_param_to_pytorch(p)
                } else {
                    p.clone()
                }
            })
            .collect();

        if let Some(err) = result.errors.first() {
            return Err(match err {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => {
                    let key = checkpoint_key(path);
                    let stored = self.get(&key).map(|e| e.shape.clone());
                    let mut expected = expected.to_vec();
                    // A transposed Linear weight: report the model's shape in
                    // the checkpoint's [out, in] layout.
                    if let Some(stored) = &stored
                        && stored.len() == 2
                        && found.as_slice() == [stored[1], stored[0]]
                    {
                        expected.reverse();
                    }
                    WeightsError::ShapeMismatch {
                        key,
                        expected,
                        found: stored.unwrap_or_else(|| found.to_vec()),
                    }
                }
                ApplyError::DTypeMismatch { path, .. }
                | ApplyError::AdapterError { path, .. }
                | ApplyError::LoadError { path, .. } => WeightsError::Load {
                    key: checkpoint_key(path),
                    reason: err.to_string(),
                },
            });
        }
        if !result.missing.is_empty() {
            let mut keys = result.missing.iter().map(|(p, _)| checkpoint_key(p));
            return Err(WeightsError::MissingTensor {
                key: keys.next().expect("non-empty"),
                others: keys.collect(),
            });
        }
        let unused: Vec<&String> = result
            .unused
            .iter()
            .filter(|p| !applied.contains(*p))
            .collect();
        if !unused.is_empty() {
            let mut keys = unused.iter().map(|p| checkpoint_key(p));
            return Err(WeightsError::UnexpectedTensor {
                key: keys.next().expect("non-empty"),
                others: keys.collect(),
            });
        }
        Ok(module)
    }
}

/// `x.gamma` → `x.weight`, `x.beta` → `x.bias`; other paths unchanged.
fn norm_param_to_pytorch(path: &str) -> String {
    if let Some(stem) = path.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = path.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        path.to_string()
    }
}
