//! The backend's random generator is one per process: tests in one binary
//! run on parallel threads, so each "seed, then draw" sequence holds the
//! lock `imagen_train::seeded` holds (the one `TrainingRun` initialises
//! under), keeping another test's seeding out of its draws.

/// Runs `draw` right after seeding `B`'s generator with `seed`, with no other
/// seeded draw in between. burn initialises module weights lazily, so a
/// `draw` that builds a module passes it through `imagen_train::materialize`.
pub fn seeded<B: burn::tensor::backend::Backend, T>(seed: u64, draw: impl FnOnce() -> T) -> T {
    imagen_train::seeded::<B, T>(&Default::default(), seed, draw)
}
