//! Sinusoidal timestep embedding against diffusers 0.42.1
//! (`get_timestep_embedding`), recorded by `tools/fixtures/unet.py`.
//! Tolerance: max abs error 1e-4. torch's vectorised `exp` is not correctly
//! rounded: one of the 80 frequencies of the 160-wide case is 1 ulp off ours
//! (checked in Python), and `sin(t f)` amplifies that by t <= 999, giving
//! 5.9e-5 (2.7e-5 for the 704-wide case); widths 8, 15 and 16 agree within 6e-8.

use crate::common;

use common::fixtures;

use burn_flex::Flex;
use imagen_unet::timestep_embedding;
use safetensors::SafeTensors;

#[test]
fn timestep_embedding_matches_diffusers() {
    let bytes = std::fs::read(fixtures().join("unit_timestep_embedding.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let timesteps: Vec<f32> = st
        .tensor("timesteps")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
        .collect();
    let meta = common::units();
    let cases = meta["unit_timestep_embedding.safetensors"]["cases"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let dim = case["embedding_dim"].as_u64().unwrap() as usize;
        let flip = case["flip_sin_to_cos"].as_bool().unwrap();
        let shift = case["downscale_freq_shift"].as_f64().unwrap() as f32;
        let want: Vec<f32> = st
            .tensor(key)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let got = timestep_embedding::<Flex>(&timesteps, dim, flip, shift, &Default::default());
        assert_eq!(got.dims(), [timesteps.len(), dim]);
        let got: Vec<f32> = got.into_data().to_vec().unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{key}: max abs error {err:e}");
        assert!(err <= 1e-4, "{key}: max abs error {err}");
    }
}
