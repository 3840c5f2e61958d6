//! Integration tests of imagen-pipeline: the cascade and the DeepFloyd IF pipeline.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here.

/// The backend of the IF parity tests (`if_pipeline::`, `if_variant::`),
/// chosen by this crate's features; the other tests run on burn-flex.
#[cfg(feature = "cuda")]
pub(crate) type TestBackend = burn::backend::Cuda;
/// The backend of the IF parity tests (`if_pipeline::`, `if_variant::`),
/// chosen by this crate's features; the other tests run on burn-flex.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub(crate) type TestBackend = burn::backend::Wgpu;
/// The backend of the IF parity tests (`if_pipeline::`, `if_variant::`),
/// chosen by this crate's features; the other tests run on burn-flex.
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
pub(crate) type TestBackend = burn::backend::NdArray;
/// The backend of the IF parity tests (`if_pipeline::`, `if_variant::`),
/// chosen by this crate's features; the other tests run on burn-flex.
#[cfg(not(any(feature = "wgpu", feature = "ndarray", feature = "cuda")))]
pub(crate) type TestBackend = burn_flex::Flex;

mod cascade;
mod fuzz;
mod if_pipeline;
mod if_variant;
mod memory_and_shape;
