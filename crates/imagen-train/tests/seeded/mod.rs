//! The backend's random generator is one per process: tests in one binary
//! run on parallel threads, so each "seed, then draw" sequence holds a lock
//! to keep another test's seeding out of its draws.

use std::sync::Mutex;

static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Runs `draw` right after seeding `B`'s generator with `seed`, with no other
/// seeded draw in between. burn initialises module weights lazily, so a
/// `draw` that builds a module passes it through `imagen_train::materialize`.
pub fn seeded<B: burn::tensor::backend::Backend, T>(seed: u64, draw: impl FnOnce() -> T) -> T {
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(&Default::default(), seed);
    draw()
}
