//! The shipped demo cascade (`models/demo`) loads, stays within its size
//! budget and samples at both resolutions.

use std::path::Path;

use imagen::pipeline::{Cascade, GenerateRequest, StageOverrides};
use imagen::{DefaultBackend, default_device};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo");

fn size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                size(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn demo_cascade_loads_and_samples() {
    let bytes = size(Path::new(DEMO));
    assert!(bytes < 50_000_000, "models/demo is {bytes} bytes");
    let device = default_device();
    let cascade = Cascade::<DefaultBackend>::load(DEMO, &device).unwrap();
    assert_eq!(cascade.stages.len(), 2);
    assert_eq!(
        [cascade.stages[0].resolution, cascade.stages[1].resolution],
        [64, 256]
    );
    // Two steps per stage: this checks the plumbing, not the picture.
    let few = StageOverrides {
        steps: Some(2),
        ..Default::default()
    };
    let mut req = GenerateRequest::new("a red circle above a blue square").seed(3);
    req.stages = vec![few; 2];
    let out = cascade.generate(&req, &mut |_| {}).unwrap();
    assert_eq!(out.images[0].dimensions(), (256, 256));
    assert!(out.truncated.is_empty());
}

/// The demo's word-level vocabulary has no `over` or `beneath`: a prompt
/// using them says so, by name, instead of drawing from `<unk>` silently.
#[test]
fn words_outside_the_demo_vocabulary_are_reported() {
    let device = default_device();
    let cascade = Cascade::<DefaultBackend>::load(DEMO, &device).unwrap();
    let out = cascade
        .encode(&["a red circle beneath a star over a square".to_string()])
        .unwrap();
    assert_eq!(out.unknown.len(), 1);
    assert_eq!(out.unknown[0].words, ["beneath", "over"]);
}
