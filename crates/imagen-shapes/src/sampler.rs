//! The seeded training-scene distribution, with held-out colour/shape pairs.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::placement::{ANYWHERE, Slot, place, relation_boxes};
use crate::random::{chance, pick, probability, shuffle};
use crate::texture::random_texture;
use crate::{
    Background, CaptionStyle, Colour, Footprint, MAX_OBJECTS, Object, Relation, Scene, Shape,
    ShapesError, Size, Tolerance,
};

/// Colour/shape pairs never drawn in training, kept for the counterfactual
/// prompts: one per core shape and four different colours, so each colour and
/// each shape still appears in training with other partners.
pub const DEFAULT_HELD_OUT: [(Colour, Shape); 4] = [
    (Colour::Purple, Shape::Star),
    (Colour::Yellow, Shape::Triangle),
    (Colour::Pink, Shape::Square),
    (Colour::Cyan, Shape::Circle),
];

/// The distribution of training scenes.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Colour/shape pairs that never appear (default [`DEFAULT_HELD_OUT`]).
    pub held_out: Vec<(Colour, Shape)>,
    /// Most objects per scene, 1 to [`MAX_OBJECTS`] (default 4).
    pub max_objects: usize,
    /// Relative weights of 1, 2, ... `max_objects` objects per scene, one
    /// each (default empty: uniform). Raising the small counts aims the data
    /// at a model that draws a requested object twice.
    pub count_weights: Vec<f64>,
    /// Object colours to draw from (default all).
    pub colours: Vec<Colour>,
    /// Shapes to draw from (default all).
    pub shapes: Vec<Shape>,
    /// Relative weights of shapes when a group's colour/shape pair is drawn;
    /// unlisted shapes weigh 1 (default empty: uniform). Raising the shapes
    /// a model gets wrong aims the data at its failures.
    pub shape_weights: Vec<(Shape, f64)>,
    /// Background colours to draw from (default all).
    pub backgrounds: Vec<Background>,
    /// Probability of a textured rather than plain background (default 0.5).
    pub texture_probability: f64,
    /// Probability that a two-group scene is laid out along a spatial
    /// relation, so relation captions are frequent (default 0.6).
    pub relation_layout_probability: f64,
    /// How [`SceneSampler::sample_captioned`] writes captions.
    pub captions: CaptionStyle,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            held_out: DEFAULT_HELD_OUT.to_vec(),
            max_objects: MAX_OBJECTS,
            count_weights: Vec::new(),
            colours: Colour::ALL.to_vec(),
            shapes: Shape::ALL.to_vec(),
            shape_weights: Vec::new(),
            backgrounds: Background::ALL.to_vec(),
            texture_probability: 0.5,
            relation_layout_probability: 0.6,
            captions: CaptionStyle::default(),
        }
    }
}

/// Draws training scenes (and captions) from a [`SamplerConfig`], reproducibly from a seed.
#[derive(Debug)]
pub struct SceneSampler {
    config: SamplerConfig,
    combos: Vec<(Colour, Shape)>,
    /// Each combo's weight, `None` when all weigh the same.
    weights: Option<Vec<f64>>,
    /// Cumulative weights of 1, 2, ... objects, `None` when uniform.
    count_cumulative: Option<Vec<f64>>,
    rng: StdRng,
}

/// One object to place, before it has a position.
#[derive(Debug, Clone, Copy)]
struct Member {
    colour: Colour,
    shape: Shape,
    size: Size,
    /// Index of its colour/shape group.
    group: usize,
}

/// Layouts tried before falling back to smaller objects.
const RESTARTS: usize = 50;

