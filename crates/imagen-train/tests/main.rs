//! Integration tests of imagen-train: data, the trainer, checkpoints, data
//! parallelism and whole training runs.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here. `data_parallel_nodes.rs` is a binary of its own.

mod data_support;
mod parallel_support;
mod seeded;

mod data_cache;
mod data_loader;
mod data_parallel;
mod data_sources;
mod fuzz;
mod run;
mod trainer;
mod word_order;
