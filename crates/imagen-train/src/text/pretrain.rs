//! Brief masked-token pre-training of a T5 encoder on a caption corpus.
//!
//! Imagen's text encoder is a language model pre-trained on text alone and
//! frozen; the demo cascade imitates that at its own scale. T5 pre-trains
//! with span corruption and a decoder; our encoder has no decoder, so spans
//! are single tokens, replaced by the sentinel `<extra_id_0>` and predicted
//! at their own positions through the tied embedding (logits
//! `h · E^T / sqrt(d_model)`, as T5 with tied embeddings scales them).

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use imagen_text::{T5Encoder, T5Tokenizer};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::order::{OrderObjective, order_batch, order_loss};
use super::tokenizer::SPECIAL_TOKENS;
use crate::TrainError;

/// Settings of [`pretrain_encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Captions per step.
    pub batch_size: usize,
    /// Peak learning rate (linear warm-up over the first tenth, then linear decay).
    pub lr: f64,
    /// Probability that a word token is masked (at least one per caption).
    pub mask_prob: f64,
    /// Token length of each caption (padded / truncated).
    pub max_length: usize,
    /// Seed of the batch order and the masks.
    pub seed: u64,
    /// An ordering objective trained beside the masked tokens (none by default).
    pub order: Option<OrderObjective>,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            batch_size: 64,
            lr: 1e-3,
            mask_prob: 0.15,
            max_length: 32,
            seed: 0,
            order: None,
        }
    }
}

/// Loss and accuracy on the masked tokens of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainStep {
    /// The step, from 0.
    pub step: usize,
    /// Mean cross-entropy over masked tokens.
    pub loss: f32,
    /// Fraction of masked tokens predicted exactly.
    pub accuracy: f32,
    /// The ordering objective's loss (0 without one).
    pub order_loss: f32,
    /// Fraction of objects whose paraphrase is the nearest candidate (0 without one).
    pub order_accuracy: f32,
}

/// One batch: corrupted ids, attention mask, targets, and which positions
/// were masked.
struct Masked {
    ids: Vec<i64>,
    attention: Vec<bool>,
    targets: Vec<i64>,
    masked: Vec<f32>,
}

fn mask_batch(batch: &imagen_text::TokenBatch, sentinel: u32, p: f64, rng: &mut StdRng) -> Masked {
    let mut out = Masked {
        ids: Vec::new(),
        attention: Vec::new(),
        targets: Vec::new(),
        masked: Vec::new(),
    };
    for (ids, mask) in batch.input_ids.iter().zip(&batch.attention_mask) {
        // Word tokens: real, and not the special tokens (ids below the sentinel's).
        let words: Vec<usize> = (0..ids.len())
            .filter(|&i| mask[i] == 1 && ids[i] > sentinel)
            .collect();
        let mut chosen: Vec<bool> = words.iter().map(|_| rng.random::<f64>() < p).collect();
        if !words.is_empty() && !chosen.contains(&true) {
            let at = rng.random_range(0..words.len());
            chosen[at] = true;
        }
        let mut row_masked = vec![0.0; ids.len()];
        for (&i, &c) in words.iter().zip(&chosen) {
            if c {
                row_masked[i] = 1.0;
            }
        }
        for (i, (&id, &m)) in ids.iter().zip(mask).enumerate() {
            out.targets.push(i64::from(id));
            out.ids
                .push(i64::from(if row_masked[i] > 0.0 { sentinel } else { id }));
            out.attention.push(m == 1);
        }
        out.masked.extend(row_masked);
    }
    out
}

