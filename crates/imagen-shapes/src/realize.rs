//! Building a scene that satisfies given constraints: ground truth for the
//! eval prompts and for validating the scorer.

use rand::Rng;

use crate::placement::{ANYWHERE, Slot, intersect, place, relation_boxes};
use crate::random::{pick, shuffle};
use crate::texture::random_texture;
use crate::{Background, Colour, Constraints, Object, Scene, ShapesError, Size, Tolerance};

/// Colour / size draws per call before giving up.
const ATTEMPTS: usize = 40;
/// Layouts tried per colour / size draw.
const RESTARTS: usize = 60;

impl Constraints {
    /// A random scene that satisfies the constraints with the captions'
    /// margins (so [`Constraints::is_satisfied_by`] holds).
    ///
    /// Unspecified colours, sizes, positions, background and texture are
    /// drawn at random; colours avoid repeating another group's colour and shape.
    ///
    /// ```
    /// use imagen_shapes::{parse_caption, Tolerance};
    /// use rand::{rngs::StdRng, SeedableRng};
    /// let c = parse_caption("two small green triangles to the left of a yellow star").unwrap();
    /// let scene = c.realize(&mut StdRng::seed_from_u64(0)).unwrap();
    /// assert_eq!(scene.objects.len(), 3);
    /// assert!(c.is_satisfied_by(&scene));
    /// ```
    ///
    /// # Errors
    /// [`ShapesError::InvalidConstraints`] when [`Constraints::validate`] fails,
    /// [`ShapesError::Unrealizable`] when no layout was found (e.g. four large
    /// objects in one corner).
    pub fn realize<R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Scene, ShapesError> {
        self.validate()?;
        for attempt in 0..ATTEMPTS {
            let colours = self.draw_colours(rng);
            // Past half the attempts, unspecified sizes shrink to make room.
            let shrink = attempt >= ATTEMPTS / 2;
            let sizes: Vec<Size> = self
                .groups
                .iter()
                .map(|g| match g.size {
                    Some(s) => s,
                    None if shrink => Size::Small,
                    None => pick(rng, &Size::ALL).unwrap_or(Size::Small),
                })
                .collect();
            let sizes_ok = self.relations.iter().all(|r| {
                r.relation.is_spatial() || {
                    let fp = |g: usize| crate::Footprint {
                        centre: [0.5; 2],
                        scale: sizes[g].fraction(),
                    };
                    r.relation
                        .holds(fp(r.subject), fp(r.reference), Tolerance::Strict)
                }
            });
            if !sizes_ok {
                continue;
            }
            let mut boxes: Vec<[f32; 4]> = self
                .groups
                .iter()
                .map(|g| {
                    g.region
                        .map_or(ANYWHERE, |r| r.centre_box(Tolerance::Strict))
                })
                .collect();
            for r in &self.relations {
                if let Some((a, b)) = relation_boxes(r.relation, rng) {
                    boxes[r.subject] = intersect(boxes[r.subject], a).unwrap_or(boxes[r.subject]);
                    boxes[r.reference] =
                        intersect(boxes[r.reference], b).unwrap_or(boxes[r.reference]);
                }
            }
            let mut members: Vec<usize> = self
                .groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| std::iter::repeat_n(i, g.count))
                .collect();
            shuffle(rng, &mut members);
            let slots: Vec<Slot> = members
                .iter()
                .map(|&g| Slot {
                    size: sizes[g],
                    centre_box: boxes[g],
                })
                .collect();
            let background = self
                .background
                .unwrap_or_else(|| pick(rng, &Background::ALL).unwrap_or(Background::White));
            let texture = random_texture(rng, 0.5);
            let build = |centres: &[[f32; 2]]| Scene {
                background,
                texture,
                objects: members
                    .iter()
                    .zip(centres)
                    .map(|(&g, &centre)| Object {
                        shape: self.groups[g].shape,
                        colour: colours[g],
                        size: sizes[g],
                        centre,
                    })
                    .collect(),
            };
            if let Some(centres) = place(&slots, rng, RESTARTS, |c| self.is_satisfied_by(&build(c)))
            {
                return Ok(build(&centres));
            }
        }
        Err(ShapesError::Unrealizable {
            attempts: ATTEMPTS * RESTARTS,
        })
    }

    /// A colour per group: the required one, or a random one that does not
    /// repeat another group's colour and shape when that can be avoided.
    fn draw_colours<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<Colour> {
        let mut chosen: Vec<Option<Colour>> = self.groups.iter().map(|g| g.colour).collect();
        for i in 0..self.groups.len() {
            if chosen[i].is_some() {
                continue;
            }
            let shape = self.groups[i].shape;
            let free: Vec<Colour> = Colour::ALL
                .into_iter()
                .filter(|&c| {
                    !self
                        .groups
                        .iter()
                        .zip(&chosen)
                        .any(|(g, k)| g.shape == shape && *k == Some(c))
                })
                .collect();
            chosen[i] = pick(rng, &free).or_else(|| pick(rng, &Colour::ALL));
        }
        chosen
            .into_iter()
            .map(|c| c.unwrap_or(Colour::Red))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupSpec, Region, Relation, Shape};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn realised_scenes_are_valid_and_satisfy() {
        let mut rng = StdRng::seed_from_u64(5);
        let cases = [
            Constraints::new(vec![
                GroupSpec::new(4, Shape::Star).with_colour(Colour::Blue),
            ]),
            Constraints::new(vec![
                GroupSpec::new(2, Shape::Circle).with_size(Size::Large),
                GroupSpec::new(1, Shape::Cross).with_size(Size::Small),
            ])
            .with_relation(0, Relation::Above, 1),
            Constraints::new(vec![
                GroupSpec::new(1, Shape::Diamond).with_region(Region::TopLeft),
                GroupSpec::new(1, Shape::Square).with_region(Region::BottomRight),
            ]),
            Constraints::new(vec![
                GroupSpec::new(1, Shape::Circle),
                GroupSpec::new(1, Shape::Circle),
            ])
            .with_relation(0, Relation::Bigger, 1)
            .with_background(Background::Black),
        ];
        for c in cases {
            for _ in 0..10 {
                let scene = c.realize(&mut rng).unwrap();
                scene.validate().unwrap();
                assert!(c.is_satisfied_by(&scene), "{c:?}\n{scene:?}");
            }
        }
    }

    #[test]
    fn impossible_constraints_are_an_error() {
        let c = Constraints::new(vec![
            GroupSpec::new(4, Shape::Star)
                .with_size(Size::Large)
                .with_region(Region::TopLeft),
        ]);
        let err = c.realize(&mut StdRng::seed_from_u64(0)).unwrap_err();
        assert!(matches!(err, ShapesError::Unrealizable { .. }));
        let invalid = Constraints::new(vec![GroupSpec::new(0, Shape::Star)]);
        assert!(invalid.realize(&mut StdRng::seed_from_u64(0)).is_err());
    }
}
