//! Word order: does an image follow a relation prompt as written, or the
//! same prompt with its two objects swapped?
//!
//! "a red circle above a blue square" and "a blue square above a red circle"
//! name the same words; a model that reads a bag of words draws the same
//! layouts for both. The swap test generates images for both orders and
//! counts how often each image follows its own prompt's order
//! ([`OrderVerdict::Follows`]) against the swapped order
//! ([`OrderVerdict::Swapped`]): [`SwapTally::margin`] is 0 for a bag of
//! words and 1 for a model that always follows the order.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::{
    Colour, Constraints, DEFAULT_HELD_OUT, Detection, Footprint, GroupSpec, Relation, Shape,
    Tolerance,
};

/// The four directional relations the swap test uses.
pub const DIRECTIONS: [Relation; 4] = [
    Relation::Above,
    Relation::Below,
    Relation::LeftOf,
    Relation::RightOf,
];

/// Where an image's objects stand relative to a relation prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderVerdict {
    /// The subject group stands in the relation to the reference group.
    Follows,
    /// The reference group stands in the relation to the subject group: the
    /// image follows the prompt with its objects swapped.
    Swapped,
    /// Neither: a group is missing, or the relation holds neither way.
    Neither,
}

/// `n` distinct relation prompts, each with its swap: one object per group,
/// two different colours, a directional relation, colour/shape pairs of the
/// training distribution (none of [`DEFAULT_HELD_OUT`]). Element `[0]` is
/// the prompt, `[1]` the same words with the two objects exchanged.
///
/// ```
/// use imagen_shapes::{swap_prompts, write_caption};
/// use rand::{rngs::StdRng, SeedableRng};
/// let pairs = swap_prompts(20, 0);
/// assert_eq!(pairs.len(), 20);
/// let [a, b] = &pairs[0];
/// assert_eq!((a.groups[0], a.groups[1]), (b.groups[1], b.groups[0]));
/// assert_eq!(a.relations[0].relation, b.relations[0].relation);
/// # let _ = write_caption(a, &mut StdRng::seed_from_u64(0))?;
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
pub fn swap_prompts(n: usize, seed: u64) -> Vec<[Constraints; 2]> {
    let combos: Vec<(Colour, Shape)> = Colour::ALL
        .into_iter()
        .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
        .filter(|p| !DEFAULT_HELD_OUT.contains(p))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<[Constraints; 2]> = Vec::with_capacity(n);
    // Far more draws than distinct prompts are needed; the bound only
    // guards against an `n` above the number of distinct prompts.
    for _ in 0..n.saturating_mul(100) {
        if out.len() == n {
            break;
        }
        let a = combos[rng.random_range(0..combos.len())];
        let b = combos[rng.random_range(0..combos.len())];
        if a.0 == b.0 {
            continue;
        }
        let relation = DIRECTIONS[rng.random_range(0..DIRECTIONS.len())];
        let group = |(c, s): (Colour, Shape)| GroupSpec::new(1, s).with_colour(c);
        let prompt = Constraints::new(vec![group(a), group(b)]).with_relation(0, relation, 1);
        let swapped = Constraints::new(vec![group(b), group(a)]).with_relation(0, relation, 1);
        if !out.iter().any(|p| p[0] == prompt || p[0] == swapped) {
            out.push([prompt, swapped]);
        }
    }
    out
}

/// Whether the detected objects follow `constraints`' one relation as
/// written, swapped, or neither, with the scorer's lenient margins.
///
/// Objects are assigned to a group by colour (and also by shape when the
/// two groups name the same colour or none); a group's position is the mean
/// centre of its objects. Counts and shapes are not checked otherwise: the
/// verdict is about order alone. Constraints without exactly one spatial,
/// directional relation between two groups give [`OrderVerdict::Neither`].
pub fn relation_order(detection: &Detection, constraints: &Constraints) -> OrderVerdict {
    let ([subject, reference], relation) =
        match (&constraints.groups[..], &constraints.relations[..]) {
            ([_, _], [r])
                if DIRECTIONS.contains(&r.relation)
                    && r.subject != r.reference
                    && r.subject < 2
                    && r.reference < 2 =>
            {
                (
                    [
                        &constraints.groups[r.subject],
                        &constraints.groups[r.reference],
                    ],
                    r.relation,
                )
            }
            _ => return OrderVerdict::Neither,
        };
    let by_shape = subject.colour == reference.colour;
    let place = |g: &GroupSpec| -> Option<Footprint> {
        let mut sum = [0.0f32; 3];
        let mut n = 0usize;
        for o in &detection.objects {
            let colour_ok = g.colour.is_none_or(|c| c == o.colour);
            let shape_ok = !by_shape || o.shape == Some(g.shape);
            if colour_ok && shape_ok {
                sum[0] += o.footprint.centre[0];
                sum[1] += o.footprint.centre[1];
                sum[2] += o.footprint.scale;
                n += 1;
            }
        }
        (n > 0).then(|| {
            let k = n as f32;
            Footprint {
                centre: [sum[0] / k, sum[1] / k],
                scale: sum[2] / k,
            }
        })
    };
    let (Some(s), Some(r)) = (place(subject), place(reference)) else {
        return OrderVerdict::Neither;
    };
    if relation.holds(s, r, Tolerance::Lenient) {
        OrderVerdict::Follows
    } else if relation.holds(r, s, Tolerance::Lenient) {
        OrderVerdict::Swapped
    } else {
        OrderVerdict::Neither
    }
}

/// Counts of [`OrderVerdict`]s over the images of a swap test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapTally {
    /// Images that follow their prompt's order.
    pub follows: usize,
    /// Images that follow the swapped order.
    pub swapped: usize,
    /// Images that follow neither.
    pub neither: usize,
}

impl SwapTally {
    /// Counts one verdict.
    pub fn add(&mut self, verdict: OrderVerdict) {
        match verdict {
            OrderVerdict::Follows => self.follows += 1,
            OrderVerdict::Swapped => self.swapped += 1,
            OrderVerdict::Neither => self.neither += 1,
        }
    }

    /// Images counted.
    pub fn total(&self) -> usize {
        self.follows + self.swapped + self.neither
    }

    /// P(follows the prompt's order) - P(follows the swapped order), over
    /// all images counted; 0 when none were.
    ///
    /// ```
    /// let t = imagen_shapes::SwapTally { follows: 6, swapped: 2, neither: 2 };
    /// assert!((t.margin() - 0.4).abs() < 1e-9);
    /// ```
    pub fn margin(&self) -> f64 {
        if self.total() == 0 {
            0.0
        } else {
            (self.follows as f64 - self.swapped as f64) / self.total() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detect, render};

    #[test]
    fn ground_truth_follows_and_its_swap_is_swapped() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut tally = SwapTally::default();
        for [prompt, swapped] in swap_prompts(40, 1) {
            let scene = prompt.realize(&mut rng).unwrap();
            let detection = detect(&render(&scene, 64));
            assert_eq!(relation_order(&detection, &prompt), OrderVerdict::Follows);
            assert_eq!(relation_order(&detection, &swapped), OrderVerdict::Swapped);
            tally.add(relation_order(&detection, &prompt));
        }
        assert_eq!(tally.margin(), 1.0);
    }

    #[test]
    fn prompts_are_distinct_and_swaps_differ() {
        let pairs = swap_prompts(60, 0);
        assert_eq!(pairs.len(), 60);
        for (i, [a, b]) in pairs.iter().enumerate() {
            assert_ne!(a, b);
            assert!(pairs[..i].iter().all(|[c, _]| c != a && c != b));
        }
    }
}