/// Pre-trains `encoder` on `captions` by masked-token prediction and
/// returns it with one [`PretrainStep`] per step (also passed to `on_step`).
///
/// # Errors
/// [`TrainError::InvalidConfig`] for an empty corpus, zero steps or batch,
/// a mask probability outside `(0, 1]`, a tokenizer without
/// `<extra_id_0>`, or an ordering objective with no batch, a temperature
/// that is not positive, or fewer than two colour/shape pairs; [`TrainError::Text`] if tokenizing fails;
/// [`TrainError::NonFinite`] if the loss diverges.
pub fn pretrain_encoder<B: AutodiffBackend>(
    mut encoder: T5Encoder<B>,
    tokenizer: &T5Tokenizer,
    captions: &[String],
    config: &PretrainConfig,
    mut on_step: impl FnMut(&PretrainStep),
) -> Result<(T5Encoder<B::InnerBackend>, Vec<PretrainStep>), TrainError> {
    let invalid = |s: &str| Err(TrainError::InvalidConfig(s.into()));
    if captions.is_empty() {
        return invalid("pre-training needs captions");
    }
    if config.steps == 0 || config.batch_size == 0 {
        return invalid("pre-training needs steps and a batch size above zero");
    }
    if !(config.mask_prob > 0.0 && config.mask_prob <= 1.0) {
        return invalid("mask_prob must lie in (0, 1]");
    }
    let Some(sentinel) = tokenizer.inner().token_to_id(SPECIAL_TOKENS[3]) else {
        return invalid("the tokenizer has no `<extra_id_0>` sentinel");
    };
    if let Some(o) = &config.order
        && (o.batch_size == 0
            || o.temperature.is_nan()
            || o.temperature <= 0.0
            || o.pairs.len() < 2)
    {
        return invalid(
            "the ordering objective needs a batch, a positive temperature and two colour/shape pairs",
        );
    }
    let device = encoder.shared.weight.device();
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (b, l) = (config.batch_size, config.max_length);
    let mut history = Vec::with_capacity(config.steps);
    let warmup = (config.steps / 10).max(1);
    for step in 0..config.steps {
        let chosen: Vec<&str> = (0..b)
            .map(|_| captions[rng.random_range(0..captions.len())].as_str())
            .collect();
        let tokens = tokenizer.encode(&chosen, l)?;
        let m = mask_batch(&tokens, sentinel, config.mask_prob, &mut rng);
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(m.ids, [b * l]), &device)
            .reshape([b, l]);
        let attention = Tensor::<B, 1, burn::tensor::Bool>::from_data(
            TensorData::new(m.attention, [b * l]),
            &device,
        )
        .reshape([b, l]);
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(m.targets, [b * l]), &device)
            .reshape([b * l, 1]);
        let masked = Tensor::<B, 1>::from_data(TensorData::new(m.masked, [b * l]), &device)
            .reshape([b * l, 1]);

        let hidden = encoder.forward(ids, attention);
        let d = hidden.dims()[2];
        let table = encoder.shared.weight.val();
        let logits = hidden
            .reshape([b * l, d])
            .matmul(table.transpose())
            .mul_scalar((d as f64).powf(-0.5));
        let log_p = log_softmax(logits.clone(), 1);
        let picked = log_p.gather(1, targets.clone());
        let count = masked.clone().sum();
        let loss = -(picked * masked.clone()).sum() / count.clone();
        let correct = logits.argmax(1).equal(targets).float() * masked;
        let accuracy = (correct.sum() / count).into_scalar().elem::<f32>();
        let loss_value = loss.clone().into_scalar().elem::<f32>();
        let (loss, order_value, order_accuracy) = match &config.order {
            Some(o) => {
                let batch = order_batch(o, l, &mut rng)?;
                let (extra, acc) = order_loss(&encoder, tokenizer, &batch, l, o.temperature)?;
                let v = extra.clone().into_scalar().elem::<f32>();
                (loss + extra.mul_scalar(o.weight), v, acc)
            }
            None => (loss, 0.0, 0.0),
        };
        if !(loss_value.is_finite() && order_value.is_finite()) {
            return Err(TrainError::NonFinite { step });
        }
        let lr = config.lr
            * if step < warmup {
                (step + 1) as f64 / warmup as f64
            } else {
                (config.steps - step) as f64 / (config.steps - warmup) as f64
            };
        let grads = GradientsParams::from_grads(loss.backward(), &encoder);
        encoder = optim.step(lr, encoder, grads);
        let report = PretrainStep {
            step,
            loss: loss_value,
            accuracy,
            order_loss: order_value,
            order_accuracy,
        };
        on_step(&report);
        history.push(report);
    }
    Ok((encoder.valid(), history))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_words_and_at_least_one() {
        let batch = imagen_text::TokenBatch {
            input_ids: vec![vec![7, 8, 9, 1, 0, 0]],
            attention_mask: vec![vec![1, 1, 1, 1, 0, 0]],
            truncated: vec![],
            unknown: vec![],
        };
        let mut rng = StdRng::seed_from_u64(0);
        for _ in 0..50 {
            let m = mask_batch(&batch, 3, 0.01, &mut rng);
            let n: f32 = m.masked.iter().sum();
            assert!(n >= 1.0);
            assert_eq!(&m.masked[3..], &[0.0, 0.0, 0.0]);
            assert_eq!(m.targets, [7, 8, 9, 1, 0, 0]);
            for i in 0..3 {
                assert_eq!(m.ids[i] == 3, m.masked[i] == 1.0);
            }
        }
    }
}
