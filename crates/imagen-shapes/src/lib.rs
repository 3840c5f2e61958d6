//! A procedural image-caption dataset of coloured shapes, and a
//! DrawBench-style scorer for it.
//!
//! Imagen (Saharia et al. 2022, <https://arxiv.org/abs/2205.11487>) is judged
//! on DrawBench: colour, counting, spatial relations, composition. This crate
//! provides a small world where all of that is checkable by a program, to
//! train a demo cascade on and to score what it draws:
//!
//! - Scenes: [`Scene`] holds 1 to 4 non-overlapping [`Object`]s ([`Shape`],
//!   [`Colour`], [`Size`], centre) on a neutral [`Background`] with a faint
//!   [`Texture`]; [`render`] rasterises one at any size, anti-aliased.
//! - Training data: [`SceneSampler`] draws scenes from a [`SamplerConfig`],
//!   seeded, never drawing the held-out pairs ([`DEFAULT_HELD_OUT`]);
//!   [`caption`] writes a true caption for a scene.
//! - Language: captions and prompts share one small grammar;
//!   [`write_caption`] and [`parse_caption`] convert between text and
//!   [`Constraints`] (groups with count, shape, colour, size, region; relations).
//! - Evaluation: [`drawbench_lite`] (220 prompts in six [`Category`]s, also in
//!   `eval/drawbench_lite.jsonl`), and [`score`], which checks an image against
//!   constraints with classical image analysis: background from the border,
//!   palette segmentation with an edge-blend model, connected components,
//!   shape by moment-fitted template IoU, then an exact match to the groups;
//!   [`aspects`] gives partial credit (background, count, colours, shapes);
//!   [`swap_prompts`] and [`relation_order`] test word order (the swap test).
//!   [`Constraints::realize`] builds ground-truth scenes.
//!
//! Everything is deterministic given a seed.
//!
//! ```
//! use imagen_shapes::{drawbench_lite, render, score};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let mut rng = StdRng::seed_from_u64(0);
//! let prompt = &drawbench_lite()[100];
//! let truth = prompt.constraints.realize(&mut rng)?;
//! let verdict = score(&render(&truth, 64), &prompt.constraints);
//! assert!(verdict.pass, "{}: {:?}", prompt.text, verdict.details);
//! # Ok::<(), imagen_shapes::ShapesError>(())
//! ```
//!
//! To look at samples, `cargo test -p imagen-shapes --test sample_grid --
//! --ignored --nocapture` writes a PNG contact sheet to the temp directory.
#![warn(missing_docs)]

mod aspects;
mod caption;
mod classify;
mod colour;
mod constraints;
mod error;
mod grid;
mod matching;
mod order;
mod parse;
mod placement;
mod prompts;
mod random;
mod raster;
mod realize;
mod region;
mod relation;
mod render;
mod sampler;
mod scene;
mod score;
mod segment;
mod shape;
mod size;
mod texture;
mod tolerance;
mod write;

pub use aspects::{Aspects, aspects};
pub use caption::{CaptionStyle, caption, describe};
pub use colour::{Background, Colour};
pub use constraints::{Constraints, GroupSpec, RelationSpec};
pub use error::ShapesError;
pub use grid::contact_sheet;
pub use order::{DIRECTIONS, OrderVerdict, SwapTally, relation_order, swap_prompts};
pub use parse::parse_caption;
pub use prompts::{
    Category, DRAWBENCH_LITE_SEED, EvalPrompt, drawbench_lite, from_jsonl, to_jsonl,
};
pub use region::Region;
pub use relation::{Footprint, Relation};
pub use render::render;
pub use sampler::{DEFAULT_HELD_OUT, SamplerConfig, SceneSampler};
pub use scene::{CANVAS_MARGIN, MAX_OBJECTS, OBJECT_GAP, Object, Scene};
pub use score::{
    DetectedObject, Detection, Failure, MIN_IMAGE_SIDE, MIN_OBJECT_AREA, Score, ScoreDetails,
    detect, score,
};
pub use shape::Shape;
pub use size::Size;
pub use texture::{TEXTURE_CONTRAST, Texture};
pub use tolerance::Tolerance;
pub use write::write_caption;
