//! Machine-checkable content of a caption or prompt: which objects, how many,
//! where and how big relative to each other.

use serde::{Deserialize, Serialize};

use crate::matching::{Candidate, MatchOutcome, match_groups};
use crate::{
    Background, Colour, MAX_OBJECTS, Region, Relation, Scene, Shape, ShapesError, Size, Tolerance,
};

/// A set of identical objects: "two small green triangles".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Exactly how many such objects the image holds.
    pub count: usize,
    /// Their shape.
    pub shape: Shape,
    /// Their colour; any colour when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<Colour>,
    /// Their size class; any size when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Where all of them are; anywhere when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
}

impl GroupSpec {
    /// `count` objects of `shape`, any colour, size and place.
    ///
    /// ```
    /// use imagen_shapes::{Colour, GroupSpec, Shape, Size};
    /// let g = GroupSpec::new(2, Shape::Triangle).with_colour(Colour::Green).with_size(Size::Small);
    /// assert_eq!(g.colour, Some(Colour::Green));
    /// ```
    pub fn new(count: usize, shape: Shape) -> GroupSpec {
        GroupSpec {
            count,
            shape,
            colour: None,
            size: None,
            region: None,
        }
    }

    /// Requires the colour.
    pub fn with_colour(self, colour: Colour) -> GroupSpec {
        GroupSpec {
            colour: Some(colour),
            ..self
        }
    }

    /// Requires the size class.
    pub fn with_size(self, size: Size) -> GroupSpec {
        GroupSpec {
            size: Some(size),
            ..self
        }
    }

    /// Requires every object of the group to be in the region.
    pub fn with_region(self, region: Region) -> GroupSpec {
        GroupSpec {
            region: Some(region),
            ..self
        }
    }
}

/// "Every object of group `subject` is `relation` every object of group `reference`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelationSpec {
    /// Index of the subject group in [`Constraints::groups`].
    pub subject: usize,
    /// The relation.
    pub relation: Relation,
    /// Index of the reference group.
    pub reference: usize,
}

/// What an image must show: exactly these groups of objects and nothing else,
/// the relations between groups, and optionally the background colour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Constraints {
    /// The object groups; the image holds exactly their objects.
    pub groups: Vec<GroupSpec>,
    /// Relations between groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<RelationSpec>,
    /// The background colour, if required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Background>,
}

impl Constraints {
    /// The given groups, no relations, any background.
    ///
    /// ```
    /// use imagen_shapes::{Colour, Constraints, GroupSpec, Relation, Shape};
    /// let c = Constraints::new(vec![
    ///     GroupSpec::new(1, Shape::Circle).with_colour(Colour::Red),
    ///     GroupSpec::new(1, Shape::Square).with_colour(Colour::Blue),
    /// ])
    /// .with_relation(0, Relation::Above, 1);
    /// assert!(c.validate().is_ok());
    /// assert_eq!(c.object_count(), 2);
    /// ```
    pub fn new(groups: Vec<GroupSpec>) -> Constraints {
        Constraints {
            groups,
            relations: Vec::new(),
            background: None,
        }
    }

    /// Adds the relation `groups[subject] relation groups[reference]`.
    pub fn with_relation(
        mut self,
        subject: usize,
        relation: Relation,
        reference: usize,
    ) -> Constraints {
        self.relations.push(RelationSpec {
            subject,
            relation,
            reference,
        });
        self
    }

    /// Requires the background colour.
    pub fn with_background(self, background: Background) -> Constraints {
        Constraints {
            background: Some(background),
            ..self
        }
    }

    /// Total number of objects the groups ask for.
    pub fn object_count(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// Checks that the constraints are consistent: 1 to [`MAX_OBJECTS`]
    /// objects, no empty group, relations between two existing, distinct groups.
    pub fn validate(&self) -> Result<(), ShapesError> {
        let invalid = |m: String| Err(ShapesError::InvalidConstraints(m));
        if self.groups.is_empty() {
            return invalid("no groups".into());
        }
        if let Some(i) = self.groups.iter().position(|g| g.count == 0) {
            return invalid(format!("group {i} has count 0"));
        }
        let n = self.object_count();
        if n > MAX_OBJECTS {
            return invalid(format!("{n} objects, at most {MAX_OBJECTS} fit a scene"));
        }
        for r in &self.relations {
            if r.subject >= self.groups.len() || r.reference >= self.groups.len() {
                return invalid(format!("relation {r:?} names a missing group"));
            }
            if r.subject == r.reference {
                return invalid(format!("relation {r:?} relates a group to itself"));
            }
        }
        Ok(())
    }

    /// Whether a scene satisfies the constraints with the captions' margins
    /// ([`Tolerance::Strict`]): every caption is true of its scene in this sense.
    ///
    /// ```
    /// use imagen_shapes::{Background, Colour, Constraints, GroupSpec, Object, Scene, Shape, Size, Texture};
    /// let scene = Scene {
    ///     background: Background::Gray,
    ///     texture: Texture::Plain,
    ///     objects: vec![Object { shape: Shape::Star, colour: Colour::Red, size: Size::Small, centre: [0.3, 0.3] }],
    /// };
    /// let red_star = Constraints::new(vec![GroupSpec::new(1, Shape::Star).with_colour(Colour::Red)]);
    /// let blue_star = Constraints::new(vec![GroupSpec::new(1, Shape::Star).with_colour(Colour::Blue)]);
    /// assert!(red_star.is_satisfied_by(&scene));
    /// assert!(!blue_star.is_satisfied_by(&scene));
    /// ```
    pub fn is_satisfied_by(&self, scene: &Scene) -> bool {
        if self.validate().is_err() || self.background.is_some_and(|b| b != scene.background) {
            return false;
        }
        let candidates: Vec<Candidate> = scene
            .objects
            .iter()
            .map(|o| Candidate {
                shape: Some(o.shape),
                colour: o.colour,
                footprint: o.footprint(),
            })
            .collect();
        matches!(
            match_groups(self, &candidates, Tolerance::Strict),
            MatchOutcome::Matched(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_inconsistent_constraints() {
        let one = GroupSpec::new(1, Shape::Circle);
        assert!(Constraints::new(vec![]).validate().is_err());
        assert!(
            Constraints::new(vec![GroupSpec::new(0, Shape::Star)])
                .validate()
                .is_err()
        );
        assert!(
            Constraints::new(vec![GroupSpec::new(5, Shape::Star)])
                .validate()
                .is_err()
        );
        let c = Constraints::new(vec![one, one]);
        assert!(
            c.clone()
                .with_relation(0, Relation::Above, 2)
                .validate()
                .is_err()
        );
        assert!(
            c.clone()
                .with_relation(1, Relation::Above, 1)
                .validate()
                .is_err()
        );
        assert!(c.with_relation(1, Relation::Above, 0).validate().is_ok());
    }

    #[test]
    fn json_omits_unset_fields() {
        let c = Constraints::new(vec![
            GroupSpec::new(2, Shape::Star).with_colour(Colour::Red),
        ]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"groups":[{"count":2,"shape":"star","colour":"red"}]}"#
        );
        assert_eq!(serde_json::from_str::<Constraints>(&json).unwrap(), c);
    }
}
