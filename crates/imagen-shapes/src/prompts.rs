//! DrawBench-lite: a fixed prompt set over colour, count, position,
//! composition, size and counterfactual (held-out) combinations.

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::random::{chance, pick};
use crate::{
    Background, Colour, Constraints, DEFAULT_HELD_OUT, GroupSpec, Region, Relation, Shape,
    ShapesError, Size, write_caption,
};

/// Seed of the prompt set; changing it changes `eval/drawbench_lite.jsonl`.
pub const DRAWBENCH_LITE_SEED: u64 = 2022;

/// The DrawBench category a prompt tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// One object of a named colour.
    Colour,
    /// Exact numbers of objects.
    Count,
    /// Relative ("above") or absolute ("on the left") positions.
    Position,
    /// Several objects with different colours: attribute binding.
    Composition,
    /// Size classes and size comparisons.
    Size,
    /// Colour/shape pairs held out of training ([`DEFAULT_HELD_OUT`]).
    Counterfactual,
}

impl Category {
    /// Every category, in file order.
    pub const ALL: [Category; 6] = [
        Category::Colour,
        Category::Count,
        Category::Position,
        Category::Composition,
        Category::Size,
        Category::Counterfactual,
    ];
}

/// One evaluation prompt: its text and what an image must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalPrompt {
    /// What the prompt tests.
    pub category: Category,
    /// The prompt, in the captions' grammar.
    pub text: String,
    /// The machine-checkable content of `text` (what [`parse_caption`](crate::parse_caption) returns).
    pub constraints: Constraints,
}

/// The prompt set: 220 prompts (Colour 40, Count 40, Position 40,
/// Composition 40, Size 30, Counterfactual 30), the same on every call.
///
/// Only counterfactual prompts use the [`DEFAULT_HELD_OUT`] colour/shape pairs.
///
/// ```
/// use imagen_shapes::{drawbench_lite, parse_caption, Category};
/// let prompts = drawbench_lite();
/// assert_eq!(prompts.len(), 220);
/// assert!(prompts.iter().any(|p| p.category == Category::Counterfactual));
/// assert_eq!(parse_caption(&prompts[0].text)?, prompts[0].constraints);
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
pub fn drawbench_lite() -> Vec<EvalPrompt> {
    let mut rng = StdRng::seed_from_u64(DRAWBENCH_LITE_SEED);
    let mut prompts: Vec<EvalPrompt> = Vec::new();
    let plan: [(Category, usize, Template); 6] = [
        (Category::Colour, 40, colour_prompt),
        (Category::Count, 40, count_prompt),
        (Category::Position, 40, position_prompt),
        (Category::Composition, 40, composition_prompt),
        (Category::Size, 30, size_prompt),
        (Category::Counterfactual, 30, counterfactual_prompt),
    ];
    for (category, target, template) in plan {
        let mut made = 0;
        for _ in 0..50 * target {
            if made == target {
                break;
            }
            let c = template(&mut rng);
            let held_out = uses_held_out(&c);
            if held_out != (category == Category::Counterfactual)
                || repeats_a_group(&c)
                || prompts.iter().any(|p| p.constraints == c)
            {
                continue;
            }
            if let Ok(text) = write_caption(&c, &mut rng) {
                prompts.push(EvalPrompt {
                    category,
                    text,
                    constraints: c,
                });
                made += 1;
            }
        }
    }
    prompts
}

/// One JSON object per line, as in `eval/drawbench_lite.jsonl`.
pub fn to_jsonl(prompts: &[EvalPrompt]) -> String {
    prompts
        .iter()
        .filter_map(|p| serde_json::to_string(p).ok())
        .map(|line| line + "\n")
        .collect()
}

