//! Integration tests of imagen-weights.
//!
//! One test binary for the crate, as in the other `imagen-*` crates: each
//! file below is a module (see `autotests = false` in Cargo.toml). A new test
//! file needs a `mod` line here.

mod common;

mod fuzz;
mod variants;
