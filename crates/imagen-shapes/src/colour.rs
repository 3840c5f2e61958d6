//! The named palettes: object colours and the neutral background colours.
//!
//! Object colours are all chromatic and backgrounds all neutral, so an object
//! never shares its colour with the background it is drawn on.

use serde::{Deserialize, Serialize};

/// An object colour. Nine hues chosen to stay apart (CIELAB ΔE ≥ 30) at 64 px.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// `#dc2626`.
    Red,
    /// `#f98316`.
    Orange,
    /// `#f5d71e`.
    Yellow,
    /// `#22a03c`.
    Green,
    /// `#1ec8dc`.
    Cyan,
    /// `#2546dc`.
    Blue,
    /// `#8c28a0`.
    Purple,
    /// `#f578be`.
    Pink,
    /// `#7d4b23`.
    Brown,
}

impl Colour {
    /// Every object colour, in palette order.
    pub const ALL: [Colour; 9] = [
        Colour::Red,
        Colour::Orange,
        Colour::Yellow,
        Colour::Green,
        Colour::Cyan,
        Colour::Blue,
        Colour::Purple,
        Colour::Pink,
        Colour::Brown,
    ];

    /// The sRGB value objects of this colour are drawn with.
    ///
    /// ```
    /// assert_eq!(imagen_shapes::Colour::Red.rgb(), [220, 38, 38]);
    /// ```
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 38, 38],
            Colour::Orange => [249, 131, 22],
            Colour::Yellow => [245, 215, 30],
            Colour::Green => [34, 160, 60],
            Colour::Cyan => [30, 200, 220],
            Colour::Blue => [37, 70, 220],
            Colour::Purple => [140, 40, 160],
            Colour::Pink => [245, 120, 190],
            Colour::Brown => [125, 75, 35],
        }
    }

    /// The caption word.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Orange => "orange",
            Colour::Yellow => "yellow",
            Colour::Green => "green",
            Colour::Cyan => "cyan",
            Colour::Blue => "blue",
            Colour::Purple => "purple",
            Colour::Pink => "pink",
            Colour::Brown => "brown",
        }
    }

    /// The colour a caption word names, if any.
    ///
    /// ```
    /// use imagen_shapes::Colour;
    /// assert_eq!(Colour::from_name("purple"), Some(Colour::Purple));
    /// assert_eq!(Colour::from_name("teal"), None);
    /// ```
    pub fn from_name(word: &str) -> Option<Colour> {
        Colour::ALL.into_iter().find(|c| c.name() == word)
    }
}

/// A background colour: neutral, so that it never collides with an object colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Background {
    /// `#f5f5f5`.
    White,
    /// `#808080`.
    Gray,
    /// `#101010`.
    Black,
}

impl Background {
    /// Every background colour.
    pub const ALL: [Background; 3] = [Background::White, Background::Gray, Background::Black];

    /// The sRGB value of the plain background (textures add a small offset).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Background::White => [245, 245, 245],
            Background::Gray => [128, 128, 128],
            Background::Black => [16, 16, 16],
        }
    }

    /// The caption word.
    pub fn name(self) -> &'static str {
        match self {
            Background::White => "white",
            Background::Gray => "gray",
            Background::Black => "black",
        }
    }

    /// The background a caption word names (`grey` is accepted for `gray`).
    ///
    /// ```
    /// use imagen_shapes::Background;
    /// assert_eq!(Background::from_name("grey"), Some(Background::Gray));
    /// ```
    pub fn from_name(word: &str) -> Option<Background> {
        match word {
            "grey" => Some(Background::Gray),
            _ => Background::ALL.into_iter().find(|b| b.name() == word),
        }
    }
}

/// CIELAB (D65) of an sRGB colour, for the palette separation tests.
#[cfg(test)]
pub(crate) fn lab(rgb: [u8; 3]) -> [f32; 3] {
    let lin = rgb.map(|v| {
        let c = f32::from(v) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    });
    let x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047;
    let y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    let z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883;
    let f = |t: f32| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta_e(a: [u8; 3], b: [u8; 3]) -> f32 {
        let (a, b) = (lab(a), lab(b));
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    }

    #[test]
    fn object_colours_are_well_separated() {
        for (i, a) in Colour::ALL.iter().enumerate() {
            for b in &Colour::ALL[i + 1..] {
                let d = delta_e(a.rgb(), b.rgb());
                assert!(d >= 30.0, "{a:?} vs {b:?}: ΔE {d}");
            }
        }
    }

    #[test]
    fn backgrounds_are_far_from_object_colours() {
        for c in Colour::ALL {
            for b in Background::ALL {
                let d = delta_e(c.rgb(), b.rgb());
                assert!(d >= 30.0, "{c:?} on {b:?}: ΔE {d}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for c in Colour::ALL {
            assert_eq!(Colour::from_name(c.name()), Some(c));
        }
        for b in Background::ALL {
            assert_eq!(Background::from_name(b.name()), Some(b));
        }
    }
}
