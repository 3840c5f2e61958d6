//! Captions for scenes: a true description, phrased at random.
//!
//! Captions always describe every object of the scene (so the scorer's
//! "exactly these objects" reading applies), and mention a region or a
//! relation only when it holds with the strict margins of [`Tolerance::Strict`].

use rand::Rng;

use crate::random::{chance, pick, probability, shuffle};
use crate::{
    Colour, Constraints, Footprint, GroupSpec, Region, Relation, RelationSpec, Scene, Shape,
    ShapesError, Size, Tolerance, write_caption,
};

/// How captions are written: how often they mention what is optional.
///
/// Objects are always all described; these settings only change how often a
/// caption also names what a prompt may ask about but need not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaptionStyle {
    /// Probability that a caption names the background colour (default 0.2).
    ///
    /// A model learns background words only from captions that use them; the
    /// demo base ignored "white" and "black" at 0.2.
    pub background_probability: f64,
}

impl Default for CaptionStyle {
    fn default() -> Self {
        CaptionStyle {
            background_probability: 0.2,
        }
    }
}

impl CaptionStyle {
    /// Checks that every probability lies in `[0, 1]`.
    ///
    /// # Errors
    /// [`ShapesError::InvalidConfig`] naming the field that does not.
    pub fn validate(&self) -> Result<(), ShapesError> {
        probability("background_probability", self.background_probability)
    }
}

/// A random caption, written in `style`, that is true of the scene.
///
/// ```
/// use imagen_shapes::{caption, parse_caption, CaptionStyle, SamplerConfig, SceneSampler};
/// use rand::{rngs::StdRng, SeedableRng};
/// let mut sampler = SceneSampler::new(SamplerConfig::default(), 0)?;
/// let scene = sampler.sample();
/// let text = caption(&scene, &CaptionStyle::default(), &mut StdRng::seed_from_u64(0))?;
/// assert!(parse_caption(&text)?.is_satisfied_by(&scene));
/// # Ok::<(), imagen_shapes::ShapesError>(())
/// ```
///
/// # Errors
/// [`ShapesError::InvalidScene`] when the scene breaks [`Scene::validate`],
/// [`ShapesError::InvalidConfig`] when `style` breaks [`CaptionStyle::validate`].
pub fn caption<R: Rng + ?Sized>(
    scene: &Scene,
    style: &CaptionStyle,
    rng: &mut R,
) -> Result<String, ShapesError> {
    let constraints = describe(scene, style, rng)?;
    write_caption(&constraints, rng)
}

