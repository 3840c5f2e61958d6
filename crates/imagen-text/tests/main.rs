//! Integration and parity tests of imagen-text against recorded transformers outputs.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here.

mod common;

mod errors;
mod fuzz;
mod parity;
mod precision;
mod save;
mod spiece;
mod text_encoder;
mod tokenizer;
