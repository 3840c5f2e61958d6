//! The scorer: does an image show what the constraints ask for?
//!
//! Classical image analysis only: background from the border, palette
//! segmentation with a blend model ([`segment`](crate::segment)), connected
//! components, shape by template matching, then an exact match of the
//! detected objects to the constraint groups with lenient geometry
//! ([`Tolerance::Lenient`]).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::classify::classify;
use crate::matching::{Candidate, MatchOutcome, match_groups};
use crate::segment::{components, segment, soft_mask};
use crate::{Background, Colour, Constraints, Footprint, Shape, Tolerance};

/// Smallest image side the scorer analyses.
pub const MIN_IMAGE_SIDE: u32 = 16;
/// Components smaller than this fraction of the image are ignored as specks
/// (a small star covers about 0.008).
pub const MIN_OBJECT_AREA: f32 = 0.003;
/// Largest RGB distance from the estimated background to a named background.
const BACKGROUND_TOLERANCE: f32 = 60.0;

/// One object the scorer found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectedObject {
    /// The recognised shape; `None` when no template fits well enough.
    pub shape: Option<Shape>,
    /// The nearest palette colour.
    pub colour: Colour,
    /// The fitted template's box centre and side, normalised.
    pub footprint: Footprint,
    /// Foreground pixels as a fraction of the image.
    pub area: f32,
    /// Soft IoU of the mask with the best template, in `[0, 1]`.
    pub confidence: f32,
}

/// What the scorer sees in an image, independent of any prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The estimated background colour (border median).
    pub background_rgb: [u8; 3],
    /// The named background it is close to, if any.
    pub background: Option<Background>,
    /// The objects, in raster order of their first pixel.
    pub objects: Vec<DetectedObject>,
}

/// Why an image failed its constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Failure {
    /// The constraints themselves are invalid.
    InvalidConstraints {
        /// What is wrong with them.
        reason: String,
    },
    /// The image is smaller than [`MIN_IMAGE_SIDE`].
    ImageTooSmall,
    /// The background is not the required colour.
    Background {
        /// The required background.
        expected: Background,
    },
    /// The image holds a different number of objects than asked for.
    ObjectCount {
        /// Objects asked for.
        expected: usize,
        /// Objects found.
        found: usize,
    },
    /// The objects' shapes, colours, sizes or regions do not match the groups.
    Objects,
    /// The objects match but the relations between groups do not hold.
    Relations,
}

/// Everything the scorer found and, on failure, why it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDetails {
    /// What was detected in the image.
    pub detection: Detection,
    /// The first check that failed, `None` on a pass.
    pub failure: Option<Failure>,
}

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Whether the image satisfies every constraint.
    pub pass: bool,
    /// What was detected and what failed.
    pub details: ScoreDetails,
}

/// Finds the background and the objects of an image.
///
/// ```
/// use imagen_shapes::{detect, parse_caption, render};
/// use rand::{rngs::StdRng, SeedableRng};
/// let scene = parse_caption("two blue diamonds")?.realize(&mut StdRng::seed_from_u64(3))?;
/// let found = detect(&render(&scene, 64));
/// assert_eq!(found.objects.len(), 2);
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
pub fn detect(image: &RgbImage) -> Detection {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let seg = segment(image);
    let background_rgb = seg.background.map(|v| v.round().clamp(0.0, 255.0) as u8);
    let background = Background::ALL
        .into_iter()
        .map(|b| {
            let d: f32 = (0..3)
                .map(|k| (f32::from(b.rgb()[k]) - seg.background[k]).powi(2))
                .sum();
            (b, d.sqrt())
        })
        .filter(|(_, d)| *d <= BACKGROUND_TOLERANCE)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(b, _)| b);
    let min_area = ((MIN_OBJECT_AREA * (w * h) as f32) as usize).max(4);
    let (comps, ids) = components(&seg, min_area);
    let objects = comps
        .iter()
        .enumerate()
        .map(|(k, comp)| {
            let mask = soft_mask(&seg, &ids, k, comp, 2);
            let c = classify(&mask, w, h);
            DetectedObject {
                shape: c.shape,
                colour: comp.colour,
                footprint: c.footprint,
                area: comp.area as f32 / (w * h) as f32,
                confidence: c.confidence,
            }
        })
        .collect();
    Detection {
        background_rgb,
        background,
        objects,
    }
}

