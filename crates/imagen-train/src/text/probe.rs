//! A linear probe of a frozen text encoder: does an object's token state
//! say where the object goes and how many there are?
//!
//! Imagen's U-Net only sees the frozen encoder's token states; if the state
//! of "circle" in "a red circle above a blue square" is the same as in "a
//! blue square above a red circle", no U-Net can draw the order. The probe
//! fits a multinomial logistic regression from an object's features to its
//! [`Role`] (upper, lower, left, right) and, separately, to its count, on
//! relation captions, and scores it on captions whose colour/shape pairs it
//! was not fit on ([`ProbeConfig::held_out`]), so that it cannot memorise
//! word combinations. [`ProbeFeature::BagOfWords`] is the order-blind
//! baseline: the noun's static embedding beside the caption's mean static
//! embedding, which knows the relation word but not who is its subject.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use imagen_shapes::{Colour, DEFAULT_HELD_OUT, Shape};
use imagen_text::{T5Encoder, T5Tokenizer, batch_tensors};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::roles::{RoleCaption, random_role_caption};
use crate::TrainError;
use crate::data::DataError;

/// What the probe reads for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFeature {
    /// The encoder's output state at the object's noun.
    Noun,
    /// The mean output state over the object's words (determiner to noun).
    Phrase,
    /// Order-blind baseline: the noun's static (input) embedding and the
    /// mean static embedding of the caption's tokens, concatenated.
    BagOfWords,
}

/// Settings of the gradient-descent fit of a [`LinearProbe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeFit {
    /// Full-batch gradient steps.
    pub steps: usize,
    /// Step size (features are standardised first).
    pub lr: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
}

impl Default for ProbeFit {
    fn default() -> Self {
        Self {
            steps: 400,
            lr: 0.5,
            l2: 1e-3,
        }
    }
}

