//! Assigning objects (drawn or detected) to constraint groups.
//!
//! Groups may overlap ("a circle" and "a red circle"), so this is a small
//! search: scenes hold at most four objects, so trying every assignment is cheap.

use crate::{Colour, Constraints, Footprint, GroupSpec, Shape, Tolerance};

/// An object as the matcher sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// Its shape, `None` when the scorer could not recognise it.
    pub shape: Option<Shape>,
    /// Its colour.
    pub colour: Colour,
    /// Where it is and how big.
    pub footprint: Footprint,
}

/// The result of matching objects to groups.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MatchOutcome {
    /// The group index of each object, satisfying every constraint.
    Matched(Vec<usize>),
    /// The number of objects differs from the number the groups ask for.
    CountMismatch,
    /// No assignment gives every object its group's shape, colour, size and region.
    Objects,
    /// Objects match their groups, but no such assignment satisfies the relations.
    Relations,
}

/// Whether one object can belong to a group, ignoring relations.
fn fits(group: &GroupSpec, c: &Candidate, tolerance: Tolerance) -> bool {
    c.shape == Some(group.shape)
        && group.colour.is_none_or(|col| col == c.colour)
        && group
            .size
            .is_none_or(|s| s.matches(c.footprint.scale, tolerance))
        && group
            .region
            .is_none_or(|r| r.contains(c.footprint.centre, tolerance))
}

/// Finds an assignment of `candidates` to the groups of `constraints`.
pub(crate) fn match_groups(
    constraints: &Constraints,
    candidates: &[Candidate],
    tolerance: Tolerance,
) -> MatchOutcome {
    if candidates.len() != constraints.object_count() {
        return MatchOutcome::CountMismatch;
    }
    let mut search = Search {
        constraints,
        candidates,
        tolerance,
        remaining: constraints.groups.iter().map(|g| g.count).collect(),
        assignment: Vec::with_capacity(candidates.len()),
        any_fit: false,
    };
    if search.assign() {
        MatchOutcome::Matched(search.assignment)
    } else if search.any_fit {
        MatchOutcome::Relations
    } else {
        MatchOutcome::Objects
    }
}

/// Depth-first search state.
struct Search<'a> {
    constraints: &'a Constraints,
    candidates: &'a [Candidate],
    tolerance: Tolerance,
    remaining: Vec<usize>,
    assignment: Vec<usize>,
    any_fit: bool,
}

impl Search<'_> {
    fn assign(&mut self) -> bool {
        let i = self.assignment.len();
        if i == self.candidates.len() {
            self.any_fit = true;
            return self.relations_hold();
        }
        for g in 0..self.constraints.groups.len() {
            if self.remaining[g] == 0
                || !fits(
                    &self.constraints.groups[g],
                    &self.candidates[i],
                    self.tolerance,
                )
            {
                continue;
            }
            self.remaining[g] -= 1;
            self.assignment.push(g);
            if self.assign() {
                return true;
            }
            self.assignment.pop();
            self.remaining[g] += 1;
        }
        false
    }

    fn relations_hold(&self) -> bool {
        self.constraints.relations.iter().all(|r| {
            let members = |g: usize| {
                self.assignment
                    .iter()
                    .zip(self.candidates)
                    .filter(move |(a, _)| **a == g)
                    .map(|(_, c)| c.footprint)
            };
            members(r.subject)
                .all(|a| members(r.reference).all(|b| r.relation.holds(a, b, self.tolerance)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Relation;

    fn cand(shape: Shape, colour: Colour, x: f32, y: f32) -> Candidate {
        Candidate {
            shape: Some(shape),
            colour,
            footprint: Footprint {
                centre: [x, y],
                scale: 0.23,
            },
        }
    }

    #[test]
    fn overlapping_groups_find_the_right_assignment() {
        // "a circle below a red circle": the red one must be the reference.
        let c = Constraints::new(vec![
            GroupSpec::new(1, Shape::Circle),
            GroupSpec::new(1, Shape::Circle).with_colour(Colour::Red),
        ])
        .with_relation(0, Relation::Below, 1);
        let objs = [
            cand(Shape::Circle, Colour::Red, 0.5, 0.2),
            cand(Shape::Circle, Colour::Red, 0.5, 0.8),
        ];
        assert_eq!(
            match_groups(&c, &objs, Tolerance::Strict),
            MatchOutcome::Matched(vec![1, 0])
        );
    }

    #[test]
    fn outcomes_say_what_failed() {
        let c = Constraints::new(vec![
            GroupSpec::new(1, Shape::Star).with_colour(Colour::Blue),
            GroupSpec::new(1, Shape::Square),
        ])
        .with_relation(0, Relation::LeftOf, 1);
        let left = cand(Shape::Star, Colour::Blue, 0.2, 0.5);
        let right = cand(Shape::Square, Colour::Pink, 0.8, 0.5);
        assert!(matches!(
            match_groups(&c, &[left, right], Tolerance::Lenient),
            MatchOutcome::Matched(_)
        ));
        assert_eq!(
            match_groups(&c, &[left], Tolerance::Lenient),
            MatchOutcome::CountMismatch
        );
        let swapped = [
            Candidate {
                footprint: right.footprint,
                ..left
            },
            Candidate {
                footprint: left.footprint,
                ..right
            },
        ];
        assert_eq!(
            match_groups(&c, &swapped, Tolerance::Lenient),
            MatchOutcome::Relations
        );
        let wrong = [
            Candidate {
                colour: Colour::Red,
                ..left
            },
            right,
        ];
        assert_eq!(
            match_groups(&c, &wrong, Tolerance::Lenient),
            MatchOutcome::Objects
        );
    }
}
