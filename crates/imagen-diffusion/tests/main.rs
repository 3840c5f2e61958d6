//! Integration and parity tests of imagen-diffusion against recorded diffusers schedulers.
//!
//! One test binary for the crate: each file below is a module, so burn's
//! generic code is compiled once for the test backend rather than once per
//! file (see `autotests = false` in Cargo.toml). A new test file needs a
//! `mod` line here.

mod common;

mod config;
mod ddim;
mod ddpm;
mod dpm_solver;
mod fuzz;
mod noise_aug;
mod sample;
mod schedule;
mod vlb;
