//! Relations between two objects: spatial (above, left of, next to) and size.

use serde::{Deserialize, Serialize};

use crate::Tolerance;

/// Where an object is and how big: what relations and regions look at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    /// Centre of the object's box, normalised to `[0, 1]²`, y down.
    pub centre: [f32; 2],
    /// Side of the object's box as a fraction of the canvas.
    pub scale: f32,
}

/// A relation from a subject object to a reference object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// The subject is above the reference ("above").
    Above,
    /// The subject is below the reference ("below").
    Below,
    /// The subject is left of the reference ("to the left of", "on the left of").
    LeftOf,
    /// The subject is right of the reference ("to the right of", "on the right of").
    RightOf,
    /// Side by side horizontally, either way round ("next to").
    NextTo,
    /// The subject is larger ("bigger than", "larger than").
    Bigger,
    /// The subject is smaller ("smaller than").
    Smaller,
}

/// Strict / lenient minimum separation along a spatial relation's axis.
const MIN_ALONG: [f32; 2] = [0.15, 0.05];
/// Strict / lenient minimum ratio of the separation along the axis to the offset across it.
const MIN_RATIO: [f32; 2] = [1.5, 1.0];
/// Strict / lenient minimum ratio of sizes for "bigger" (size classes differ by at least 1.39).
const MIN_SIZE_RATIO: [f32; 2] = [1.3, 1.15];

impl Relation {
    /// Every relation.
    pub const ALL: [Relation; 7] = [
        Relation::Above,
        Relation::Below,
        Relation::LeftOf,
        Relation::RightOf,
        Relation::NextTo,
        Relation::Bigger,
        Relation::Smaller,
    ];

    /// The relation with subject and reference swapped.
    ///
    /// ```
    /// use imagen_shapes::Relation;
    /// assert_eq!(Relation::Above.inverse(), Relation::Below);
    /// assert_eq!(Relation::NextTo.inverse(), Relation::NextTo);
    /// ```
    pub fn inverse(self) -> Relation {
        match self {
            Relation::Above => Relation::Below,
            Relation::Below => Relation::Above,
            Relation::LeftOf => Relation::RightOf,
            Relation::RightOf => Relation::LeftOf,
            Relation::NextTo => Relation::NextTo,
            Relation::Bigger => Relation::Smaller,
            Relation::Smaller => Relation::Bigger,
        }
    }

    /// The caption phrases for the relation; the first is the most common.
    ///
    /// ```
    /// assert_eq!(imagen_shapes::Relation::LeftOf.phrases()[0], "to the left of");
    /// ```
    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            Relation::Above => &["above"],
            Relation::Below => &["below"],
            Relation::LeftOf => &["to the left of", "on the left of"],
            Relation::RightOf => &["to the right of", "on the right of"],
            Relation::NextTo => &["next to"],
            Relation::Bigger => &["bigger than", "larger than"],
            Relation::Smaller => &["smaller than"],
        }
    }

    /// Whether the relation is about positions (rather than sizes).
    pub fn is_spatial(self) -> bool {
        !matches!(self, Relation::Bigger | Relation::Smaller)
    }

    /// Whether `subject` stands in this relation to `reference`.
    ///
    /// Spatial relations need the separation along their axis to be both
    /// large and clearly larger than the offset across it (strictly: 0.15 of
    /// the canvas and 1.5 times the offset; leniently 0.05 and 1 times).
    ///
    /// ```
    /// use imagen_shapes::{Footprint, Relation, Tolerance};
    /// let a = Footprint { centre: [0.5, 0.2], scale: 0.23 };
    /// let b = Footprint { centre: [0.55, 0.7], scale: 0.16 };
    /// assert!(Relation::Above.holds(a, b, Tolerance::Strict));
    /// assert!(Relation::Bigger.holds(a, b, Tolerance::Strict));
    /// assert!(!Relation::LeftOf.holds(a, b, Tolerance::Lenient));
    /// ```
    pub fn holds(self, subject: Footprint, reference: Footprint, tolerance: Tolerance) -> bool {
        let k = match tolerance {
            Tolerance::Strict => 0,
            Tolerance::Lenient => 1,
        };
        let dx = reference.centre[0] - subject.centre[0];
        let dy = reference.centre[1] - subject.centre[1];
        let directed =
            |along: f32, across: f32| along >= MIN_ALONG[k] && along >= MIN_RATIO[k] * across.abs();
        match self {
            Relation::Above => directed(dy, dx),
            Relation::Below => directed(-dy, dx),
            Relation::LeftOf => directed(dx, dy),
            Relation::RightOf => directed(-dx, dy),
            Relation::NextTo => directed(dx.abs(), dy),
            Relation::Bigger => subject.scale >= MIN_SIZE_RATIO[k] * reference.scale,
            Relation::Smaller => reference.scale >= MIN_SIZE_RATIO[k] * subject.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f32, y: f32, scale: f32) -> Footprint {
        Footprint {
            centre: [x, y],
            scale,
        }
    }

    #[test]
    fn strict_implies_lenient_and_inverse_agrees() {
        let scales = [0.16, 0.23, 0.32];
        for k in 0..2000 {
            let a = at(
                (k % 11) as f32 / 10.0,
                (k / 11 % 11) as f32 / 10.0,
                scales[k % 3],
            );
            let b = at(
                (k / 121 % 4) as f32 / 3.0,
                (k / 7 % 5) as f32 / 4.0,
                scales[k / 3 % 3],
            );
            for r in Relation::ALL {
                for tol in [Tolerance::Strict, Tolerance::Lenient] {
                    assert_eq!(r.holds(a, b, tol), r.inverse().holds(b, a, tol), "{r:?}");
                }
                if r.holds(a, b, Tolerance::Strict) {
                    assert!(r.holds(a, b, Tolerance::Lenient), "{r:?} {a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn diagonal_is_neither_above_nor_left() {
        let (a, b) = (at(0.2, 0.2, 0.2), at(0.6, 0.6, 0.2));
        for r in [Relation::Above, Relation::LeftOf, Relation::NextTo] {
            assert!(!r.holds(a, b, Tolerance::Strict), "{r:?}");
        }
    }

    #[test]
    fn adjacent_size_classes_are_strictly_ordered() {
        let (s, m, l) = (at(0.0, 0.0, 0.16), at(0.0, 0.0, 0.23), at(0.0, 0.0, 0.32));
        assert!(Relation::Bigger.holds(m, s, Tolerance::Strict));
        assert!(Relation::Bigger.holds(l, m, Tolerance::Strict));
        assert!(!Relation::Bigger.holds(m, m, Tolerance::Lenient));
    }
}
