//! Reading a caption of the dataset's grammar back into [`Constraints`].

use crate::write::NUMBER_WORDS;
use crate::{
    Background, Colour, Constraints, GroupSpec, Region, Relation, Shape, ShapesError, Size,
};

/// Parses a caption written in the grammar of [`write_caption`](crate::write_caption)
/// (case-insensitive, a final full stop allowed) into constraints, so that any
/// prompt in that language can be scored.
///
/// ```
/// use imagen_shapes::{parse_caption, Colour, Relation, Shape};
/// let c = parse_caption("Three circles, all red.")?;
/// assert_eq!((c.groups[0].count, c.groups[0].shape, c.groups[0].colour), (3, Shape::Circle, Some(Colour::Red)));
///
/// let c = parse_caption("a purple square on the right of an orange triangle")?;
/// assert_eq!(c.relations[0].relation, Relation::RightOf);
///
/// assert!(parse_caption("a red circle beside the sea").is_err());
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
///
/// # Errors
/// [`ShapesError::UnexpectedWord`] / [`ShapesError::UnexpectedEnd`] for text
/// outside the grammar, [`ShapesError::InvalidConstraints`] for more than four objects.
pub fn parse_caption(text: &str) -> Result<Constraints, ShapesError> {
    let tokens = tokenize(text);
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
    };
    let first = p.noun_phrase()?;
    let mut constraints = if let Some(relation) = p.relation() {
        let second = p.noun_phrase()?;
        Constraints::new(vec![first, second]).with_relation(0, relation, 1)
    } else if p.peek() == Some(",") && p.peek_at(1) == Some("all") {
        p.pos += 2;
        if first.count < 2 || first.colour.is_some() {
            return Err(p.unexpected_at(p.pos - 1, "`all` only after a plural without a colour"));
        }
        let colour = p.colour()?;
        Constraints::new(vec![first.with_colour(colour)])
    } else {
        let mut groups = vec![p.with_region(first)];
        loop {
            match p.peek() {
                Some(",") => {
                    p.pos += 1;
                    let g = p.noun_phrase()?;
                    groups.push(p.with_region(g));
                }
                Some("and") => {
                    p.pos += 1;
                    let g = p.noun_phrase()?;
                    groups.push(p.with_region(g));
                    break;
                }
                _ => break,
            }
        }
        Constraints::new(groups)
    };
    if p.peek() == Some("on") && p.peek_at(1) == Some("a") {
        p.pos += 2;
        let word = p.next("a background colour")?;
        let background = Background::from_name(word)
            .ok_or_else(|| p.unexpected_at(p.pos - 1, "white, gray or black"))?;
        p.expect("background")?;
        constraints.background = Some(background);
    }
    if p.peek() == Some(".") {
        p.pos += 1;
    }
    if p.pos < tokens.len() {
        return Err(p.unexpected_at(p.pos, "the end of the caption"));
    }
    constraints.validate()?;
    Ok(constraints)
}

/// Lower-cased words, with commas and full stops as tokens of their own.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        let word = word.to_lowercase();
        let core = word.trim_end_matches([',', '.']);
        if !core.is_empty() {
            tokens.push(core.to_string());
        }
        tokens.extend(word[core.len()..].chars().map(String::from));
    }
    tokens
}

