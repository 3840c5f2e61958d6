//! Partial credit: which parts of a prompt an image gets right.
//!
//! [`score`](crate::score) is all or nothing, as a prompt accuracy must be.
//! While a model is still learning, almost every image fails it, and the
//! verdicts cannot tell a model that gets the colours right from one that
//! does not. These checks look at one aspect each, leniently (extra objects
//! do not fail the colour or shape check), to show where a model stands.

use serde::{Deserialize, Serialize};

use crate::{Constraints, DetectedObject, Detection, GroupSpec};

/// One verdict per aspect of a prompt; `None` where the prompt does not
/// constrain that aspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aspects {
    /// The background is the named one.
    pub background: Option<bool>,
    /// The image holds exactly as many objects as the prompt names.
    pub count: bool,
    /// Every named colour appears on at least as many objects as the prompt
    /// gives it, whatever their shapes.
    pub colours: Option<bool>,
    /// Every named shape is recognised on at least as many objects as the
    /// prompt gives it, whatever their colours.
    pub shapes: bool,
}

impl Aspects {
    /// The aspects' names, in the order of [`Aspects::named`].
    pub const NAMES: [&'static str; 4] = ["background", "count", "colours", "shapes"];

    /// The aspect verdicts in a fixed order, with their names.
    ///
    /// ```
    /// use imagen_shapes::Aspects;
    /// let a = Aspects { background: None, count: true, colours: Some(false), shapes: true };
    /// assert_eq!(a.named()[2], ("colours", Some(false)));
    /// ```
    pub fn named(&self) -> [(&'static str, Option<bool>); 4] {
        let [background, count, colours, shapes] = Self::NAMES;
        [
            (background, self.background),
            (count, Some(self.count)),
            (colours, self.colours),
            (shapes, Some(self.shapes)),
        ]
    }
}

/// Checks each aspect of `constraints` against what [`detect`](crate::detect)
/// found in an image.
///
/// ```
/// use imagen_shapes::{aspects, detect, parse_caption, render};
/// use rand::{rngs::StdRng, SeedableRng};
/// let mut rng = StdRng::seed_from_u64(0);
/// let prompt = parse_caption("a red circle above a blue square")?;
/// // Colours swapped: the colour check is lenient (one red and one blue
/// // object are there), so only the full score notices the swap.
/// let swapped = parse_caption("a blue circle above a red square")?.realize(&mut rng)?;
/// let a = aspects(&detect(&render(&swapped, 64)), &prompt);
/// assert!(a.count && a.shapes);
/// assert_eq!(a.colours, Some(true));
/// let green = parse_caption("a green circle above a green square")?.realize(&mut rng)?;
/// assert_eq!(aspects(&detect(&render(&green, 64)), &prompt).colours, Some(false));
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
pub fn aspects(detection: &Detection, constraints: &Constraints) -> Aspects {
    let objects = &detection.objects;
    let named_colour = constraints.groups.iter().any(|g| g.colour.is_some());
    Aspects {
        background: constraints
            .background
            .map(|b| detection.background == Some(b)),
        count: objects.len() == constraints.object_count(),
        colours: named_colour
            .then(|| covered(constraints, objects, |g| g.colour, |o| Some(o.colour))),
        shapes: covered(constraints, objects, |g| Some(g.shape), |o| o.shape),
    }
}

/// Whether every value the groups name (by `asked`) is found (by `found`) on
/// at least as many objects as the groups naming it ask for in total.
fn covered<K: PartialEq>(
    constraints: &Constraints,
    objects: &[DetectedObject],
    asked: impl Fn(&GroupSpec) -> Option<K>,
    found: impl Fn(&DetectedObject) -> Option<K>,
) -> bool {
    let groups = &constraints.groups;
    groups.iter().filter_map(&asked).all(|k| {
        let wanted: usize = groups
            .iter()
            .filter(|g| asked(g).as_ref() == Some(&k))
            .map(|g| g.count)
            .sum();
        objects
            .iter()
            .filter(|o| found(o).as_ref() == Some(&k))
            .count()
            >= wanted
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detect, parse_caption, render, score};
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn a_passing_image_passes_every_aspect() {
        let mut rng = StdRng::seed_from_u64(4);
        for text in [
            "two small green triangles to the left of a yellow star on a black background",
            "three circles",
            "a blue square",
        ] {
            let prompt = parse_caption(text).unwrap();
            let img = render(&prompt.realize(&mut rng).unwrap(), 64);
            assert!(score(&img, &prompt).pass, "{text}");
            let a = aspects(&detect(&img), &prompt);
            assert!(
                a.named().iter().all(|(_, v)| v.unwrap_or(true)),
                "{text}: {a:?}"
            );
        }
    }

    #[test]
    fn unconstrained_aspects_are_none_and_counts_add_up_across_groups() {
        let mut rng = StdRng::seed_from_u64(1);
        let prompt = parse_caption("three circles").unwrap();
        let one = parse_caption("a red circle").unwrap();
        let img = render(&one.realize(&mut rng).unwrap(), 64);
        let a = aspects(&detect(&img), &prompt);
        assert_eq!((a.background, a.colours), (None, None));
        assert!(!a.count && !a.shapes);
        // Two red groups need two red objects between them.
        let two_red = parse_caption("a red circle and a red square").unwrap();
        let a = aspects(&detect(&img), &two_red);
        assert_eq!(a.colours, Some(false));
    }
}
