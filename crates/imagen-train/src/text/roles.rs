//! Relation captions whose objects' roles are known: what the word-order
//! probe is fit on and the ordering objective trains with.
//!
//! "two small red circles above a blue square": the circles are the
//! relation's subject, so they are the [`Role::Upper`] objects, and the
//! square the [`Role::Lower`] one. With synonyms on, the relation is also
//! phrased with words the caption grammar does not use ("over", "under",
//! "beneath", "on top of", "left of", optionally preceded by "placed"), so
//! that an encoder pre-trained on them reads those words too.

use imagen_shapes::{Colour, Constraints, GroupSpec, Relation, Shape, Size, write_caption};
use rand::{Rng, RngExt};

use crate::TrainError;

/// Where a relation puts an object: the subject of "above" is upper, its
/// reference lower, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Subject of "above", reference of "below".
    Upper,
    /// Subject of "below", reference of "above".
    Lower,
    /// Subject of "to the left of", reference of "to the right of".
    Left,
    /// Subject of "to the right of", reference of "to the left of".
    Right,
}

impl Role {
    /// Every role, in class-index order.
    pub const ALL: [Role; 4] = [Role::Upper, Role::Lower, Role::Left, Role::Right];

    /// The role of the subject (`subject = true`) or the reference of a
    /// directional relation; `None` for the others (next to, bigger, smaller).
    ///
    /// ```
    /// use imagen_shapes::Relation;
    /// use imagen_train::text::Role;
    /// assert_eq!(Role::of(Relation::Above, false), Some(Role::Lower));
    /// assert_eq!(Role::of(Relation::NextTo, true), None);
    /// ```
    pub fn of(relation: Relation, subject: bool) -> Option<Role> {
        let (s, r) = match relation {
            Relation::Above => (Role::Upper, Role::Lower),
            Relation::Below => (Role::Lower, Role::Upper),
            Relation::LeftOf => (Role::Left, Role::Right),
            Relation::RightOf => (Role::Right, Role::Left),
            _ => return None,
        };
        Some(if subject { s } else { r })
    }

    /// The class index (position in [`Role::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The phrasings of a directional relation with synonyms: the grammar's own
/// first, then the others. Empty for the non-directional relations.
pub fn relation_synonyms(relation: Relation) -> &'static [&'static str] {
    match relation {
        Relation::Above => &["above", "over", "on top of"],
        Relation::Below => &["below", "under", "beneath", "underneath"],
        Relation::LeftOf => &["to the left of", "on the left of", "left of"],
        Relation::RightOf => &["to the right of", "on the right of", "right of"],
        _ => &[],
    }
}

/// One object of a [`RoleCaption`]: where its words are and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptionObject {
    /// Index (in whitespace-separated words) of its first word, the determiner.
    pub first: usize,
    /// Index of its noun, the last word of its phrase.
    pub noun: usize,
    /// The group it describes.
    pub group: GroupSpec,
    /// Its role in the relation.
    pub role: Role,
}

/// A two-object relation caption and its objects, in caption order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCaption {
    /// The caption: words separated by single spaces, no punctuation.
    pub text: String,
    /// The subject (first) and the reference (second).
    pub objects: [CaptionObject; 2],
    /// The relation, as the subject stands to the reference.
    pub relation: Relation,
}

/// Writes "`subject` `relation` `reference`" with the grammar's phrasing or,
/// with `synonyms`, a random one of [`relation_synonyms`] (and "placed"
/// before it one time in eight).
///
/// # Errors
/// [`TrainError::InvalidConfig`] for a relation that is not directional or
/// groups the caption grammar cannot write (see `write_caption`).
pub fn role_caption<R: Rng + ?Sized>(
    subject: GroupSpec,
    relation: Relation,
    reference: GroupSpec,
    synonyms: bool,
    rng: &mut R,
) -> Result<RoleCaption, TrainError> {
    let invalid = |m: String| TrainError::InvalidConfig(m);
    let (Some(subject_role), Some(reference_role)) =
        (Role::of(relation, true), Role::of(relation, false))
    else {
        return Err(invalid(format!(
            "{relation:?} is not a directional relation"
        )));
    };
    let constraints = Constraints::new(vec![subject, reference]).with_relation(0, relation, 1);
    let text = write_caption(&constraints, rng).map_err(|e| invalid(e.to_string()))?;
    let words: Vec<&str> = text.split(' ').collect();
    // The grammar's phrase: the first place where one of its phrasings starts.
    let found = (0..words.len()).find_map(|i| {
        relation.phrases().iter().find_map(|p| {
            let k = p.split(' ').count();
            (words.get(i..i + k) == Some(&p.split(' ').collect::<Vec<_>>()[..])).then_some((i, k))
        })
    });
    let Some((at, k)) = found else {
        return Err(invalid(format!("no relation phrase in `{text}`")));
    };
    let mut phrase: Vec<&str> = words[at..at + k].to_vec();
    if synonyms {
        let options = relation_synonyms(relation);
        phrase = options[rng.random_range(0..options.len())]
            .split(' ')
            .collect();
        if rng.random_range(0..8) == 0 {
            phrase.insert(0, "placed");
        }
    }
    let mut out: Vec<&str> = words[..at].to_vec();
    out.extend(&phrase);
    let second = out.len();
    out.extend(&words[at + k..]);
    Ok(RoleCaption {
        text: out.join(" "),
        objects: [
            CaptionObject {
                first: 0,
                noun: at - 1,
                group: subject,
                role: subject_role,
            },
            CaptionObject {
                first: second,
                noun: out.len() - 1,
                group: reference,
                role: reference_role,
            },
        ],
        relation,
    })
}