/// Scores an image against constraints: it passes when it holds exactly the
/// constrained objects (count, shape, colour, size, region), the relations
/// hold leniently, and the background is right when one is required.
///
/// ```
/// use imagen_shapes::{parse_caption, render, score};
/// use rand::{rngs::StdRng, SeedableRng};
/// let mut rng = StdRng::seed_from_u64(0);
/// let prompt = parse_caption("a red circle above a blue square")?;
/// let good = render(&prompt.realize(&mut rng)?, 64);
/// assert!(score(&good, &prompt).pass);
///
/// let wrong = render(&parse_caption("a blue circle above a red square")?.realize(&mut rng)?, 64);
/// assert!(!score(&wrong, &prompt).pass);
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
pub fn score(image: &RgbImage, constraints: &Constraints) -> Score {
    let empty = Detection {
        background_rgb: [0; 3],
        background: None,
        objects: Vec::new(),
    };
    let verdict = |detection: Detection, failure: Option<Failure>| Score {
        pass: failure.is_none(),
        details: ScoreDetails { detection, failure },
    };
    if let Err(e) = constraints.validate() {
        return verdict(
            empty,
            Some(Failure::InvalidConstraints {
                reason: e.to_string(),
            }),
        );
    }
    if image.width() < MIN_IMAGE_SIDE || image.height() < MIN_IMAGE_SIDE {
        return verdict(empty, Some(Failure::ImageTooSmall));
    }
    let detection = detect(image);
    if let Some(expected) = constraints.background
        && detection.background != Some(expected)
    {
        return verdict(detection, Some(Failure::Background { expected }));
    }
    let candidates: Vec<Candidate> = detection
        .objects
        .iter()
        .map(|o| Candidate {
            shape: o.shape,
            colour: o.colour,
            footprint: o.footprint,
        })
        .collect();
    let failure = match match_groups(constraints, &candidates, Tolerance::Lenient) {
        MatchOutcome::Matched(_) => None,
        MatchOutcome::CountMismatch => Some(Failure::ObjectCount {
            expected: constraints.object_count(),
            found: candidates.len(),
        }),
        MatchOutcome::Objects => Some(Failure::Objects),
        MatchOutcome::Relations => Some(Failure::Relations),
    };
    verdict(detection, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupSpec, Object, Scene, Size, Texture, render};

    fn scene(objects: Vec<Object>) -> Scene {
        Scene {
            background: Background::Gray,
            texture: Texture::Stripes {
                vertical: false,
                period: 0.1,
            },
            objects,
        }
    }

    #[test]
    fn wrong_colour_and_count_fail_with_reasons() {
        let blue_square = Object {
            shape: Shape::Square,
            colour: Colour::Blue,
            size: Size::Medium,
            centre: [0.3, 0.4],
        };
        let img = render(&scene(vec![blue_square]), 64);
        let red_circle = Constraints::new(vec![
            GroupSpec::new(1, Shape::Circle).with_colour(Colour::Red),
        ]);
        let s = score(&img, &red_circle);
        assert_eq!(s.details.failure, Some(Failure::Objects));
        let two = Constraints::new(vec![GroupSpec::new(2, Shape::Square)]);
        let s = score(&img, &two);
        assert_eq!(
            s.details.failure,
            Some(Failure::ObjectCount {
                expected: 2,
                found: 1
            })
        );
        let gray = Constraints::new(vec![GroupSpec::new(1, Shape::Square)])
            .with_background(Background::Gray);
        assert!(score(&img, &gray).pass);
        let black = gray.with_background(Background::Black);
        assert_eq!(
            score(&img, &black).details.failure,
            Some(Failure::Background {
                expected: Background::Black
            })
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let c = Constraints::new(vec![GroupSpec::new(1, Shape::Star)]);
        assert_eq!(
            score(&RgbImage::new(0, 0), &c).details.failure,
            Some(Failure::ImageTooSmall)
        );
        assert!(!score(&RgbImage::new(20, 20), &c).pass);
        let invalid = Constraints::new(vec![]);
        assert!(!score(&RgbImage::new(64, 64), &invalid).pass);
        let noise = RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([
                (x * 37 % 256) as u8,
                (y * 91 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        });
        let _ = score(&noise, &c);
    }
}
