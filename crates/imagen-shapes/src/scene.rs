//! A scene: a background and one to four non-overlapping coloured shapes.

use serde::{Deserialize, Serialize};

use crate::{Background, Colour, Footprint, Shape, ShapesError, Size, Texture};

/// Most objects a scene holds.
pub const MAX_OBJECTS: usize = 4;
/// Smallest distance between an object's box and the canvas edge (normalised).
pub const CANVAS_MARGIN: f32 = 0.02;
/// Smallest gap between two objects' boxes along x or y (normalised).
pub const OBJECT_GAP: f32 = 0.04;

/// One coloured shape in a scene.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// What it is.
    pub shape: Shape,
    /// Its fill colour.
    pub colour: Colour,
    /// How big its box is.
    pub size: Size,
    /// Centre of its box, normalised to `[0, 1]²`, y down.
    pub centre: [f32; 2],
}

impl Object {
    /// The object's square box `[x_min, y_min, x_max, y_max]`, normalised.
    ///
    /// ```
    /// use imagen_shapes::{Colour, Object, Shape, Size};
    /// let o = Object { shape: Shape::Star, colour: Colour::Red, size: Size::Small, centre: [0.5, 0.5] };
    /// let expected = [0.42, 0.42, 0.58, 0.58];
    /// assert!(o.bounds().iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6));
    /// ```
    pub fn bounds(&self) -> [f32; 4] {
        let h = 0.5 * self.size.fraction();
        [
            self.centre[0] - h,
            self.centre[1] - h,
            self.centre[0] + h,
            self.centre[1] + h,
        ]
    }

    /// Where the object is and how big, for regions and relations.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            centre: self.centre,
            scale: self.size.fraction(),
        }
    }
}

/// A whole image: background colour, texture and objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// The background colour.
    pub background: Background,
    /// The faint background pattern.
    pub texture: Texture,
    /// The shapes, in drawing order (they never overlap, so order is moot).
    pub objects: Vec<Object>,
}

impl Scene {
    /// Checks the dataset's rules: 1 to [`MAX_OBJECTS`] objects, each inside the
    /// canvas by [`CANVAS_MARGIN`], boxes apart by [`OBJECT_GAP`].
    ///
    /// ```
    /// use imagen_shapes::{Background, Colour, Object, Scene, Shape, Size, Texture};
    /// let o = Object { shape: Shape::Circle, colour: Colour::Red, size: Size::Large, centre: [0.5, 0.5] };
    /// let mut scene = Scene { background: Background::White, texture: Texture::Plain, objects: vec![o] };
    /// assert!(scene.validate().is_ok());
    /// scene.objects.push(Object { centre: [0.6, 0.6], ..o });
    /// assert!(scene.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ShapesError> {
        let n = self.objects.len();
        if n == 0 || n > MAX_OBJECTS {
            return Err(ShapesError::InvalidScene(format!(
                "{n} objects, expected 1 to {MAX_OBJECTS}"
            )));
        }
        for (i, o) in self.objects.iter().enumerate() {
            if !inside_canvas(o.bounds()) {
                return Err(ShapesError::InvalidScene(format!(
                    "object {i} leaves the canvas"
                )));
            }
            for (j, p) in self.objects[..i].iter().enumerate() {
                if !apart(o.bounds(), p.bounds()) {
                    return Err(ShapesError::InvalidScene(format!(
                        "objects {j} and {i} overlap"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Whether a box keeps [`CANVAS_MARGIN`] from every edge.
pub(crate) fn inside_canvas(b: [f32; 4]) -> bool {
    b[0] >= CANVAS_MARGIN - 1e-6
        && b[1] >= CANVAS_MARGIN - 1e-6
        && b[2] <= 1.0 - CANVAS_MARGIN + 1e-6
        && b[3] <= 1.0 - CANVAS_MARGIN + 1e-6
}

/// Whether two boxes are separated by at least [`OBJECT_GAP`] along x or y.
pub(crate) fn apart(a: [f32; 4], b: [f32; 4]) -> bool {
    let gap_x = (b[0] - a[2]).max(a[0] - b[2]);
    let gap_y = (b[1] - a[3]).max(a[1] - b[3]);
    gap_x >= OBJECT_GAP || gap_y >= OBJECT_GAP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apart_needs_the_gap_on_one_axis() {
        let a = [0.1, 0.1, 0.3, 0.3];
        assert!(apart(a, [0.35, 0.1, 0.5, 0.3]));
        assert!(!apart(a, [0.32, 0.1, 0.5, 0.3]));
        assert!(apart(a, [0.32, 0.35, 0.5, 0.5]));
    }

    #[test]
    fn scene_round_trips_through_json() {
        let scene = Scene {
            background: Background::Black,
            texture: Texture::Noise { seed: 9 },
            objects: vec![Object {
                shape: Shape::Cross,
                colour: Colour::Cyan,
                size: Size::Medium,
                centre: [0.3, 0.6],
            }],
        };
        let json = serde_json::to_string(&scene).unwrap();
        assert_eq!(serde_json::from_str::<Scene>(&json).unwrap(), scene);
    }
}