/// Reads prompts written by [`to_jsonl`] (blank lines are skipped).
///
/// ```
/// use imagen_shapes::{drawbench_lite, from_jsonl, to_jsonl};
/// let prompts = drawbench_lite();
/// assert_eq!(from_jsonl(&to_jsonl(&prompts))?, prompts);
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
///
/// # Errors
/// [`ShapesError::PromptFile`] naming the first line that is not a prompt.
pub fn from_jsonl(text: &str) -> Result<Vec<EvalPrompt>, ShapesError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ShapesError::PromptFile {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

type Template = fn(&mut StdRng) -> Constraints;

fn uses_held_out(c: &Constraints) -> bool {
    c.groups.iter().any(|g| {
        g.colour
            .is_some_and(|col| DEFAULT_HELD_OUT.contains(&(col, g.shape)))
    })
}

/// Whether two groups name the same shape and colour ("two red stars and a red star").
fn repeats_a_group(c: &Constraints) -> bool {
    c.groups.iter().enumerate().any(|(i, a)| {
        c.groups[..i]
            .iter()
            .any(|b| a.shape == b.shape && a.colour == b.colour)
    })
}

fn colour<R: Rng + ?Sized>(rng: &mut R) -> Colour {
    pick(rng, &Colour::ALL).unwrap_or(Colour::Red)
}

fn shape<R: Rng + ?Sized>(rng: &mut R) -> Shape {
    pick(rng, &Shape::ALL).unwrap_or(Shape::Circle)
}

/// A coloured group whose colour differs from `avoid`.
fn group_avoiding<R: Rng + ?Sized>(rng: &mut R, count: usize, avoid: &[Colour]) -> GroupSpec {
    let free: Vec<Colour> = Colour::ALL
        .into_iter()
        .filter(|c| !avoid.contains(c))
        .collect();
    let c = pick(rng, &free).unwrap_or(Colour::Red);
    GroupSpec::new(count, shape(rng)).with_colour(c)
}

fn maybe_background<R: Rng + ?Sized>(rng: &mut R, c: Constraints, p: f64) -> Constraints {
    match chance(rng, p)
        .then(|| pick(rng, &Background::ALL))
        .flatten()
    {
        Some(b) => c.with_background(b),
        None => c,
    }
}

fn colour_prompt(rng: &mut StdRng) -> Constraints {
    let mut g = GroupSpec::new(1, shape(rng)).with_colour(colour(rng));
    if chance(rng, 0.2) {
        g = g.with_size(if rng.random::<bool>() {
            Size::Small
        } else {
            Size::Large
        });
    }
    maybe_background(rng, Constraints::new(vec![g]), 0.25)
}

fn count_prompt(rng: &mut StdRng) -> Constraints {
    if chance(rng, 0.25) {
        // Two groups, at least one of them plural, four objects at most.
        let a = rng.random_range(1..=3);
        let b = if a == 1 {
            rng.random_range(2..=3)
        } else {
            rng.random_range(1..=(4 - a))
        };
        let first = group_avoiding(rng, a, &[]);
        let second = group_avoiding(rng, b, &first.colour.into_iter().collect::<Vec<_>>());
        return Constraints::new(vec![first, second]);
    }
    let count = pick(rng, &[1, 2, 2, 3, 3, 3, 4, 4, 4]).unwrap_or(2);
    let mut g = GroupSpec::new(count, shape(rng));
    if chance(rng, 0.85) {
        g = g.with_colour(colour(rng));
    }
    if chance(rng, 0.15) {
        g = g.with_size(Size::Small);
    }
    Constraints::new(vec![g])
}

fn position_prompt(rng: &mut StdRng) -> Constraints {
    let spatial = [
        Relation::Above,
        Relation::Below,
        Relation::LeftOf,
        Relation::RightOf,
    ];
    let roll = rng.random::<f32>();
    if roll < 0.65 {
        let count = if chance(rng, 0.2) { 2 } else { 1 };
        let a = group_avoiding(rng, count, &[]);
        let mut b = group_avoiding(rng, 1, &a.colour.into_iter().collect::<Vec<_>>());
        let mut a = a;
        if a.shape != b.shape && chance(rng, 0.15) {
            a.colour = None;
            b.colour = None;
        }
        let r = pick(rng, &spatial).unwrap_or(Relation::Above);
        Constraints::new(vec![a, b]).with_relation(0, r, 1)
    } else if roll < 0.85 {
        let region = pick(rng, &Region::ALL).unwrap_or(Region::Left);
        Constraints::new(vec![group_avoiding(rng, 1, &[]).with_region(region)])
    } else {
        let (ra, rb) = pick(
            rng,
            &[
                (Region::Left, Region::Right),
                (Region::Top, Region::Bottom),
                (Region::TopLeft, Region::BottomRight),
                (Region::TopRight, Region::BottomLeft),
            ],
        )
        .unwrap_or((Region::Left, Region::Right));
        let a = group_avoiding(rng, 1, &[]).with_region(ra);
        let b = group_avoiding(rng, 1, &a.colour.into_iter().collect::<Vec<_>>()).with_region(rb);
        Constraints::new(vec![a, b])
    }
}

fn composition_prompt(rng: &mut StdRng) -> Constraints {
    let n = pick(rng, &[2, 2, 2, 2, 3, 3, 4]).unwrap_or(2);
    let mut groups: Vec<GroupSpec> = Vec::new();
    for _ in 0..n {
        let used: Vec<Colour> = groups.iter().filter_map(|g| g.colour).collect();
        groups.push(group_avoiding(rng, 1, &used));
    }
    // Binding test: same shapes, swapped colours are the classic failure.
    if n == 2 && chance(rng, 0.3) {
        groups[1].shape = groups[0].shape;
    }
    maybe_background(rng, Constraints::new(groups), 0.15)
}

fn size_prompt(rng: &mut StdRng) -> Constraints {
    let roll = rng.random::<f32>();
    let (small, large) = (Size::Small, Size::Large);
    if roll < 0.33 {
        let size = if rng.random::<bool>() { small } else { large };
        Constraints::new(vec![group_avoiding(rng, 1, &[]).with_size(size)])
    } else if roll < 0.66 {
        let a = group_avoiding(rng, 1, &[]);
        let b = group_avoiding(rng, 1, &a.colour.into_iter().collect::<Vec<_>>());
        let (sa, sb) = if rng.random::<bool>() {
            (large, small)
        } else {
            (small, large)
        };
        Constraints::new(vec![a.with_size(sa), b.with_size(sb)]).with_relation(
            0,
            Relation::NextTo,
            1,
        )
    } else {
        let a = group_avoiding(rng, 1, &[]);
        let b = group_avoiding(rng, 1, &a.colour.into_iter().collect::<Vec<_>>());
        let r = if rng.random::<bool>() {
            Relation::Bigger
        } else {
            Relation::Smaller
        };
        Constraints::new(vec![a, b]).with_relation(0, r, 1)
    }
}

fn counterfactual_prompt(rng: &mut StdRng) -> Constraints {
    let (c, s) = pick(rng, &DEFAULT_HELD_OUT).unwrap_or((Colour::Purple, Shape::Star));
    let held = GroupSpec::new(1, s).with_colour(c);
    let mut base = match rng.random_range(0..4) {
        0 => colour_prompt(rng),
        1 => count_prompt(rng),
        2 => position_prompt(rng),
        _ => size_prompt(rng),
    };
    // Swap the held-out pair into the first group, keeping count, size, region.
    let first = &mut base.groups[0];
    first.shape = held.shape;
    first.colour = held.colour;
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_caption;
    use std::path::PathBuf;

    #[test]
    fn categories_have_their_sizes_and_texts_parse() {
        let prompts = drawbench_lite();
        for (cat, n) in Category::ALL.into_iter().zip([40, 40, 40, 40, 30, 30]) {
            assert_eq!(
                prompts.iter().filter(|p| p.category == cat).count(),
                n,
                "{cat:?}"
            );
        }
        for p in &prompts {
            assert_eq!(
                parse_caption(&p.text).as_ref(),
                Ok(&p.constraints),
                "{}",
                p.text
            );
            assert_eq!(
                uses_held_out(&p.constraints),
                p.category == Category::Counterfactual,
                "{}",
                p.text
            );
            assert!(!repeats_a_group(&p.constraints), "{}", p.text);
        }
        let mut texts: Vec<&str> = prompts.iter().map(|p| p.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), prompts.len());
    }

    /// `eval/drawbench_lite.jsonl` must match [`drawbench_lite`]; run with
    /// `IMAGEN_SHAPES_BLESS=1` to rewrite it after changing the generator.
    #[test]
    fn eval_file_is_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/drawbench_lite.jsonl");
        let expected = to_jsonl(&drawbench_lite());
        if std::env::var_os("IMAGEN_SHAPES_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is stale: rerun with IMAGEN_SHAPES_BLESS=1",
            path.display()
        );
    }

    #[test]
    fn bad_lines_are_reported() {
        let e = from_jsonl("\n{\"category\":\"colour\"}\n").unwrap_err();
        assert!(matches!(e, ShapesError::PromptFile { line: 2, .. }), "{e}");
    }
}
