//! The hybrid loss's variational-bound term against improved-diffusion's
//! formulas (`tools/fixtures/vlb.py`), on the IF schedule, for timesteps
//! 0 (decoder likelihood, with exact +-1 pixels in the open end bins)
//! through 999. Tolerance: 1e-4 relative (per-example means of f32 terms up
//! to 64 bits/dim).

use crate::common;

use common::Trace;
use imagen_diffusion::{BetaSchedule, DiscreteSchedule, vlb_per_sample};

#[test]
fn vlb_matches_improved_diffusion() {
    let t = Trace::open("vlb.safetensors");
    let schedule = DiscreteSchedule::new(BetaSchedule::SquaredCosCapV2, 1000, 0.0001, 0.02);
    let steps: Vec<usize> = t.i64("steps").iter().map(|&s| s as usize).collect();
    let vb = vlb_per_sample(
        &schedule,
        &steps,
        t.tensor("x0"),
        t.tensor("x_t"),
        t.tensor("x0_pred"),
        t.tensor("var_raw"),
    );
    let got: Vec<f32> = vb.into_data().to_vec().unwrap();
    let (_, want) = t.f32("vb");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = 1e-4 * w.abs().max(1.0);
        assert!(
            (g - w).abs() <= tol,
            "example {i} (t = {}): {g} vs {w}",
            steps[i]
        );
    }
}
