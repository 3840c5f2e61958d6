//! Random non-overlapping layouts: where to put objects so that regions and
//! relations hold. Shared by the scene sampler and [`Constraints::realize`](crate::Constraints::realize).

use rand::{Rng, RngExt};

use crate::random::uniform;
use crate::scene::apart;
use crate::{CANVAS_MARGIN, Relation, Size};

/// One object to place: its size and the box its centre is drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slot {
    /// The object's size.
    pub size: Size,
    /// Where its centre may be drawn, `[x_min, x_max, y_min, y_max]`.
    pub centre_box: [f32; 4],
}

/// The whole canvas as a centre box.
pub(crate) const ANYWHERE: [f32; 4] = [0.0, 1.0, 0.0, 1.0];

/// Intersection of two centre boxes, `None` when empty.
pub(crate) fn intersect(a: [f32; 4], b: [f32; 4]) -> Option<[f32; 4]> {
    let r = [
        a[0].max(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].min(b[3]),
    ];
    (r[0] <= r[1] && r[2] <= r[3]).then_some(r)
}

/// Tries per object before a layout restarts.
const TRIES_PER_OBJECT: usize = 30;

/// Draws centres for `slots` with boxes inside the canvas and apart, until
/// `accept` takes the layout or `restarts` layouts have been tried.
pub(crate) fn place<R: Rng + ?Sized>(
    slots: &[Slot],
    rng: &mut R,
    restarts: usize,
    accept: impl Fn(&[[f32; 2]]) -> bool,
) -> Option<Vec<[f32; 2]>> {
    let mut centres: Vec<[f32; 2]> = Vec::with_capacity(slots.len());
    'layout: for _ in 0..restarts {
        centres.clear();
        for slot in slots {
            let h = 0.5 * slot.size.fraction() + CANVAS_MARGIN;
            let canvas = [h, 1.0 - h, h, 1.0 - h];
            let b = intersect(canvas, slot.centre_box).unwrap_or(canvas);
            let bounds = |c: [f32; 2], s: Size| {
                let r = 0.5 * s.fraction();
                [c[0] - r, c[1] - r, c[0] + r, c[1] + r]
            };
            let mut placed = false;
            for _ in 0..TRIES_PER_OBJECT {
                let c = [uniform(rng, b[0], b[1]), uniform(rng, b[2], b[3])];
                let mine = bounds(c, slot.size);
                let clear = centres
                    .iter()
                    .zip(slots)
                    .all(|(o, s)| apart(mine, bounds(*o, s.size)));
                if clear {
                    centres.push(c);
                    placed = true;
                    break;
                }
            }
            if !placed {
                continue 'layout;
            }
        }
        if accept(&centres) {
            return Some(centres);
        }
    }
    None
}

/// Centre boxes that make a spatial relation likely between a subject group
/// and a reference group: a split line across the relation's axis and a
/// shared band along it. `None` for size relations.
pub(crate) fn relation_boxes<R: Rng + ?Sized>(
    relation: Relation,
    rng: &mut R,
) -> Option<([f32; 4], [f32; 4])> {
    let relation = match relation {
        Relation::NextTo => {
            if rng.random::<bool>() {
                Relation::LeftOf
            } else {
                Relation::RightOf
            }
        }
        r => r,
    };
    let split = uniform(rng, 0.42, 0.58);
    let band = uniform(rng, 0.3, 0.7);
    let (before, after) = ([0.0, split - 0.08], [split + 0.08, 1.0]);
    let across = [band - 0.22, band + 0.22];
    let horizontal = |x: [f32; 2]| [x[0], x[1], across[0], across[1]];
    let vertical = |y: [f32; 2]| [across[0], across[1], y[0], y[1]];
    match relation {
        Relation::Above => Some((vertical(before), vertical(after))),
        Relation::Below => Some((vertical(after), vertical(before))),
        Relation::LeftOf => Some((horizontal(before), horizontal(after))),
        Relation::RightOf => Some((horizontal(after), horizontal(before))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Footprint;
    use crate::Tolerance;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn four_large_objects_fit() {
        let mut rng = StdRng::seed_from_u64(1);
        let slots = [Slot {
            size: Size::Large,
            centre_box: ANYWHERE,
        }; 4];
        assert!(place(&slots, &mut rng, 2000, |_| true).is_some());
    }

    #[test]
    fn relation_boxes_usually_give_the_relation() {
        let mut rng = StdRng::seed_from_u64(2);
        for rel in [
            Relation::Above,
            Relation::Below,
            Relation::LeftOf,
            Relation::RightOf,
            Relation::NextTo,
        ] {
            let mut hits = 0;
            for _ in 0..100 {
                let (a, b) = relation_boxes(rel, &mut rng).unwrap();
                let slots = [
                    Slot {
                        size: Size::Medium,
                        centre_box: a,
                    },
                    Slot {
                        size: Size::Medium,
                        centre_box: b,
                    },
                ];
                let Some(c) = place(&slots, &mut rng, 10, |_| true) else {
                    continue;
                };
                let fp = |c: [f32; 2]| Footprint {
                    centre: c,
                    scale: 0.23,
                };
                hits += usize::from(rel.holds(fp(c[0]), fp(c[1]), Tolerance::Strict));
            }
            assert!(hits > 60, "{rel:?}: {hits}");
        }
    }
}