/// A random group of `pair`'s colour and shape: one object (60 %), two
/// (30 %) or three (10 %), named small or large one time in five.
pub fn random_group<R: Rng + ?Sized>(pair: (Colour, Shape), rng: &mut R) -> GroupSpec {
    let count = match rng.random_range(0..10) {
        0..6 => 1,
        6..9 => 2,
        _ => 3,
    };
    let g = GroupSpec::new(count, pair.1).with_colour(pair.0);
    match rng.random_range(0..10) {
        0 => g.with_size(Size::Small),
        1 => g.with_size(Size::Large),
        _ => g,
    }
}

/// A random directional relation caption: the subject's colour/shape pair
/// drawn from `subjects`, the reference's from `references` (a different
/// pair), at most four objects in all.
///
/// # Errors
/// [`TrainError::InvalidConfig`] when either list is empty or they hold no
/// two different pairs.
pub fn random_role_caption<R: Rng + ?Sized>(
    subjects: &[(Colour, Shape)],
    references: &[(Colour, Shape)],
    synonyms: bool,
    rng: &mut R,
) -> Result<RoleCaption, TrainError> {
    let distinct = subjects.iter().any(|a| references.iter().any(|b| a != b));
    if !distinct {
        return Err(TrainError::InvalidConfig(
            "role captions need two different colour/shape pairs".into(),
        ));
    }
    loop {
        let a = subjects[rng.random_range(0..subjects.len())];
        let b = references[rng.random_range(0..references.len())];
        if a == b {
            continue;
        }
        let (mut s, mut r) = (random_group(a, rng), random_group(b, rng));
        if s.count + r.count > 4 {
            s.count = 1;
            r.count = r.count.min(3);
        }
        let relation = [
            Relation::Above,
            Relation::Below,
            Relation::LeftOf,
            Relation::RightOf,
        ][rng.random_range(0..4)];
        return role_caption(s, relation, r, synonyms, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagen_shapes::parse_caption;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn objects_point_at_their_nouns_and_grammar_captions_parse_back() {
        let pairs: Vec<(Colour, Shape)> = Colour::ALL
            .into_iter()
            .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
            .collect();
        let mut rng = StdRng::seed_from_u64(4);
        let mut synonyms_seen = 0;
        for i in 0..300 {
            let synonyms = i % 2 == 1;
            let c = random_role_caption(&pairs, &pairs, synonyms, &mut rng).unwrap();
            let words: Vec<&str> = c.text.split(' ').collect();
            for o in &c.objects {
                let (shape, plural) = Shape::from_noun(words[o.noun]).unwrap();
                assert_eq!((shape, plural), (o.group.shape, o.group.count > 1));
                assert!(o.first <= o.noun);
            }
            assert_eq!(c.objects[0].first, 0);
            assert_eq!(c.objects[1].noun, words.len() - 1);
            assert_ne!(c.objects[0].role, c.objects[1].role);
            if synonyms {
                synonyms_seen += usize::from(parse_caption(&c.text).is_err());
            } else {
                let parsed = parse_caption(&c.text).unwrap();
                assert_eq!(parsed.groups, vec![c.objects[0].group, c.objects[1].group]);
                assert_eq!(parsed.relations[0].relation, c.relation);
            }
        }
        assert!(synonyms_seen > 50, "{synonyms_seen}");
    }

    #[test]
    fn non_directional_relations_are_refused() {
        let g = GroupSpec::new(1, Shape::Star).with_colour(Colour::Red);
        let h = GroupSpec::new(1, Shape::Cross).with_colour(Colour::Blue);
        let mut rng = StdRng::seed_from_u64(0);
        assert!(role_caption(g, Relation::NextTo, h, false, &mut rng).is_err());
        assert!(
            random_role_caption(
                &[(Colour::Red, Shape::Star)],
                &[(Colour::Red, Shape::Star)],
                false,
                &mut rng
            )
            .is_err()
        );
    }
}