/// A cursor over the tokens.
struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.peek_at(0)
    }

    fn peek_at(&self, k: usize) -> Option<&str> {
        self.tokens.get(self.pos + k).map(String::as_str)
    }

    fn unexpected_at(&self, position: usize, expected: &'static str) -> ShapesError {
        match self.tokens.get(position) {
            Some(found) => ShapesError::UnexpectedWord {
                position,
                found: found.clone(),
                expected,
            },
            None => ShapesError::UnexpectedEnd { expected },
        }
    }

    fn next(&mut self, expected: &'static str) -> Result<&str, ShapesError> {
        let tokens = self.tokens;
        match tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.as_str())
            }
            None => Err(ShapesError::UnexpectedEnd { expected }),
        }
    }

    fn expect(&mut self, word: &'static str) -> Result<(), ShapesError> {
        if self.peek() == Some(word) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected_at(self.pos, word))
        }
    }

    /// Consumes `phrase` (space-separated words) if it comes next.
    fn phrase(&mut self, phrase: &str) -> bool {
        let n = phrase.split(' ').count();
        let matches = phrase
            .split(' ')
            .enumerate()
            .all(|(k, w)| self.peek_at(k) == Some(w));
        if matches {
            self.pos += n;
        }
        matches
    }

    /// DET [SIZE] [COLOUR] NOUN.
    fn noun_phrase(&mut self) -> Result<GroupSpec, ShapesError> {
        let det = self.next("a, an, one, two, three or four")?;
        let count = match det {
            "a" | "an" => 1,
            _ => NUMBER_WORDS
                .iter()
                .skip(1)
                .position(|w| *w == det)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    self.unexpected_at(self.pos - 1, "a, an, one, two, three or four")
                })?,
        };
        let size = self.peek().and_then(Size::from_name);
        if size.is_some() {
            self.pos += 1;
        }
        let colour = self.peek().and_then(Colour::from_name);
        if colour.is_some() {
            self.pos += 1;
        }
        let noun = self.next("a shape noun")?;
        let (shape, plural) = Shape::from_noun(noun)
            .ok_or_else(|| self.unexpected_at(self.pos - 1, "a shape noun"))?;
        if plural != (count > 1) {
            let expected = if plural {
                "a singular noun after a/one"
            } else {
                "a plural noun after a number"
            };
            return Err(self.unexpected_at(self.pos - 1, expected));
        }
        Ok(GroupSpec {
            count,
            shape,
            colour,
            size,
            region: None,
        })
    }

    fn colour(&mut self) -> Result<Colour, ShapesError> {
        let word = self.next("a colour")?;
        Colour::from_name(word).ok_or_else(|| self.unexpected_at(self.pos - 1, "a colour"))
    }

    /// A relation phrase, if one comes next.
    fn relation(&mut self) -> Option<Relation> {
        Relation::ALL
            .into_iter()
            .find(|r| r.phrases().iter().any(|p| self.phrase(p)))
    }

    /// Attaches a region phrase, if one comes next, to the group.
    fn with_region(&mut self, group: GroupSpec) -> GroupSpec {
        let region = Region::ALL.into_iter().find(|r| self.phrase(r.phrase()));
        GroupSpec { region, ..group }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SamplerConfig, SceneSampler, write_caption};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn brief_examples_parse() {
        for text in [
            "a blue square",
            "a small red circle",
            "one green triangle",
            "two small green triangles",
            "three circles, all red",
            "four yellow stars",
            "a red circle above a blue square",
            "two small green triangles to the left of a yellow star",
            "a star below a circle",
            "a purple square on the right of an orange triangle",
            "a red circle in the top left corner",
            "a red circle on the left",
            "a large blue circle next to a small red square",
            "a red circle, a blue square and a green star on a gray background",
        ] {
            parse_caption(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = parse_caption("two red circle").unwrap_err();
        assert!(
            matches!(e, ShapesError::UnexpectedWord { position: 2, .. }),
            "{e}"
        );
        assert!(matches!(
            parse_caption("a red dog"),
            Err(ShapesError::UnexpectedWord { position: 2, .. })
        ));
        assert!(matches!(
            parse_caption("a red"),
            Err(ShapesError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            parse_caption("a red circle above"),
            Err(ShapesError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            parse_caption(""),
            Err(ShapesError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            parse_caption("four stars and a circle"),
            Err(ShapesError::InvalidConstraints(_))
        ));
        assert!(parse_caption("a red circle on the left of").is_err());
    }

    #[test]
    fn sampled_captions_round_trip() {
        let mut sampler = SceneSampler::new(SamplerConfig::default(), 11).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let scene = sampler.sample();
            let c = crate::describe(&scene, &crate::CaptionStyle::default(), &mut rng).unwrap();
            let text = write_caption(&c, &mut rng).unwrap();
            assert_eq!(parse_caption(&text).unwrap(), c, "{text}");
        }
    }
}
