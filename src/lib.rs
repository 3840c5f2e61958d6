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

/// The burn this crate is built on, for code that must name the same types.
pub use burn;
/// The CPU backend of the `flex` feature: `imagen-burn-flex`, our copy of
/// burn-flex 0.21.0 with faster convolutions. Its [`flex::patch`] module
/// reports what it carries, so a program can check that it runs the kernels
/// imagen is tested with.
#[cfg(feature = "flex")]
pub use burn_flex as flex;
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

/// Tunes glibc's `malloc` for tensor work, once at the start of a program:
/// large buffers come from the heap and freed ones stay there (up to 1 GiB
/// of slack) instead of going back to the kernel and faulting in afresh on
/// the next step. A CPU training step of the demo base runs 13 % faster,
/// the IF-layout one 20 %, at the same peak memory
/// (`docs/performance.md`). Returns whether it applied: `false` off glibc,
/// where it does nothing. Library code never calls it; programs opt in.
///
/// ```
/// let tuned = imagen::tune_allocator();
/// assert_eq!(tuned, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        // SAFETY: `mallopt` only sets allocator parameters (under glibc's
        // arena lock); it returns 1 on success.
        unsafe { mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Where the demo cascade shipped with this crate lives (`models/demo` in
/// the crate's source directory), so `generate` finds it from any working
/// directory.
pub fn demo_model_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo")
}
