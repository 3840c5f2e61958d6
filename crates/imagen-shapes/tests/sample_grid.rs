//! Writes a PNG contact sheet of sampled scenes for people to look at:
//!
//! ```text
//! cargo test -p imagen-shapes --test sample_grid -- --ignored --nocapture
//! IMAGEN_SHAPES_GRID=/tmp/shapes_grid.png cargo test -p imagen-shapes --test sample_grid -- --ignored
//! ```
//!
//! Each row shows four scenes, each at 64 px (scaled 4x) and at 256 px;
//! the captions are printed in the same order.

use imagen_shapes::{SamplerConfig, SceneSampler, contact_sheet, render};

#[test]
#[ignore = "writes a PNG for eyeballing; run with --ignored"]
fn write_sample_grid() {
    let path = std::env::var_os("IMAGEN_SHAPES_GRID")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("imagen_shapes_grid.png"));
    let mut sampler = SceneSampler::new(SamplerConfig::default(), 0).unwrap();
    let mut images = Vec::new();
    for k in 0..16 {
        let (scene, caption) = sampler.sample_captioned();
        println!("{:2} (row {}, pair {}): {caption}", k, k / 4 + 1, k % 4 + 1);
        images.push(render(&scene, 64));
        images.push(render(&scene, 256));
    }
    contact_sheet(&images, 8, 256, 6).save(&path).unwrap();
    println!("wrote {}", path.display());
}
