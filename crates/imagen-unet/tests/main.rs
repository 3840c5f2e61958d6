//! Integration and parity tests of imagen-unet against recorded diffusers outputs.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here.

mod common;

mod attention;
mod attention_pool;
mod embeddings;
mod fuzz;
mod gradients;
mod loading;
mod param_counts;
mod precision;
mod presets;
mod resnet;
mod train_and_sample;
mod unet;
