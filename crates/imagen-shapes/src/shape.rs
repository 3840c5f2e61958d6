//! The object shapes and their outlines.
//!
//! Every shape is an axis-aligned polygon inside the unit box `[-0.5, 0.5]²`
//! (y down), so one rasteriser draws them all and the scorer can match them
//! as templates. Shapes are never rotated: orientation is part of the name.

use serde::{Deserialize, Serialize};

/// An object shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A disc filling the unit box.
    Circle,
    /// An axis-aligned square of side 0.84.
    Square,
    /// An upward-pointing triangle (apex at the top), close to equilateral.
    Triangle,
    /// A five-pointed star, one point up, inner radius 0.45 of the outer.
    Star,
    /// A rhombus taller than wide (0.76 x 1).
    Diamond,
    /// A plus sign with arms a third of its width.
    Cross,
}

/// Vertices in the circle's polygon: below 0.1 px of error at 256 px.
const CIRCLE_VERTICES: usize = 48;

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 6] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Diamond,
        Shape::Cross,
    ];

    /// The caption noun, singular.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Diamond => "diamond",
            Shape::Cross => "cross",
        }
    }

    /// The caption noun, plural.
    pub fn plural(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
            Shape::Diamond => "diamonds",
            Shape::Cross => "crosses",
        }
    }

    /// The shape a noun names and whether the noun is plural.
    ///
    /// ```
    /// use imagen_shapes::Shape;
    /// assert_eq!(Shape::from_noun("crosses"), Some((Shape::Cross, true)));
    /// assert_eq!(Shape::from_noun("star"), Some((Shape::Star, false)));
    /// ```
    pub fn from_noun(word: &str) -> Option<(Shape, bool)> {
        Shape::ALL.into_iter().find_map(|s| {
            if s.name() == word {
                Some((s, false))
            } else if s.plural() == word {
                Some((s, true))
            } else {
                None
            }
        })
    }

    /// The outline as a simple polygon in the unit box `[-0.5, 0.5]²`, y down.
    ///
    /// ```
    /// let square = imagen_shapes::Shape::Square.outline();
    /// assert_eq!(square.len(), 4);
    /// assert!(square.iter().all(|p| p[0].abs() <= 0.5 && p[1].abs() <= 0.5));
    /// ```
    pub fn outline(self) -> Vec<[f32; 2]> {
        use std::f32::consts::PI;
        match self {
            Shape::Circle => (0..CIRCLE_VERTICES)
                .map(|i| {
                    let t = 2.0 * PI * i as f32 / CIRCLE_VERTICES as f32;
                    [0.5 * t.cos(), 0.5 * t.sin()]
                })
                .collect(),
            Shape::Square => vec![[-0.42, -0.42], [0.42, -0.42], [0.42, 0.42], [-0.42, 0.42]],
            Shape::Triangle => vec![[0.0, -0.435], [0.5, 0.435], [-0.5, 0.435]],
            Shape::Diamond => vec![[0.0, -0.5], [0.38, 0.0], [0.0, 0.5], [-0.38, 0.0]],
            Shape::Star => {
                // Outer radius 0.5; the bounding box spans y in [-0.5, 0.405],
                // so shift down to centre it.
                let (outer, inner) = (0.5_f32, 0.225_f32);
                let shift = 0.5 * (0.5 - outer * (PI / 5.0).cos());
                (0..10)
                    .map(|i| {
                        let r = if i % 2 == 0 { outer } else { inner };
                        let t = -PI / 2.0 + PI * i as f32 / 5.0;
                        [r * t.cos(), r * t.sin() + shift]
                    })
                    .collect()
            }
            Shape::Cross => {
                let (a, l) = (0.155_f32, 0.46_f32);
                vec![
                    [-a, -l],
                    [a, -l],
                    [a, -a],
                    [l, -a],
                    [l, a],
                    [a, a],
                    [a, l],
                    [-a, l],
                    [-a, a],
                    [-l, a],
                    [-l, -a],
                    [-a, -a],
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outlines_fit_the_unit_box_and_are_centred() {
        for s in Shape::ALL {
            let o = s.outline();
            let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
            for p in &o {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            for k in 0..2 {
                assert!(lo[k] >= -0.5 - 1e-6 && hi[k] <= 0.5 + 1e-6, "{s:?}");
                assert!(
                    (lo[k] + hi[k]).abs() < 1e-3,
                    "{s:?} not centred: {lo:?} {hi:?}"
                );
            }
        }
    }

    #[test]
    fn nouns_round_trip() {
        for s in Shape::ALL {
            assert_eq!(Shape::from_noun(s.name()), Some((s, false)));
            assert_eq!(Shape::from_noun(s.plural()), Some((s, true)));
        }
    }
}