impl SceneSampler {
    /// A sampler for `config` seeded with `seed`.
    ///
    /// ```
    /// use imagen_shapes::{SamplerConfig, SceneSampler};
    /// let mut sampler = SceneSampler::new(SamplerConfig::default(), 42)?;
    /// let (scene, caption) = sampler.sample_captioned();
    /// assert!(scene.validate().is_ok());
    /// assert!(!caption.is_empty());
    /// # Ok::<(), imagen_shapes::ShapesError>(())
    /// ```
    ///
    /// # Errors
    /// [`ShapesError::InvalidConfig`] when `max_objects` is out of range, a
    /// list is empty, a probability is outside `[0, 1]`, a shape or count
    /// weight is not positive and finite, a shape weight names a shape not
    /// drawn, a shape is weighted twice, the count weights are not one per
    /// count, or every colour/shape pair is held out.
    pub fn new(config: SamplerConfig, seed: u64) -> Result<SceneSampler, ShapesError> {
        if config.max_objects == 0 || config.max_objects > MAX_OBJECTS {
            return Err(ShapesError::InvalidConfig(format!(
                "max_objects {} is not in 1..={MAX_OBJECTS}",
                config.max_objects
            )));
        }
        if config.backgrounds.is_empty() {
            return Err(ShapesError::InvalidConfig("no background colours".into()));
        }
        probability("texture_probability", config.texture_probability)?;
        probability(
            "relation_layout_probability",
            config.relation_layout_probability,
        )?;
        config.captions.validate()?;
        let combos: Vec<(Colour, Shape)> = config
            .colours
            .iter()
            .flat_map(|&c| config.shapes.iter().map(move |&s| (c, s)))
            .filter(|pair| !config.held_out.contains(pair))
            .collect();
        if combos.is_empty() {
            return Err(ShapesError::InvalidConfig(
                "every colour/shape pair is held out".into(),
            ));
        }
        for (i, &(shape, w)) in config.shape_weights.iter().enumerate() {
            if config.shape_weights[..i].iter().any(|(s, _)| *s == shape) {
                return Err(ShapesError::InvalidConfig(format!(
                    "shape_weights lists {} twice",
                    shape.name()
                )));
            }
            if !(w.is_finite() && w > 0.0) {
                return Err(ShapesError::InvalidConfig(format!(
                    "shape weight {w} for {} is not positive and finite",
                    shape.name()
                )));
            }
            if !config.shapes.contains(&shape) {
                return Err(ShapesError::InvalidConfig(format!(
                    "shape_weights names {}, which is not among the shapes drawn",
                    shape.name()
                )));
            }
        }
        let weight = |shape: Shape| {
            config
                .shape_weights
                .iter()
                .find(|(s, _)| *s == shape)
                .map_or(1.0, |&(_, w)| w)
        };
        let weights: Vec<f64> = combos.iter().map(|&(_, s)| weight(s)).collect();
        let weights = weights.iter().any(|&w| w != 1.0).then_some(weights);
        let count_cumulative = count_cumulative(&config.count_weights, config.max_objects)?;
        Ok(SceneSampler {
            config,
            combos,
            weights,
            count_cumulative,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The colour/shape pairs this sampler draws from.
    pub fn combos(&self) -> &[(Colour, Shape)] {
        &self.combos
    }

    /// The next scene.
    pub fn sample(&mut self) -> Scene {
        let rng = &mut self.rng;
        let n = match &self.count_cumulative {
            // Uniform: the plain draw, so unweighted runs draw as they always have.
            None => rng.random_range(1..=self.config.max_objects),
            Some(cumulative) => {
                let u = rng.random::<f64>() * cumulative.last().copied().unwrap_or(1.0);
                1 + cumulative.iter().take_while(|&&c| c <= u).count()
            }
        }
        .min(self.config.max_objects);
        let most_groups = n.min(self.combos.len());
        // Two groups are what relations need: favour them in multi-object scenes.
        let n_groups = if most_groups >= 2 && chance(rng, 0.35) {
            2
        } else {
            rng.random_range(1..=most_groups)
        };
        let mut counts = vec![1usize; n_groups];
        for _ in n_groups..n {
            let g = rng.random_range(0..n_groups);
            counts[g] += 1;
        }
        let combos = match &self.weights {
            // Uniform: a plain shuffle, so unweighted runs draw as they always have.
            None => {
                let mut combos = self.combos.clone();
                shuffle(rng, &mut combos);
                combos
            }
            Some(weights) => weighted_order(rng, &self.combos, weights),
        };
        let mut members: Vec<Member> = Vec::with_capacity(n);
        for (group, (&count, &(colour, shape))) in counts.iter().zip(&combos).enumerate() {
            let uniform_size = chance(rng, 0.7);
            let group_size = pick(rng, &Size::ALL).unwrap_or(Size::Medium);
            for _ in 0..count {
                let size = if uniform_size {
                    group_size
                } else {
                    pick(rng, &Size::ALL).unwrap_or(Size::Medium)
                };
                members.push(Member {
                    colour,
                    shape,
                    size,
                    group,
                });
            }
        }
        let background = pick(rng, &self.config.backgrounds).unwrap_or(Background::White);
        let texture = random_texture(rng, 1.0 - self.config.texture_probability);

        // Two groups: often lay them out along a relation (group 0 the subject).
        let directions = [
            Relation::Above,
            Relation::Below,
            Relation::LeftOf,
            Relation::RightOf,
        ];
        let relation = (n_groups == 2 && chance(rng, self.config.relation_layout_probability))
            .then(|| pick(rng, &directions))
            .flatten();
        let boxes = relation.and_then(|r| relation_boxes(r, rng));
        let slots: Vec<Slot> = members
            .iter()
            .map(|m| Slot {
                size: m.size,
                centre_box: match boxes {
                    Some((subject, _)) if m.group == 0 => subject,
                    Some((_, reference)) => reference,
                    None => ANYWHERE,
                },
            })
            .collect();
        let holds = |centres: &[[f32; 2]]| {
            let Some(r) = relation else { return true };
            let placed: Vec<(usize, Footprint)> = members
                .iter()
                .zip(centres)
                .map(|(m, &centre)| {
                    (
                        m.group,
                        Footprint {
                            centre,
                            scale: m.size.fraction(),
                        },
                    )
                })
                .collect();
            placed.iter().filter(|a| a.0 == 0).all(|a| {
                placed
                    .iter()
                    .filter(|b| b.0 == 1)
                    .all(|b| r.holds(a.1, b.1, Tolerance::Strict))
            })
        };
        let mut centres = place(&slots, rng, RESTARTS, holds);
        if centres.is_none() {
            // Fall back: the same objects, all small, anywhere.
            for m in &mut members {
                m.size = Size::Small;
            }
            let small = vec![
                Slot {
                    size: Size::Small,
                    centre_box: ANYWHERE
                };
                members.len()
            ];
            centres = place(&small, rng, 10 * RESTARTS, |_| true);
        }
        let objects = match centres {
            Some(centres) => members
                .iter()
                .zip(centres)
                .map(|(m, centre)| Object {
                    shape: m.shape,
                    colour: m.colour,
                    size: m.size,
                    centre,
                })
                .collect(),
            None => {
                // Unreachable in practice (four small objects always fit): one object.
                let m = members[0];
                vec![Object {
                    shape: m.shape,
                    colour: m.colour,
                    size: Size::Medium,
                    centre: [0.5, 0.5],
                }]
            }
        };
        Scene {
            background,
            texture,
            objects,
        }
    }

    /// The next scene and a caption for it.
    pub fn sample_captioned(&mut self) -> (Scene, String) {
        let scene = self.sample();
        // Sampled scenes are always valid and `new` checked the caption
        // style, so captioning cannot fail; fall back to the first object's
        // name rather than panic.
        let caption =
            crate::caption(&scene, &self.config.captions, &mut self.rng).unwrap_or_else(|_| {
                scene.objects.first().map_or_else(String::new, |o| {
                    format!("a {} {}", o.colour.name(), o.shape.name())
                })
            });
        (scene, caption)
    }
}

/// The running sums of `weights` (one per count 1..=`max_objects`), or
/// `None` for an empty list (uniform counts).
fn count_cumulative(weights: &[f64], max_objects: usize) -> Result<Option<Vec<f64>>, ShapesError> {
    if weights.is_empty() {
        return Ok(None);
    }
    if weights.len() != max_objects {
        return Err(ShapesError::InvalidConfig(format!(
            "count_weights has {} weights, one per count 1..={max_objects} needs {max_objects}",
            weights.len()
        )));
    }
    let mut sum = 0.0;
    let mut cumulative = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        if !(w.is_finite() && w > 0.0) {
            return Err(ShapesError::InvalidConfig(format!(
                "count weight {w} for {} object(s) is not positive and finite",
                i + 1
            )));
        }
        sum += w;
        cumulative.push(sum);
    }
    Ok(Some(cumulative))
}

/// `items` in a random order in which each leads with probability
/// proportional to its weight, and so on down the rest (weighted sampling
/// without replacement: Efraimidis and Spirakis' keys `u^(1/w)`).
fn weighted_order<T: Copy, R: rand::Rng + ?Sized>(
    rng: &mut R,
    items: &[T],
    weights: &[f64],
) -> Vec<T> {
    let mut keyed: Vec<(f64, T)> = items
        .iter()
        .zip(weights)
        .map(|(&item, &w)| (rng.random::<f64>().powf(1.0 / w), item))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    keyed.into_iter().map(|(_, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_valid_and_never_hold_out_pairs() {
        let mut s = SceneSampler::new(SamplerConfig::default(), 7).unwrap();
        let mut counts = [0usize; MAX_OBJECTS + 1];
        for _ in 0..500 {
            let scene = s.sample();
            scene.validate().unwrap();
            counts[scene.objects.len()] += 1;
            for o in &scene.objects {
                assert!(!DEFAULT_HELD_OUT.contains(&(o.colour, o.shape)), "{o:?}");
            }
        }
        assert!(counts[1..].iter().all(|&c| c > 80), "{counts:?}");
    }

    #[test]
    fn shape_weights_raise_a_shape_and_are_validated() {
        let share = |config: SamplerConfig| {
            let mut s = SceneSampler::new(config, 3).unwrap();
            let (mut stars, mut all) = (0usize, 0usize);
            for _ in 0..2000 {
                for o in s.sample().objects {
                    stars += usize::from(o.shape == Shape::Star);
                    all += 1;
                }
            }
            stars as f64 / all as f64
        };
        let uniform = share(SamplerConfig::default());
        let weighted = share(SamplerConfig {
            shape_weights: vec![(Shape::Star, 3.0)],
            ..SamplerConfig::default()
        });
        // One shape in six; weight 3 of 8 would be 0.375 per draw.
        assert!((uniform - 1.0 / 6.0).abs() < 0.03, "{uniform}");
        assert!(weighted > 0.3, "{weighted}");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let config = SamplerConfig {
                shape_weights: vec![(Shape::Cross, bad)],
                ..SamplerConfig::default()
            };
            let err = SceneSampler::new(config, 0).unwrap_err().to_string();
            assert!(err.contains("cross"), "{err}");
        }
        let config = SamplerConfig {
            shape_weights: vec![(Shape::Star, 2.0), (Shape::Star, 3.0)],
            ..SamplerConfig::default()
        };
        let err = SceneSampler::new(config, 0).unwrap_err().to_string();
        assert!(err.contains("star twice"), "{err}");
        let config = SamplerConfig {
            shapes: vec![Shape::Circle, Shape::Square],
            shape_weights: vec![(Shape::Star, 2.0)],
            ..SamplerConfig::default()
        };
        let err = SceneSampler::new(config, 0).unwrap_err().to_string();
        assert!(err.contains("star"), "{err}");
    }

    #[test]
    fn count_weights_shift_the_object_count_and_are_validated() {
        let histogram = |config: SamplerConfig| {
            let mut s = SceneSampler::new(config, 5).unwrap();
            let mut h = [0usize; MAX_OBJECTS + 1];
            for _ in 0..4000 {
                h[s.sample().objects.len()] += 1;
            }
            h
        };
        let weighted = histogram(SamplerConfig {
            count_weights: vec![2.0, 4.0, 1.0, 1.0],
            ..SamplerConfig::default()
        });
        // Expected shares 0.25 / 0.5 / 0.125 / 0.125 of 4000.
        for (n, want) in [(1, 1000.0), (2, 2000.0), (3, 500.0), (4, 500.0)] {
            let got = weighted[n] as f64;
            assert!((got - want).abs() < 0.1 * want, "{n} objects: {weighted:?}");
        }
        let bad = |count_weights: Vec<f64>| {
            let config = SamplerConfig {
                count_weights,
                ..SamplerConfig::default()
            };
            SceneSampler::new(config, 0).unwrap_err().to_string()
        };
        assert!(bad(vec![1.0, 2.0]).contains("count_weights has 2"));
        assert!(bad(vec![1.0, 0.0, 1.0, 1.0]).contains("2 object(s)"));
        assert!(bad(vec![1.0, 1.0, f64::NAN, 1.0]).contains("3 object(s)"));
    }

    #[test]
    fn probabilities_outside_zero_one_are_rejected_by_name() {
        let bad = [
            SamplerConfig {
                texture_probability: 2.0,
                ..SamplerConfig::default()
            },
            SamplerConfig {
                relation_layout_probability: -1.0,
                ..SamplerConfig::default()
            },
            SamplerConfig {
                captions: CaptionStyle {
                    background_probability: f64::NAN,
                },
                ..SamplerConfig::default()
            },
        ];
        let names = [
            "texture_probability",
            "relation_layout_probability",
            "background_probability",
        ];
        for (config, name) in bad.into_iter().zip(names) {
            let err = SceneSampler::new(config, 0).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn same_seed_same_scenes() {
        let mut a = SceneSampler::new(SamplerConfig::default(), 3).unwrap();
        let mut b = SceneSampler::new(SamplerConfig::default(), 3).unwrap();
        for _ in 0..20 {
            assert_eq!(a.sample_captioned(), b.sample_captioned());
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        let zero = SamplerConfig {
            max_objects: 0,
            ..SamplerConfig::default()
        };
        assert!(SceneSampler::new(zero, 0).is_err());
        let all_out = SamplerConfig {
            colours: vec![Colour::Purple],
            shapes: vec![Shape::Star],
            ..SamplerConfig::default()
        };
        assert!(SceneSampler::new(all_out, 0).is_err());
    }
}
