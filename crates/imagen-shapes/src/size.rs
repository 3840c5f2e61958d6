//! Object sizes: three named classes of the object's box side.

use serde::{Deserialize, Serialize};

use crate::Tolerance;

/// An object size: the side of the object's square box as a fraction of the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// 0.16 of the canvas (10 px at 64 px).
    Small,
    /// 0.23 of the canvas.
    Medium,
    /// 0.32 of the canvas.
    Large,
}

impl Size {
    /// Every size, smallest first.
    pub const ALL: [Size; 3] = [Size::Small, Size::Medium, Size::Large];

    /// The side of the object's box as a fraction of the canvas side.
    ///
    /// ```
    /// assert_eq!(imagen_shapes::Size::Large.fraction(), 0.32);
    /// ```
    pub fn fraction(self) -> f32 {
        match self {
            Size::Small => 0.16,
            Size::Medium => 0.23,
            Size::Large => 0.32,
        }
    }

    /// The caption word.
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }

    /// The size a caption word names (`big` is accepted for `large`).
    pub fn from_name(word: &str) -> Option<Size> {
        match word {
            "big" => Some(Size::Large),
            _ => Size::ALL.into_iter().find(|s| s.name() == word),
        }
    }

    /// Whether a box side `scale` (fraction of the canvas) is this size.
    ///
    /// `Strict` wants the class's exact fraction (scenes); `Lenient` accepts
    /// anything on the right side of the neighbouring classes (measured images):
    /// small is below a medium, large above it, medium strictly between small and large.
    ///
    /// ```
    /// use imagen_shapes::{Size, Tolerance};
    /// assert!(Size::Small.matches(0.19, Tolerance::Lenient));
    /// assert!(!Size::Small.matches(0.19, Tolerance::Strict));
    /// ```
    pub fn matches(self, scale: f32, tolerance: Tolerance) -> bool {
        match tolerance {
            Tolerance::Strict => (scale - self.fraction()).abs() < 1e-3,
            Tolerance::Lenient => {
                let (s, m, l) = (
                    Size::Small.fraction(),
                    Size::Medium.fraction(),
                    Size::Large.fraction(),
                );
                match self {
                    Size::Small => scale < 0.95 * m,
                    Size::Medium => scale > 1.05 * s && scale < 0.95 * l,
                    Size::Large => scale > 1.05 * m,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fraction_matches_only_its_class() {
        for a in Size::ALL {
            for b in Size::ALL {
                for tol in [Tolerance::Strict, Tolerance::Lenient] {
                    assert_eq!(a.matches(b.fraction(), tol), a == b, "{a:?} {b:?} {tol:?}");
                }
            }
        }
    }
}