/// A multinomial logistic regression on standardised features.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbe {
    classes: usize,
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// `classes` rows of `dim` weights.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl LinearProbe {
    /// Fits the probe to `x` (one feature vector per example, all of one
    /// length) and labels `y` in `0..classes` by full-batch gradient descent
    /// on the mean cross-entropy.
    ///
    /// ```
    /// use imagen_train::text::{LinearProbe, ProbeFit};
    /// let x = vec![vec![0.0, 1.0], vec![0.1, 0.9], vec![1.0, 0.0], vec![0.9, 0.2]];
    /// let probe = LinearProbe::fit(&x, &[0, 0, 1, 1], 2, &ProbeFit::default())?;
    /// assert_eq!(probe.accuracy(&x, &[0, 0, 1, 1]), 1.0);
    /// # Ok::<(), imagen_train::TrainError>(())
    /// ```
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for no examples, features of different
    /// lengths, as many labels as examples not given, a label outside
    /// `0..classes`, or fewer than two classes.
    pub fn fit(
        x: &[Vec<f32>],
        y: &[usize],
        classes: usize,
        fit: &ProbeFit,
    ) -> Result<Self, TrainError> {
        let invalid = |m: &str| Err(TrainError::InvalidConfig(format!("probe: {m}")));
        let Some(dim) = x.first().map(Vec::len) else {
            return invalid("no examples");
        };
        if x.iter().any(|v| v.len() != dim) || x.len() != y.len() {
            return invalid("features of different lengths, or labels not one per example");
        }
        if classes < 2 || y.iter().any(|&c| c >= classes) {
            return invalid("labels must lie in 0..classes, with at least two classes");
        }
        let n = x.len() as f32;
        let mut mean = vec![0.0f32; dim];
        for v in x {
            for (m, a) in mean.iter_mut().zip(v) {
                *m += a / n;
            }
        }
        let mut scale = vec![0.0f32; dim];
        for v in x {
            for ((s, a), m) in scale.iter_mut().zip(v).zip(&mean) {
                *s += (a - m) * (a - m) / n;
            }
        }
        for s in &mut scale {
            *s = 1.0 / (s.sqrt() + 1e-6);
        }
        let mut probe = LinearProbe {
            classes,
            mean,
            scale,
            weights: vec![0.0; classes * dim],
            bias: vec![0.0; classes],
        };
        let z: Vec<Vec<f32>> = x.iter().map(|v| probe.standardise(v)).collect();
        let mut grad_w = vec![0.0f32; classes * dim];
        let mut grad_b = vec![0.0f32; classes];
        for _ in 0..fit.steps {
            grad_w.iter_mut().for_each(|g| *g = 0.0);
            grad_b.iter_mut().for_each(|g| *g = 0.0);
            for (v, &label) in z.iter().zip(y) {
                let p = probe.softmax(v);
                for c in 0..classes {
                    let d = (p[c] - f32::from(u8::from(c == label))) / n;
                    grad_b[c] += d;
                    for (g, a) in grad_w[c * dim..(c + 1) * dim].iter_mut().zip(v) {
                        *g += d * a;
                    }
                }
            }
            for (w, g) in probe.weights.iter_mut().zip(&grad_w) {
                *w -= fit.lr * (g + fit.l2 * *w);
            }
            for (b, g) in probe.bias.iter_mut().zip(&grad_b) {
                *b -= fit.lr * g;
            }
        }
        Ok(probe)
    }

    fn standardise(&self, v: &[f32]) -> Vec<f32> {
        v.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((a, m), s)| (a - m) * s)
            .collect()
    }

    /// Class probabilities of a standardised feature vector.
    fn softmax(&self, z: &[f32]) -> Vec<f32> {
        let dim = self.mean.len();
        let logits: Vec<f32> = (0..self.classes)
            .map(|c| {
                self.bias[c]
                    + self.weights[c * dim..(c + 1) * dim]
                        .iter()
                        .zip(z)
                        .map(|(w, a)| w * a)
                        .sum::<f32>()
            })
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = e.iter().sum();
        e.into_iter().map(|v| v / total).collect()
    }

    /// The most probable class of a feature vector (of the fitted length;
    /// extra or missing entries are ignored or taken as the mean).
    pub fn predict(&self, x: &[f32]) -> usize {
        let p = self.softmax(&self.standardise(x));
        (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// Fraction of `x` predicted as `y` (0 for no examples).
    pub fn accuracy(&self, x: &[Vec<f32>], y: &[usize]) -> f32 {
        if x.is_empty() {
            return 0.0;
        }
        let right = x
            .iter()
            .zip(y)
            .filter(|(v, c)| self.predict(v) == **c)
            .count();
        right as f32 / x.len() as f32
    }
}

/// The default held-out colour/shape pairs of the probe: the sampler's four
/// ([`DEFAULT_HELD_OUT`], never in the shapes captions) and two seen ones.
pub fn default_probe_held_out() -> Vec<(Colour, Shape)> {
    let mut v = DEFAULT_HELD_OUT.to_vec();
    v.extend([
        (Colour::Green, Shape::Diamond),
        (Colour::Orange, Shape::Cross),
    ]);
    v
}

/// Settings of [`probe_encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Captions the probe is fit on (two objects each).
    pub train_captions: usize,
    /// Captions it is scored on, each with one held-out pair.
    pub test_captions: usize,
    /// Colour/shape pairs only in the test captions.
    pub held_out: Vec<(Colour, Shape)>,
    /// Whether the captions phrase relations with synonyms ("over", "beneath").
    pub synonyms: bool,
    /// What is read for each object.
    pub feature: ProbeFeature,
    /// Token length the captions are encoded at.
    pub max_length: usize,
    /// Seed of the captions.
    pub seed: u64,
    /// The regression's fit.
    pub fit: ProbeFit,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            train_captions: 1500,
            test_captions: 500,
            held_out: default_probe_held_out(),
            synonyms: false,
            feature: ProbeFeature::Noun,
            max_length: 32,
            seed: 0,
            fit: ProbeFit::default(),
        }
    }
}

/// Held-out accuracy of the role and count probes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeReport {
    /// Role accuracy on the held-out captions' objects (chance 0.5 given the
    /// relation's axis, 0.25 without).
    pub role: f32,
    /// Count accuracy on the held-out captions' objects.
    pub count: f32,
    /// Accuracy of a two-class probe for the subject (first object) against
    /// the reference, on the held-out captions: word order alone, without
    /// what the relation word makes of it.
    pub subject: f32,
    /// Role accuracy on the objects the probe was fit on.
    pub role_fit: f32,
    /// Count accuracy on the objects the probe was fit on.
    pub count_fit: f32,
    /// Objects fit on.
    pub train_objects: usize,
    /// Objects scored.
    pub test_objects: usize,
}

