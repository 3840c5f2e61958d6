//! Text pooling (`TextTimeEmbedding` / `AttentionPooling`) against diffusers
//! 0.42.1. Tolerance: max abs error 1e-5 on the pooled vector and the output.

use std::path::PathBuf;

use burn::tensor::{Tensor, TensorData};
use burn_flex::Flex;
use imagen_unet::TextTimeEmbedding;
use imagen_weights::{Checkpoint, LoadSpec};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn floats(st: &SafeTensors, key: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(key).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), v)
}

fn max_err(got: Tensor<Flex, 2>, want: &[f32]) -> f32 {
    let got: Vec<f32> = got.into_data().to_vec().unwrap();
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn text_pooling_matches_diffusers() {
    let file = "unit_text_time_embedding.safetensors";
    let device = Default::default();
    let spec = LoadSpec::pytorch()
        .ignore_prefix("hidden_states")
        .ignore_prefix("pooled")
        .ignore_prefix("output");
    let module = Checkpoint::open(fixtures().join(file))
        .unwrap()
        .load_into(TextTimeEmbedding::<Flex>::new(40, 48, 4, &device), &spec)
        .unwrap();
    let bytes = std::fs::read(fixtures().join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (xs, x) = floats(&st, "hidden_states");
    let x = Tensor::<Flex, 3>::from_data(TensorData::new(x, xs), &device);
    let pooled = module.pool.forward(module.norm1.forward(x.clone()));
    let e1 = max_err(pooled, &floats(&st, "pooled").1);
    let e2 = max_err(module.forward(x), &floats(&st, "output").1);
    eprintln!("pooled {e1:e}, output {e2:e}");
    assert!(e1 <= 1e-5 && e2 <= 1e-5, "pooled {e1}, output {e2}");
}
