//! Text pooling (`TextTimeEmbedding` / `AttentionPooling`) against diffusers
//! 0.42.1. Tolerance: max abs error 1e-5 on the pooled vector and the output.

use crate::common;

use burn_flex::Flex;
use common::{Fixture, fixtures, max_abs_err};
use imagen_unet::TextTimeEmbedding;
use imagen_weights::{Checkpoint, LoadSpec};

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
    let fx = Fixture::open(file);
    let x = fx.tensor::<3>("hidden_states");
    let pooled = module.pool.forward(module.norm1.forward(x.clone()));
    let e1 = max_abs_err(pooled, &fx.floats("pooled"));
    let e2 = max_abs_err(module.forward(x), &fx.floats("output"));
    eprintln!("pooled {e1:e}, output {e2:e}");
    assert!(e1 <= 1e-5 && e2 <= 1e-5, "pooled {e1}, output {e2}");
}
