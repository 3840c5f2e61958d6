//! `add_noise` and IF stage II noise augmentation against diffusers 0.42.1.
//! Tolerance: max abs error 1e-6 (f32; one multiply-add per element).

use crate::common;

use common::{Trace, max_abs_diff};
use imagen_diffusion::{
    BetaSchedule, ContinuousSchedule, DiscreteSchedule, Schedule, add_noise, if_noise_augment,
    imagen_noise_augment,
};

#[test]
fn add_noise_matches_diffusers() {
    let t = Trace::open("add_noise.safetensors");
    let schedule = DiscreteSchedule::new(BetaSchedule::SquaredCosCapV2, 1000, 0.0001, 0.02);
    let timesteps: Vec<usize> = t.i64("timesteps").iter().map(|&v| v as usize).collect();
    let noisy = add_noise(
        &schedule,
        t.tensor("original"),
        t.tensor("noise"),
        &timesteps,
    );
    let err = max_abs_diff(noisy, &t.f32("noisy"));
    assert!(err <= 1e-6, "max abs error {err}");
}

#[test]
fn if_stage2_noise_levels_match_diffusers() {
    let t = Trace::open("noise_level.safetensors");
    let noising = DiscreteSchedule::new(BetaSchedule::SquaredCosCapV2, 1000, 0.0001, 0.02);
    for level in [0usize, 100, 250, 999] {
        let (noisy, told) = if_noise_augment(&noising, t.tensor("image"), t.tensor("noise"), level);
        assert_eq!(told, level);
        let err = max_abs_diff(noisy, &t.f32(&format!("noisy_{level}")));
        assert!(err <= 1e-6, "level {level}: max abs error {err}");
    }
}

#[test]
fn imagen_augmentation_uses_the_continuous_schedule() {
    let t = Trace::open("noise_level.safetensors");
    let (image, noise) = (t.tensor("image"), t.tensor("noise"));
    let s = ContinuousSchedule::Cosine;
    let (noisy, level) = imagen_noise_augment(&s, image.clone(), noise.clone(), 0.2);
    assert_eq!(level, 0.2);
    let (a, sg) = s.alpha_sigma(0.2);
    let expected = image * a + noise * sg;
    let diff: f32 = (noisy - expected).abs().max().into_scalar();
    assert!(diff <= 1e-6);
}
