//! Absolute positions on the canvas: "on the left", "in the top right corner".

use serde::{Deserialize, Serialize};

use crate::Tolerance;

/// A part of the canvas an object's centre can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// "in the top left corner".
    TopLeft,
    /// "in the top right corner".
    TopRight,
    /// "in the bottom left corner".
    BottomLeft,
    /// "in the bottom right corner".
    BottomRight,
    /// "on the left".
    Left,
    /// "on the right".
    Right,
    /// "at the top".
    Top,
    /// "at the bottom".
    Bottom,
    /// "in the middle".
    Middle,
}

/// Strict / lenient edge of the side regions: `x <= 0.35` is strictly left.
const SIDE: [f32; 2] = [0.35, 0.45];
/// Strict / lenient half-width of the middle region.
const MIDDLE: [f32; 2] = [0.1, 0.2];

impl Region {
    /// Every region.
    pub const ALL: [Region; 9] = [
        Region::TopLeft,
        Region::TopRight,
        Region::BottomLeft,
        Region::BottomRight,
        Region::Left,
        Region::Right,
        Region::Top,
        Region::Bottom,
        Region::Middle,
    ];

    /// The caption phrase.
    pub fn phrase(self) -> &'static str {
        match self {
            Region::TopLeft => "in the top left corner",
            Region::TopRight => "in the top right corner",
            Region::BottomLeft => "in the bottom left corner",
            Region::BottomRight => "in the bottom right corner",
            Region::Left => "on the left",
            Region::Right => "on the right",
            Region::Top => "at the top",
            Region::Bottom => "at the bottom",
            Region::Middle => "in the middle",
        }
    }

    /// The allowed range of the centre, `[x_min, x_max, y_min, y_max]`.
    pub(crate) fn centre_box(self, tolerance: Tolerance) -> [f32; 4] {
        let k = match tolerance {
            Tolerance::Strict => 0,
            Tolerance::Lenient => 1,
        };
        let (lo, hi) = (SIDE[k], 1.0 - SIDE[k]);
        let (m0, m1) = (0.5 - MIDDLE[k], 0.5 + MIDDLE[k]);
        match self {
            Region::TopLeft => [0.0, lo, 0.0, lo],
            Region::TopRight => [hi, 1.0, 0.0, lo],
            Region::BottomLeft => [0.0, lo, hi, 1.0],
            Region::BottomRight => [hi, 1.0, hi, 1.0],
            Region::Left => [0.0, lo, 0.0, 1.0],
            Region::Right => [hi, 1.0, 0.0, 1.0],
            Region::Top => [0.0, 1.0, 0.0, lo],
            Region::Bottom => [0.0, 1.0, hi, 1.0],
            Region::Middle => [m0, m1, m0, m1],
        }
    }

    /// Whether a normalised centre `(x, y)` (y down) is in this region.
    ///
    /// ```
    /// use imagen_shapes::{Region, Tolerance};
    /// assert!(Region::TopLeft.contains([0.2, 0.25], Tolerance::Strict));
    /// assert!(!Region::Bottom.contains([0.2, 0.25], Tolerance::Lenient));
    /// ```
    pub fn contains(self, centre: [f32; 2], tolerance: Tolerance) -> bool {
        let [x0, x1, y0, y1] = self.centre_box(tolerance);
        (x0..=x1).contains(&centre[0]) && (y0..=y1).contains(&centre[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_implies_lenient() {
        for r in Region::ALL {
            for k in 0..441 {
                let p = [(k % 21) as f32 / 20.0, (k / 21) as f32 / 20.0];
                if r.contains(p, Tolerance::Strict) {
                    assert!(r.contains(p, Tolerance::Lenient), "{r:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn phrases_are_distinct() {
        let mut phrases: Vec<_> = Region::ALL.iter().map(|r| r.phrase()).collect();
        phrases.sort_unstable();
        phrases.dedup();
        assert_eq!(phrases.len(), Region::ALL.len());
    }
}