/// Generates the probe's captions: `config.train_captions` without any
/// held-out pair, then `config.test_captions` whose subject or reference
/// (alternately) is a held-out pair.
///
/// # Errors
/// [`TrainError::InvalidConfig`] when no held-out pair is given or they
/// leave fewer than two pairs to fit on.
pub fn probe_captions(
    config: &ProbeConfig,
) -> Result<(Vec<RoleCaption>, Vec<RoleCaption>), TrainError> {
    let seen: Vec<(Colour, Shape)> = Colour::ALL
        .into_iter()
        .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
        .filter(|p| !config.held_out.contains(p))
        .collect();
    if config.held_out.is_empty() || seen.len() < 2 {
        return Err(TrainError::InvalidConfig(
            "the probe needs held-out pairs and at least two others".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let train = (0..config.train_captions)
        .map(|_| random_role_caption(&seen, &seen, config.synonyms, &mut rng))
        .collect::<Result<Vec<_>, _>>()?;
    let test = (0..config.test_captions)
        .map(|i| {
            if i % 2 == 0 {
                random_role_caption(&config.held_out, &seen, config.synonyms, &mut rng)
            } else {
                random_role_caption(&seen, &config.held_out, config.synonyms, &mut rng)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((train, test))
}

/// Each caption's two objects' features, in caption order.
///
/// # Errors
/// [`TrainError::Text`] if tokenizing fails; [`TrainError::InvalidConfig`]
/// if a caption does not tokenize to one token per word (the probe reads
/// word-level tokenizers such as the demo's) or is truncated.
pub fn object_features<B: Backend>(
    encoder: &T5Encoder<B>,
    tokenizer: &T5Tokenizer,
    captions: &[RoleCaption],
    feature: ProbeFeature,
    max_length: usize,
) -> Result<Vec<[Vec<f32>; 2]>, TrainError> {
    let device = encoder.shared.weight.device();
    let table = encoder.shared.weight.val();
    let [_, d] = table.dims();
    let mut out = Vec::with_capacity(captions.len());
    for chunk in captions.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|c| c.text.as_str()).collect();
        let tokens = tokenizer.encode(&texts, max_length)?;
        for (c, mask) in chunk.iter().zip(&tokens.attention_mask) {
            let real = mask.iter().filter(|&&m| m == 1).count();
            if real != c.text.split(' ').count() + 1 {
                return Err(TrainError::InvalidConfig(format!(
                    "probe: `{}` is {real} tokens, not one per word and `</s>` (a word-level tokenizer, max_length {max_length})",
                    c.text
                )));
            }
        }
        let (n, l) = (chunk.len(), max_length);
        let (ids, mask) = batch_tensors::<B>(&tokens, &device);
        let states: Tensor<B, 2> = match feature {
            ProbeFeature::BagOfWords => table.clone().select(0, ids.reshape([n * l])),
            ProbeFeature::Noun | ProbeFeature::Phrase => {
                encoder.forward(ids, mask).reshape([n * l, d])
            }
        };
        let states: Vec<f32> = states
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| DataError::Tensor {
                reason: format!("probe states: {e:?}"),
            })?;
        let row = |b: usize, t: usize| &states[(b * l + t) * d..(b * l + t + 1) * d];
        let mean_of = |b: usize, from: usize, to: usize| -> Vec<f32> {
            let k = (to - from) as f32;
            let mut m = vec![0.0f32; d];
            for t in from..to {
                for (a, v) in m.iter_mut().zip(row(b, t)) {
                    *a += v / k;
                }
            }
            m
        };
        for (b, c) in chunk.iter().enumerate() {
            let words = c.text.split(' ').count();
            let spans = [
                (c.objects[0].first, c.objects[0].noun),
                (c.objects[1].first, c.objects[1].noun),
            ];
            let one = |(first, noun): (usize, usize)| -> Vec<f32> {
                match feature {
                    ProbeFeature::Noun => row(b, noun).to_vec(),
                    ProbeFeature::Phrase => mean_of(b, first, noun + 1),
                    ProbeFeature::BagOfWords => {
                        let mut v = row(b, noun).to_vec();
                        v.extend(mean_of(b, 0, words + 1));
                        v
                    }
                }
            };
            out.push([one(spans[0]), one(spans[1])]);
        }
    }
    Ok(out)
}

/// Objects' features with their role and count classes.
#[derive(Default)]
struct Labelled {
    x: Vec<Vec<f32>>,
    roles: Vec<usize>,
    counts: Vec<usize>,
    subjects: Vec<usize>,
}

/// Fits the role and count probes on `encoder`'s features of
/// [`probe_captions`]' training captions and scores them on the held-out ones.
///
/// # Errors
/// As [`probe_captions`], [`object_features`] and [`LinearProbe::fit`].
pub fn probe_encoder<B: Backend>(
    encoder: &T5Encoder<B>,
    tokenizer: &T5Tokenizer,
    config: &ProbeConfig,
) -> Result<ProbeReport, TrainError> {
    let (train, test) = probe_captions(config)?;
    let flatten = |captions: &[RoleCaption]| -> Result<Labelled, TrainError> {
        let features = object_features(
            encoder,
            tokenizer,
            captions,
            config.feature,
            config.max_length,
        )?;
        let mut out = Labelled::default();
        for (c, pair) in captions.iter().zip(features) {
            for (k, (o, v)) in c.objects.iter().zip(pair).enumerate() {
                out.x.push(v);
                out.subjects.push(k);
                out.roles.push(o.role.index());
                out.counts.push(o.group.count.saturating_sub(1).min(3));
            }
        }
        Ok(out)
    };
    let Labelled {
        x,
        roles,
        counts,
        subjects,
    } = flatten(&train)?;
    let Labelled {
        x: xt,
        roles: roles_t,
        counts: counts_t,
        subjects: subjects_t,
    } = flatten(&test)?;
    let role_probe = LinearProbe::fit(&x, &roles, 4, &config.fit)?;
    let count_probe = LinearProbe::fit(&x, &counts, 4, &config.fit)?;
    let subject_probe = LinearProbe::fit(&x, &subjects, 2, &config.fit)?;
    Ok(ProbeReport {
        role: role_probe.accuracy(&xt, &roles_t),
        count: count_probe.accuracy(&xt, &counts_t),
        subject: subject_probe.accuracy(&xt, &subjects_t),
        role_fit: role_probe.accuracy(&x, &roles),
        count_fit: count_probe.accuracy(&x, &counts),
        train_objects: x.len(),
        test_objects: xt.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learnt_and_bad_input_refused() {
        // Four classes, each a direction plus noise in eight dimensions.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let c = i % 4;
            let v: Vec<f32> = (0..8)
                .map(|k| {
                    f32::from(u8::from(k == c))
                        + 0.2 * (((i * 7 + k * 13) % 11) as f32 / 11.0 - 0.5)
                })
                .collect();
            x.push(v);
            y.push(c);
        }
        let probe = LinearProbe::fit(&x, &y, 4, &ProbeFit::default()).unwrap();
        assert_eq!(probe.accuracy(&x, &y), 1.0);
        assert!(LinearProbe::fit(&[], &[], 4, &ProbeFit::default()).is_err());
        assert!(LinearProbe::fit(&x, &y, 3, &ProbeFit::default()).is_err());
        assert!(LinearProbe::fit(&x[..3], &y, 4, &ProbeFit::default()).is_err());
    }

    #[test]
    fn test_captions_hold_a_held_out_pair_and_training_captions_none() {
        let config = ProbeConfig {
            train_captions: 200,
            test_captions: 50,
            ..ProbeConfig::default()
        };
        let (train, test) = probe_captions(&config).unwrap();
        let pair =
            |o: &super::super::roles::CaptionObject| (o.group.colour.unwrap(), o.group.shape);
        assert!(train.iter().all(|c| {
            c.objects
                .iter()
                .all(|o| !config.held_out.contains(&pair(o)))
        }));
        assert!(
            test.iter()
                .all(|c| c.objects.iter().any(|o| config.held_out.contains(&pair(o))))
        );
    }
}
