//! Integration tests of imagen-pipeline: the cascade and the DeepFloyd IF pipeline.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here.

mod cascade;
mod fuzz;
mod if_pipeline;
mod if_variant;
mod memory_and_shape;