/// Random constraints that are true of the scene and expressible as a caption:
/// what [`caption`] writes out.
///
/// Objects are grouped by colour and shape. Two groups get a relation when
/// one holds (75% of the time; above / below / left / right preferred over
/// next to / bigger / smaller), otherwise groups are listed, each possibly
/// with a region; sizes are named when a group is uniformly small or large;
/// the background is named as often as `style` says.
///
/// # Errors
/// As [`caption`].
pub fn describe<R: Rng + ?Sized>(
    scene: &Scene,
    style: &CaptionStyle,
    rng: &mut R,
) -> Result<Constraints, ShapesError> {
    scene.validate()?;
    style.validate()?;
    let name_background =
        |rng: &mut R| chance(rng, style.background_probability).then_some(scene.background);
    let mut groups: Vec<(Colour, Shape, Vec<Footprint>, Vec<Size>)> = Vec::new();
    for o in &scene.objects {
        match groups
            .iter_mut()
            .find(|g| g.0 == o.colour && g.1 == o.shape)
        {
            Some(g) => {
                g.2.push(o.footprint());
                g.3.push(o.size);
            }
            None => groups.push((o.colour, o.shape, vec![o.footprint()], vec![o.size])),
        }
    }
    shuffle(rng, &mut groups);
    let uniform_size = |sizes: &[Size]| sizes.iter().all(|s| *s == sizes[0]).then_some(sizes[0]);
    let mut specs: Vec<GroupSpec> = groups
        .iter()
        .map(|(colour, shape, _, sizes)| {
            let named = uniform_size(sizes).filter(|s| *s != Size::Medium && chance(rng, 0.45));
            GroupSpec {
                count: sizes.len(),
                shape: *shape,
                colour: Some(*colour),
                size: named,
                region: None,
            }
        })
        .collect();
    let all_pairs = |r: Relation, a: usize, b: usize| {
        groups[a].2.iter().all(|x| {
            groups[b]
                .2
                .iter()
                .all(|y| r.holds(*x, *y, Tolerance::Strict))
        })
    };

    if groups.len() == 2 && chance(rng, 0.75) {
        let holding = |set: &[Relation]| -> Vec<Relation> {
            set.iter()
                .copied()
                .filter(|&r| all_pairs(r, 0, 1))
                .collect()
        };
        let directional = holding(&[
            Relation::Above,
            Relation::Below,
            Relation::LeftOf,
            Relation::RightOf,
        ]);
        let other = holding(&[Relation::NextTo, Relation::Bigger, Relation::Smaller]);
        // Directions are what position prompts test: prefer them when they hold.
        let choice = if !directional.is_empty() && (other.is_empty() || chance(rng, 0.7)) {
            pick(rng, &directional)
        } else {
            pick(rng, &other)
        };
        if let Some(relation) = choice {
            match relation {
                Relation::Bigger | Relation::Smaller => {
                    // The comparative says it; adjectives would be redundant.
                    for s in &mut specs {
                        s.size = None;
                    }
                }
                Relation::NextTo => {
                    for (s, g) in specs.iter_mut().zip(&groups) {
                        s.size =
                            uniform_size(&g.3).filter(|s| *s != Size::Medium && chance(rng, 0.8));
                    }
                }
                _ => {}
            }
            if specs[0].shape != specs[1].shape && chance(rng, 0.12) {
                for s in &mut specs {
                    s.colour = None;
                }
            }
            let mut c = Constraints::new(specs);
            c.relations.push(RelationSpec {
                subject: 0,
                relation,
                reference: 1,
            });
            c.background = name_background(rng);
            return Ok(c);
        }
    }

    let region_chance = if groups.len() == 1 { 0.5 } else { 0.3 };
    for (s, g) in specs.iter_mut().zip(&groups) {
        if chance(rng, region_chance) {
            let holding: Vec<Region> = Region::ALL
                .into_iter()
                .filter(|r| g.2.iter().all(|f| r.contains(f.centre, Tolerance::Strict)))
                .collect();
            s.region = pick(rng, &holding);
        }
    }
    if specs.len() == 1 && chance(rng, 0.08) {
        specs[0].colour = None;
    }
    let mut c = Constraints::new(specs);
    c.background = name_background(rng);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SamplerConfig, SceneSampler, parse_caption};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn captions_are_true_of_their_scenes() {
        let mut sampler = SceneSampler::new(SamplerConfig::default(), 21).unwrap();
        let mut rng = StdRng::seed_from_u64(21);
        let mut relations = 0;
        for _ in 0..400 {
            let scene = sampler.sample();
            let text = caption(&scene, &CaptionStyle::default(), &mut rng).unwrap();
            let c = parse_caption(&text).unwrap();
            assert!(c.is_satisfied_by(&scene), "{text}\n{scene:?}");
            relations += usize::from(!c.relations.is_empty());
        }
        assert!(relations > 40, "only {relations} relation captions");
    }

    #[test]
    fn background_probability_sets_how_often_the_background_is_named() {
        let mut sampler = SceneSampler::new(SamplerConfig::default(), 5).unwrap();
        let scenes: Vec<Scene> = (0..300).map(|_| sampler.sample()).collect();
        let named = |p: f64| {
            let style = CaptionStyle {
                background_probability: p,
            };
            let mut rng = StdRng::seed_from_u64(5);
            scenes
                .iter()
                .filter(|scene| {
                    let text = caption(scene, &style, &mut rng).unwrap();
                    let c = parse_caption(&text).unwrap();
                    assert!(c.is_satisfied_by(scene), "{text}");
                    c.background.is_some()
                })
                .count()
        };
        assert_eq!(named(0.0), 0);
        assert_eq!(named(1.0), scenes.len());
        let half = named(0.5);
        assert!((110..190).contains(&half), "{half} of 300 at 0.5");
    }

    #[test]
    fn a_style_that_is_not_a_probability_is_an_error() {
        let scene = SceneSampler::new(SamplerConfig::default(), 0)
            .unwrap()
            .sample();
        for p in [-0.1, 1.5, f64::NAN] {
            let style = CaptionStyle {
                background_probability: p,
            };
            let err = caption(&scene, &style, &mut StdRng::seed_from_u64(0)).unwrap_err();
            assert!(err.to_string().contains("background_probability"), "{err}");
        }
    }
}
