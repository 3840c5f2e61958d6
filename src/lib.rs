//! Imagen text-to-image diffusion in Rust, on burn.
//!
//! This crate is the top of the workspace: it re-exports the `imagen-*` crates
//! and picks a default backend from cargo features, so that examples and
//! benches write `imagen::DefaultBackend` once.
//!
//! | feature | backend |
//! |---|---|
//! | `flex` (default) | [`burn_flex::Flex`]: pure-Rust CPU, multi-threaded, AVX-512 gemm when present |
//! | `ndarray` | `burn::backend::NdArray`: CPU |
//! | `wgpu` | `burn::backend::Wgpu`: Vulkan / Metal / DX12 (lavapipe on a CPU) |
//! | `cuda` | `burn::backend::Cuda`: NVIDIA GPUs |
//!
//! When several are enabled the first in the order `cuda`, `wgpu`, `flex`,
//! `ndarray` is the default.
#![warn(missing_docs)]

pub use imagen_diffusion as diffusion;
pub use imagen_pipeline as pipeline;
pub use imagen_shapes as shapes;
pub use imagen_text as text;
pub use imagen_train as train;
pub use imagen_unet as unet;
pub use imagen_weights as weights;

/// The backend chosen by cargo features (see the crate docs).
#[cfg(feature = "cuda")]
pub type DefaultBackend = burn::backend::Cuda;
/// The backend chosen by cargo features (see the crate docs).
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type DefaultBackend = burn::backend::Wgpu;
/// The backend chosen by cargo features (see the crate docs).
#[cfg(all(feature = "flex", not(any(feature = "cuda", feature = "wgpu"))))]
pub type DefaultBackend = burn_flex::Flex;
/// The backend chosen by cargo features (see the crate docs).
#[cfg(all(
    feature = "ndarray",
    not(any(feature = "cuda", feature = "wgpu", feature = "flex"))
))]
pub type DefaultBackend = burn::backend::NdArray;

/// The default device of [`DefaultBackend`].
#[cfg(any(
    feature = "cuda",
    feature = "wgpu",
    feature = "flex",
    feature = "ndarray"
))]
pub fn default_device() -> burn::tensor::Device<DefaultBackend> {
    Default::default()
}

/// Device `index` of [`DefaultBackend`]: the `index`-th GPU with `cuda` or
/// `wgpu` (0 is [`default_device`]), the one CPU device with `flex` or
/// `ndarray` (peers of a data-parallel run then share it).
#[cfg(any(
    feature = "cuda",
    feature = "wgpu",
    feature = "flex",
    feature = "ndarray"
))]
pub fn device(index: usize) -> burn::tensor::Device<DefaultBackend> {
    #[cfg(feature = "cuda")]
    return burn::backend::cuda::CudaDevice::new(index);
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    return match index {
        0 => Default::default(),
        i => burn::backend::wgpu::WgpuDevice::DiscreteGpu(i),
    };
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    {
        let _ = index;
        Default::default()
    }
}
