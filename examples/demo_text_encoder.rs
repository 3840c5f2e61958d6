//! Builds the demo cascade's text encoder: a word-level tokenizer learnt from
//! the shapes captions and a small T5 v1.1 encoder, optionally pre-trained
//! by masked-token prediction on the same captions, then frozen.
//!
//! ```text
//! cargo run --release --example demo_text_encoder -- --out runs/text --pretrain-steps 3000
//! ```
//! Prints how strongly the encoder separates captions that differ only in
//! which colour goes with which shape ("binding"), before and after
//! pre-training: the ratio of the state distance for a colour swap to the
//! distance for replacing both colours (0 = a bag of words, 1 = as distinct
//! as different words).
//!
//! Issue 41's word-order rounds add relation captions phrased with synonyms
//! to the corpus and an ordering objective (paraphrases agree, swaps
//! differ), and print the word-order probe (`word_order probe`) at the end:
//!
//! ```text
//! cargo run --release --example demo_text_encoder -- --out runs/text-order \
//!     --role-captions 20000 --synonyms --order-weight 1 --order-batch 16 --pretrain-steps 600
//! ```

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, ElementConversion, Int, Tensor, TensorData};
use clap::Parser;
use imagen::shapes::{Colour, SamplerConfig, SceneSampler, Shape};
use imagen::text::{T5Config, T5Encoder, T5Tokenizer};
use imagen::train::text::{
    OrderObjective, PretrainConfig, ProbeConfig, default_probe_held_out, pretrain_encoder,
    probe_encoder, random_role_caption, write_word_tokenizer,
};
use imagen::{DefaultBackend, default_device};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[derive(Parser)]
#[command(about = "Build the demo T5 encoder and its tokenizer")]
struct Args {
    /// Output directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// Captions drawn for the tokenizer and pre-training.
    #[arg(long, default_value_t = 50_000)]
    captions: usize,
    /// Width of the encoder.
    #[arg(long, default_value_t = 128)]
    d_model: usize,
    /// Encoder blocks.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Attention heads (of width d_model / heads).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Feed-forward width.
    #[arg(long, default_value_t = 256)]
    d_ff: usize,
    /// Masked-token pre-training steps (0: keep the random initialisation).
    #[arg(long, default_value_t = 3000)]
    pretrain_steps: usize,
    /// Captions per pre-training step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Peak pre-training learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Token length.
    #[arg(long, default_value_t = 32)]
    max_length: usize,
    /// Seed of captions, weights and masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Two-object relation captions added to the corpus (none of the probe's
    /// held-out colour/shape pairs).
    #[arg(long, default_value_t = 0)]
    role_captions: usize,
    /// Phrase those captions (and the ordering objective's) with synonyms:
    /// over, under, beneath, on top of, left of, placed.
    #[arg(long)]
    synonyms: bool,
    /// Weight of the ordering objective (0: masked tokens only).
    #[arg(long, default_value_t = 0.0)]
    order_weight: f64,
    /// Anchor captions per step of the ordering objective.
    #[arg(long, default_value_t = 32)]
    order_batch: usize,
    /// Temperature of the ordering objective.
    #[arg(long, default_value_t = 0.1)]
    order_temperature: f64,
}

/// Mean squared distance of the real-token states of `a` and `b` (same length).
fn distance<B: Backend>(
    encoder: &T5Encoder<B>,
    tok: &T5Tokenizer,
    a: &[String],
    b: &[String],
    l: usize,
    device: &B::Device,
) -> Result<f32, Box<dyn std::error::Error>> {
    let run = |texts: &[String]| -> Result<Tensor<B, 3>, Box<dyn std::error::Error>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let t = tok.encode(&refs, l)?;
        let n = texts.len();
        let ids: Vec<i64> = t.input_ids.concat().into_iter().map(i64::from).collect();
        let mask: Vec<bool> = t
            .attention_mask
            .concat()
            .into_iter()
            .map(|m| m == 1)
            .collect();
        Ok(encoder.forward(
            Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [n * l]), device).reshape([n, l]),
            Tensor::<B, 1, Bool>::from_data(TensorData::new(mask, [n * l]), device).reshape([n, l]),
        ))
    };
    let d = (run(a)? - run(b)?).powi_scalar(2).sum_dim(2).sqrt();
    Ok(d.mean().into_scalar().elem::<f32>())
}

