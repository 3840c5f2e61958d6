//! Writing constraints as a caption in the dataset's small English grammar.
//!
//! ```text
//! caption  := body [" on a " BACKGROUND " background"]
//! body     := np " " RELATION " " np               two groups, one relation
//!           | item [{", " item} " and " item]      one to four groups
//!           | COUNT " " [SIZE " "] PLURAL ", all " COLOUR      one group of 2+
//! item     := np [" " REGION]
//! np       := DET [" " SIZE] [" " COLOUR] " " NOUN
//! DET      := "a" | "an" | "one" | "two" | "three" | "four"
//! ```

use rand::Rng;

use crate::random::{chance, pick};
use crate::{Constraints, GroupSpec, ShapesError};

/// Number words by count; index 0 is unused.
pub(crate) const NUMBER_WORDS: [&str; 5] = ["zero", "one", "two", "three", "four"];

/// Writes `constraints` as a caption that [`parse_caption`](crate::parse_caption) reads back
/// to the same constraints. Phrasing varies with `rng` ("a"/"one", "to the
/// left of"/"on the left of", "three red circles"/"three circles, all red").
///
/// ```
/// use imagen_shapes::{parse_caption, write_caption, Colour, Constraints, GroupSpec, Relation, Shape, Size};
/// use rand::{rngs::StdRng, SeedableRng};
/// let c = Constraints::new(vec![
///     GroupSpec::new(2, Shape::Triangle).with_colour(Colour::Green).with_size(Size::Small),
///     GroupSpec::new(1, Shape::Star).with_colour(Colour::Yellow),
/// ])
/// .with_relation(0, Relation::LeftOf, 1);
/// let text = write_caption(&c, &mut StdRng::seed_from_u64(1))?;
/// assert!(text.starts_with("two small green triangles") && text.ends_with("a yellow star"));
/// assert_eq!(parse_caption(&text)?, c);
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
///
/// # Errors
/// [`ShapesError::InvalidConstraints`] for inconsistent constraints and
/// [`ShapesError::Unexpressible`] for ones outside the grammar: more than one
/// relation, a relation with more than two groups or with regions.
pub fn write_caption<R: Rng + ?Sized>(
    constraints: &Constraints,
    rng: &mut R,
) -> Result<String, ShapesError> {
    constraints.validate()?;
    let groups = &constraints.groups;
    let mut text = match constraints.relations.as_slice() {
        [] => {
            let all_form = groups.len() == 1
                && groups[0].count >= 2
                && groups[0].colour.is_some()
                && groups[0].region.is_none()
                && constraints.background.is_none()
                && chance(rng, 0.3);
            if all_form {
                let g = GroupSpec {
                    colour: None,
                    ..groups[0]
                };
                let colour = groups[0].colour.map_or("", |c| c.name());
                format!("{}, all {colour}", noun_phrase(&g, rng))
            } else {
                let items: Vec<String> = groups.iter().map(|g| item(g, rng)).collect();
                join_list(&items)
            }
        }
        [r] if groups.len() == 2 => {
            if groups.iter().any(|g| g.region.is_some()) {
                return Err(ShapesError::Unexpressible(
                    "a relation between groups with regions".into(),
                ));
            }
            let relation = if r.subject == 0 {
                r.relation
            } else {
                r.relation.inverse()
            };
            let phrase = pick(rng, relation.phrases()).unwrap_or("next to");
            format!(
                "{} {phrase} {}",
                noun_phrase(&groups[0], rng),
                noun_phrase(&groups[1], rng)
            )
        }
        _ => {
            return Err(ShapesError::Unexpressible(
                "relations need exactly two groups and one relation".into(),
            ));
        }
    };
    if let Some(b) = constraints.background {
        text.push_str(&format!(" on a {} background", b.name()));
    }
    Ok(text)
}

/// "a small red circle", "two stars", "an orange cross".
fn noun_phrase<R: Rng + ?Sized>(g: &GroupSpec, rng: &mut R) -> String {
    let mut words: Vec<&str> = Vec::with_capacity(4);
    if let Some(s) = g.size {
        words.push(s.name());
    }
    if let Some(c) = g.colour {
        words.push(c.name());
    }
    words.push(if g.count == 1 {
        g.shape.name()
    } else {
        g.shape.plural()
    });
    let det = match g.count {
        1 if chance(rng, 0.25) => "one",
        1 if words[0].starts_with(['a', 'e', 'i', 'o', 'u']) => "an",
        1 => "a",
        n => NUMBER_WORDS.get(n).copied().unwrap_or("four"),
    };
    format!("{det} {}", words.join(" "))
}

/// A noun phrase with its region, if any.
fn item<R: Rng + ?Sized>(g: &GroupSpec, rng: &mut R) -> String {
    let np = noun_phrase(g, rng);
    match g.region {
        Some(r) => format!("{np} {}", r.phrase()),
        None => np,
    }
}

/// "a", "a and b", "a, b and c".
fn join_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Background, Colour, Region, Relation, Shape, Size};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn list_with_regions_and_background() {
        let c = Constraints::new(vec![
            GroupSpec::new(1, Shape::Circle)
                .with_colour(Colour::Orange)
                .with_size(Size::Large)
                .with_region(Region::TopLeft),
            GroupSpec::new(2, Shape::Cross).with_colour(Colour::Blue),
            GroupSpec::new(1, Shape::Diamond),
        ])
        .with_background(Background::Black);
        let mut rng = StdRng::seed_from_u64(0);
        let seen: Vec<String> = (0..20)
            .map(|_| write_caption(&c, &mut rng).unwrap())
            .collect();
        assert!(seen.contains(
            &"a large orange circle in the top left corner, two blue crosses and a diamond on a black background".to_string()
        ), "{seen:?}");
    }

    #[test]
    fn articles_and_all_form() {
        let mut rng = StdRng::seed_from_u64(0);
        let orange = Constraints::new(vec![
            GroupSpec::new(1, Shape::Star).with_colour(Colour::Orange),
        ]);
        let texts: Vec<String> = (0..20)
            .map(|_| write_caption(&orange, &mut rng).unwrap())
            .collect();
        assert!(
            texts
                .iter()
                .all(|t| t == "an orange star" || t == "one orange star"),
            "{texts:?}"
        );
        let reds = Constraints::new(vec![
            GroupSpec::new(3, Shape::Circle).with_colour(Colour::Red),
        ]);
        let texts: Vec<String> = (0..30)
            .map(|_| write_caption(&reds, &mut rng).unwrap())
            .collect();
        assert!(texts.contains(&"three circles, all red".to_string()));
        assert!(texts.contains(&"three red circles".to_string()));
    }

    #[test]
    fn inexpressible_constraints_are_errors() {
        let g = GroupSpec::new(1, Shape::Star);
        let mut rng = StdRng::seed_from_u64(0);
        let three = Constraints::new(vec![g, g, g]).with_relation(0, Relation::Above, 1);
        assert!(matches!(
            write_caption(&three, &mut rng),
            Err(ShapesError::Unexpressible(_))
        ));
        let placed = Constraints::new(vec![g.with_region(Region::Top), g]).with_relation(
            0,
            Relation::Above,
            1,
        );
        assert!(matches!(
            write_caption(&placed, &mut rng),
            Err(ShapesError::Unexpressible(_))
        ));
    }
}
