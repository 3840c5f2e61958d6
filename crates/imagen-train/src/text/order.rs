//! An ordering objective for pre-training the text encoder: an object's
//! noun state should agree with the same object's state in a paraphrase and
//! differ from its state when the two objects are swapped.
//!
//! For "A above B" the paraphrase is "B below A" (or "B under A", "A on top
//! of B" when the anchor says "below", ...), the swap "B above A" and the
//! cross "A left of B" (a relation on the other axis). Each object's noun
//! state in the anchor is contrasted (cosine similarity over a temperature,
//! cross-entropy) with four candidates: the same object in the paraphrase
//! (the target: same object, same role), the other object in the
//! paraphrase (other object, other role), the same object in the swap
//! (same words, the opposite role) and in the cross (the other axis). Masked-token prediction never needs the last
//! distinction; this objective does, with text alone and no role labels.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use imagen_shapes::Relation;
use imagen_shapes::{Colour, Shape};
use imagen_text::{T5Encoder, T5Tokenizer, batch_tensors};
use rand::{Rng, RngExt};

/// Candidates each anchor object is contrasted with.
const CANDIDATES: usize = 4;

use super::roles::{random_role_caption, role_caption};
use crate::TrainError;

/// Settings of the ordering objective of [`pretrain_encoder`](super::pretrain_encoder).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderObjective {
    /// Weight of its loss beside the masked-token loss.
    pub weight: f64,
    /// Anchor captions per step (each brings a paraphrase, a swap and a cross).
    pub batch_size: usize,
    /// Temperature the cosine similarities are divided by.
    pub temperature: f64,
    /// Whether the captions phrase relations with synonyms.
    pub synonyms: bool,
    /// Colour/shape pairs the captions draw from (leave out a probe's
    /// held-out pairs to keep its test fair).
    pub pairs: Vec<(Colour, Shape)>,
}

/// One step's captions (anchors, paraphrases, swaps, crosses) and the rows
/// of the flattened `[4 * batch * max_length, d]` states to contrast.
pub(crate) struct OrderBatch {
    pub(crate) texts: Vec<String>,
    /// One row per anchor object.
    pub(crate) anchors: Vec<i64>,
    /// [`CANDIDATES`] rows per anchor object: target first.
    pub(crate) candidates: Vec<i64>,
}

pub(crate) fn order_batch<R: Rng + ?Sized>(
    objective: &OrderObjective,
    max_length: usize,
    rng: &mut R,
) -> Result<OrderBatch, TrainError> {
    let b = objective.batch_size;
    let mut texts: [Vec<String>; 4] = Default::default();
    let (mut anchors, mut candidates) = (Vec::new(), Vec::new());
    let row = |caption: usize, word: usize| (caption * max_length + word) as i64;
    for i in 0..b {
        let pairs = &objective.pairs;
        let a = random_role_caption(pairs, pairs, objective.synonyms, rng)?;
        let [s, r] = a.objects;
        // Paraphrase: the reference first, the inverse relation.
        let p = role_caption(
            r.group,
            a.relation.inverse(),
            s.group,
            objective.synonyms,
            rng,
        )?;
        // Swap: the reference first, the same relation.
        let w = role_caption(r.group, a.relation, s.group, objective.synonyms, rng)?;
        // Cross: the same order, a relation on the other axis.
        let other_axis = match a.relation {
            Relation::Above | Relation::Below => [Relation::LeftOf, Relation::RightOf],
            _ => [Relation::Above, Relation::Below],
        };
        let x = role_caption(
            s.group,
            other_axis[rng.random_range(0..2)],
            r.group,
            objective.synonyms,
            rng,
        )?;
        // Subject: same in paraphrase = p's second object; other = p's
        // first; swapped = w's second; cross = x's first.
        anchors.push(row(i, s.noun));
        candidates.extend([
            row(b + i, p.objects[1].noun),
            row(b + i, p.objects[0].noun),
            row(2 * b + i, w.objects[1].noun),
            row(3 * b + i, x.objects[0].noun),
        ]);
        anchors.push(row(i, r.noun));
        candidates.extend([
            row(b + i, p.objects[0].noun),
            row(b + i, p.objects[1].noun),
            row(2 * b + i, w.objects[0].noun),
            row(3 * b + i, x.objects[1].noun),
        ]);
        for (list, c) in texts.iter_mut().zip([a.text, p.text, w.text, x.text]) {
            list.push(c);
        }
    }
    Ok(OrderBatch {
        texts: texts.concat(),
        anchors,
        candidates,
    })
}

/// The ordering loss of a batch and the fraction of anchor objects whose
/// target is the most similar candidate.
pub(crate) fn order_loss<B: Backend>(
    encoder: &T5Encoder<B>,
    tokenizer: &T5Tokenizer,
    batch: &OrderBatch,
    max_length: usize,
    temperature: f64,
) -> Result<(Tensor<B, 1>, f32), TrainError> {
    let device = encoder.shared.weight.device();
    let refs: Vec<&str> = batch.texts.iter().map(String::as_str).collect();
    let tokens = tokenizer.encode(&refs, max_length)?;
    let (n, l) = (refs.len(), max_length);
    let (ids, mask) = batch_tensors::<B>(&tokens, &device);
    let hidden = encoder.forward(ids, mask);
    let d = hidden.dims()[2];
    let flat = hidden.reshape([n * l, d]);
    let norm = flat
        .clone()
        .powi_scalar(2)
        .sum_dim(1)
        .add_scalar(1e-6)
        .sqrt();
    let unit = flat / norm;
    let k = batch.anchors.len();
    let pick = |rows: &[i64]| {
        let idx =
            Tensor::<B, 1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), &device);
        unit.clone().select(0, idx)
    };
    let a = pick(&batch.anchors).reshape([k, 1, d]);
    let c = pick(&batch.candidates).reshape([k, CANDIDATES, d]);
    let sims = (c * a)
        .sum_dim(2)
        .reshape([k, CANDIDATES])
        .div_scalar(temperature);
    let target = sims.clone().slice([0..k, 0..1]);
    let best = sims.clone().max_dim(1);
    let accuracy = target
        .clone()
        .greater_equal(best)
        .float()
        .mean()
        .into_scalar()
        .elem::<f32>();
    let loss = -log_softmax(sims, 1).slice([0..k, 0..1]).mean();
    Ok((loss, accuracy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn candidates_point_at_the_same_and_other_objects() {
        let pairs: Vec<(Colour, Shape)> = Colour::ALL
            .into_iter()
            .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
            .collect();
        let objective = OrderObjective {
            weight: 1.0,
            batch_size: 8,
            temperature: 0.1,
            synonyms: true,
            pairs,
        };
        let l = 32;
        let batch = order_batch(&objective, l, &mut StdRng::seed_from_u64(1)).unwrap();
        let word = |row: i64| {
            let (c, w) = (row as usize / l, row as usize % l);
            batch.texts[c].split(' ').nth(w).unwrap().to_string()
        };
        assert_eq!(batch.texts.len(), 32);
        for (i, &a) in batch.anchors.iter().enumerate() {
            let c = &batch.candidates[4 * i..4 * i + 4];
            // The anchor's noun reappears as the target, in the swap and the cross.
            assert_eq!(word(a), word(c[0]));
            assert_eq!(word(a), word(c[2]));
            assert_eq!(word(a), word(c[3]));
            let caption = |row: i64| row as usize / l;
            assert!(caption(a) < 8 && (8..16).contains(&caption(c[0])));
            assert!((16..24).contains(&caption(c[2])) && caption(c[3]) >= 24);
        }
    }
}