/// (caption, colours swapped, both colours replaced) for captions naming two colours.
fn binding_probes(captions: &[String]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut orig, mut swapped, mut replaced) = (Vec::new(), Vec::new(), Vec::new());
    for c in captions {
        let words: Vec<&str> = c.split(' ').collect();
        let colours: Vec<usize> = (0..words.len())
            .filter(|&i| Colour::from_name(words[i].trim_matches(',')).is_some())
            .collect();
        let [i, j] = colours[..] else { continue };
        if words[i] == words[j] || words[i].contains(',') || words[j].contains(',') {
            continue;
        }
        let others: Vec<&str> = Colour::ALL
            .iter()
            .map(|c| c.name())
            .filter(|n| *n != words[i] && *n != words[j])
            .collect();
        let mut s = words.clone();
        s.swap(i, j);
        let mut r = words.clone();
        r[i] = others[orig.len() % others.len()];
        r[j] = others[(orig.len() + 1) % others.len()];
        orig.push(c.clone());
        swapped.push(s.join(" "));
        replaced.push(r.join(" "));
        if orig.len() == 256 {
            break;
        }
    }
    (orig, swapped, replaced)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let args = Args::parse();
    let device = default_device();
    std::fs::create_dir_all(&args.out)?;
    let mut sampler = SceneSampler::new(SamplerConfig::default(), args.seed)?;
    let mut captions: Vec<String> = (0..args.captions)
        .map(|_| sampler.sample_captioned().1)
        .collect();
    let held_out = default_probe_held_out();
    let pairs: Vec<(Colour, Shape)> = Colour::ALL
        .into_iter()
        .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
        .filter(|p| !held_out.contains(p))
        .collect();
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x41);
    for _ in 0..args.role_captions {
        captions.push(random_role_caption(&pairs, &pairs, args.synonyms, &mut rng)?.text);
    }
    // Mixed in, so that the binding probes below still see sampler captions
    // (without role captions the corpus stays as it was, byte for byte).
    if args.role_captions > 0 {
        for i in (1..captions.len()).rev() {
            captions.swap(i, rng.random_range(0..=i));
        }
    }
    let tokenizer_path = args.out.join("tokenizer.json");
    let vocab = write_word_tokenizer(captions.iter().map(String::as_str), 1, &tokenizer_path)?;
    let tok = T5Tokenizer::from_file(&tokenizer_path)?;
    let longest = captions
        .iter()
        .map(|c| {
            tok.inner()
                .encode(c.as_str(), true)
                .map(|e| e.len())
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    println!(
        "tokenizer: {vocab} tokens from {} captions, longest caption {longest} tokens",
        captions.len()
    );

    let config = T5Config {
        vocab_size: vocab,
        d_model: args.d_model,
        d_kv: args.d_model / args.heads,
        d_ff: args.d_ff,
        num_layers: args.layers,
        num_heads: args.heads,
        ..T5Config::t5_v1_1_small()
    };
    type Train = Autodiff<DefaultBackend>;
    Train::seed(&device, args.seed);
    let encoder = config.init::<Train>(&device)?;
    let probes = binding_probes(&captions[captions.len() / 2..]);
    let probe = |e: &T5Encoder<DefaultBackend>| -> Result<f32, Box<dyn std::error::Error>> {
        let swap = distance(e, &tok, &probes.0, &probes.1, args.max_length, &device)?;
        let replace = distance(e, &tok, &probes.0, &probes.2, args.max_length, &device)?;
        Ok(swap / replace)
    };
    let random = probe(&burn::module::AutodiffModule::valid(&encoder))?;
    println!(
        "binding ratio over {} two-colour captions, random initialisation: {random:.3}",
        probes.0.len()
    );
    let encoder = if args.pretrain_steps > 0 {
        let cfg = PretrainConfig {
            steps: args.pretrain_steps,
            batch_size: args.batch,
            lr: args.lr,
            max_length: args.max_length,
            seed: args.seed,
            order: (args.order_weight > 0.0).then(|| OrderObjective {
                weight: args.order_weight,
                batch_size: args.order_batch,
                temperature: args.order_temperature,
                synonyms: args.synonyms,
                pairs: pairs.clone(),
            }),
            ..PretrainConfig::default()
        };
        let start = std::time::Instant::now();
        let (encoder, history) = pretrain_encoder(encoder, &tok, &captions, &cfg, |s| {
            if s.step % 200 == 0 || s.step + 1 == args.pretrain_steps {
                println!(
                    "step {:5} loss {:.3} masked-token accuracy {:.3} order loss {:.3} accuracy {:.3}",
                    s.step, s.loss, s.accuracy, s.order_loss, s.order_accuracy
                );
            }
        })?;
        let tail = &history[history.len().saturating_sub(100)..];
        let acc = tail.iter().map(|s| s.accuracy).sum::<f32>() / tail.len() as f32;
        println!(
            "pre-trained {} steps in {:.1?}; masked-token accuracy (last 100 steps) {acc:.3}",
            args.pretrain_steps,
            start.elapsed()
        );
        let trained = probe(&encoder)?;
        println!("binding ratio after pre-training: {trained:.3} (random: {random:.3})");
        encoder
    } else {
        burn::module::AutodiffModule::valid(&encoder)
    };
    for synonyms in [false, true] {
        let r = probe_encoder(
            &encoder,
            &tok,
            &ProbeConfig {
                synonyms,
                max_length: args.max_length,
                ..ProbeConfig::default()
            },
        )?;
        println!(
            "word-order probe ({} phrasing), noun states: role {:.1} %, count {:.1} % (held-out pairs)",
            if synonyms { "synonym" } else { "grammar" },
            100.0 * r.role,
            100.0 * r.count
        );
    }
    encoder.save_dir(&config, &args.out, None)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
