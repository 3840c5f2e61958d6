//! Load Hugging Face safetensors checkpoints into burn modules.
//!
//! Shared by the `imagen-*` crates: T5 (`model.safetensors`), diffusers U-Nets
//! (`diffusion_pytorch_model.safetensors`), single files or shards listed by an
//! `*.safetensors.index.json`, stored as f32, f16, bf16 or f64, plain or in
//! one of the variants (`fp16`...) Hugging Face repositories hold beside the
//! plain files ([`Checkpoint::open_dir_variant`], [`Checkpoint::variants_in`]).
//!
//! The module side goes through burn-store (`ModuleSnapshot::apply`, its
//! `PyTorchToBurnAdapter` for `nn.Linear` layouts). The file side reads each
//! tensor straight from disk when burn-store asks for it, instead of
//! burn-store's memory map: a mapped file keeps every page it touched resident
//! until loading ends, so peak memory would be model + file. Here it is model +
//! the largest tensor.
//!
//! ```no_run
//! use imagen_weights::{Checkpoint, LoadSpec};
//! # fn load<B: burn::tensor::backend::Backend, M: burn_store::ModuleSnapshot<B>>(m: M) -> Result<M, imagen_weights::WeightsError> {
//! let model = Checkpoint::open_dir("t5-small", "model")?.load_into(m, &LoadSpec::pytorch())?;
//! # Ok(model) }
//! ```
#![warn(missing_docs)]

mod adapter;
mod checkpoint;
mod error;
mod load;
mod options;
mod params;
mod rename;
mod save;
mod variants;

pub use checkpoint::{Checkpoint, TensorEntry};
pub use error::WeightsError;
pub use load::LoadSpec;
pub use options::{LoadOptions, check_dtype};
pub use params::count_params;
pub use rename::Rename;
pub use save::save_tensors;
pub use variants::{Layout, WeightFiles};
