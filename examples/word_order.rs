//! Word-order checks of the demo cascade (issue 41): does the frozen text
//! encoder say which object is the subject of "above", and does the base
//! U-Net draw it there?
//!
//! ```text
//! # Linear probe of the encoder's states: role (upper/lower/left/right)
//! # and count of each object, on captions with held-out colour/shape pairs,
//! # against an order-blind bag-of-words baseline.
//! cargo run --release --example word_order -- probe --text-encoder models/demo/text_encoder
//! # Swap test: relation prompts in both orders, base stage, several seeds;
//! # margin = P(image follows its prompt's order) - P(follows the swap).
//! cargo run --release --example word_order -- swap --model-dir models/demo --pairs 20 --seeds 4
//! ```

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use imagen::pipeline::{Cascade, GenerateRequest, tensor_to_images};
use imagen::shapes::{
    SwapTally, contact_sheet, detect, relation_order, swap_prompts, write_caption,
};
use imagen::text::TextEncoder;
use imagen::train::text::{ProbeConfig, ProbeFeature, probe_encoder};
use imagen::{DefaultBackend, default_device};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[derive(Clone, Copy, ValueEnum)]
enum Feature {
    Noun,
    Phrase,
    Bow,
}

#[derive(Subcommand)]
enum Command {
    /// Linear probe of the frozen encoder's token states.
    Probe {
        /// The text encoder directory (config.json, model.safetensors, tokenizer.json).
        #[arg(long, default_value = "models/demo/text_encoder")]
        text_encoder: PathBuf,
        /// Features to probe (default: all three).
        #[arg(long, value_enum)]
        feature: Vec<Feature>,
        /// Phrase relations with synonyms (over, beneath, on top of...).
        #[arg(long)]
        synonyms: bool,
        /// Captions fit on.
        #[arg(long, default_value_t = 1500)]
        train: usize,
        /// Held-out captions scored.
        #[arg(long, default_value_t = 500)]
        test: usize,
        /// Token length (the demo cascade encodes prompts at 40).
        #[arg(long, default_value_t = 40)]
        max_length: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Swap test of the base stage.
    Swap {
        #[arg(long, default_value = "models/demo")]
        model_dir: PathBuf,
        /// Prompt pairs (each drawn in both orders).
        #[arg(long, default_value_t = 20)]
        pairs: usize,
        /// Sampling seeds per prompt.
        #[arg(long, default_value_t = 4)]
        seeds: u64,
        /// Prompts per sampling batch.
        #[arg(long, default_value_t = 10)]
        batch: usize,
        /// Where to write the contact sheet (optional).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Parser)]
#[command(about = "Word-order probe and swap test (issue 41)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    imagen::tune_allocator();
    let device = default_device();
    match Args::parse().command {
        Command::Probe {
            text_encoder,
            feature,
            synonyms,
            train,
            test,
            max_length,
            seed,
        } => {
            let encoder = TextEncoder::<DefaultBackend>::from_dir(&text_encoder, &device)?;
            let features = if feature.is_empty() {
                vec![Feature::Noun, Feature::Phrase, Feature::Bow]
            } else {
                feature
            };
            println!(
                "| feature | role (held-out) | count (held-out) | subject or reference (held-out) | role (fit) | count (fit) | objects fit / scored |"
            );
            println!("|---|---|---|---|---|---|---|");
            for f in features {
                let (name, feature) = match f {
                    Feature::Noun => ("noun state", ProbeFeature::Noun),
                    Feature::Phrase => ("phrase mean state", ProbeFeature::Phrase),
                    Feature::Bow => ("bag of words (static)", ProbeFeature::BagOfWords),
                };
                let start = Instant::now();
                let config = ProbeConfig {
                    train_captions: train,
                    test_captions: test,
                    synonyms,
                    feature,
                    max_length,
                    seed,
                    ..ProbeConfig::default()
                };
                let r = probe_encoder(encoder.model(), encoder.tokenizer(), &config)?;
                println!(
                    "| {name} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {} / {} | ({:.1?})",
                    100.0 * r.role,
                    100.0 * r.count,
                    100.0 * r.subject,
                    100.0 * r.role_fit,
                    100.0 * r.count_fit,
                    r.train_objects,
                    r.test_objects,
                    start.elapsed()
                );
            }
        }
        Command::Swap {
            model_dir,
            pairs,
            seeds,
            batch,
            out,
        } => {
            let cascade = Cascade::<DefaultBackend>::load(&model_dir, &device)?;
            let mut rng = StdRng::seed_from_u64(0);
            let mut prompts = Vec::new();
            for [a, b] in swap_prompts(pairs, 0) {
                prompts.push((write_caption(&a, &mut rng)?, a));
                prompts.push((write_caption(&b, &mut rng)?, b));
            }
            let start = Instant::now();
            let mut tally = SwapTally::default();
            let mut images = Vec::new();
            for seed in 0..seeds {
                let mut seed_tally = SwapTally::default();
                for (i, chunk) in prompts.chunks(batch.max(1)).enumerate() {
                    let mut req = GenerateRequest::batch(chunk.iter().map(|p| p.0.clone()))
                        .seed(1000 * seed + i as u64);
                    req.stop_after = Some(0);
                    let out = cascade.run(&req, &mut |_| {})?;
                    let Some(base) = out.outputs.into_iter().next() else {
                        continue;
                    };
                    for (img, (_, c)) in tensor_to_images(base)?.into_iter().zip(chunk) {
                        let v = relation_order(&detect(&img), c);
                        seed_tally.add(v);
                        tally.add(v);
                        images.push(img);
                    }
                }
                println!(
                    "seed {seed}: follows {} swapped {} neither {} of {}: margin {:.3} ({:.1?})",
                    seed_tally.follows,
                    seed_tally.swapped,
                    seed_tally.neither,
                    seed_tally.total(),
                    seed_tally.margin(),
                    start.elapsed()
                );
            }
            println!(
                "{} prompts x {seeds} seeds: follows {} ({:.1} %), swapped {} ({:.1} %), neither {}: swap margin {:.3}; {:.1?}",
                prompts.len(),
                tally.follows,
                100.0 * tally.follows as f64 / tally.total().max(1) as f64,
                tally.swapped,
                100.0 * tally.swapped as f64 / tally.total().max(1) as f64,
                tally.neither,
                tally.margin(),
                start.elapsed()
            );
            if let Some(dir) = out {
                std::fs::create_dir_all(&dir)?;
                if let Some(first) = images.first() {
                    contact_sheet(&images, 20, first.width(), 2)
                        .save(dir.join("swap-sheet.png"))?;
                }
                let list: Vec<String> = prompts.iter().map(|p| p.0.clone()).collect();
                std::fs::write(dir.join("prompts.txt"), list.join("\n") + "\n")?;
            }
        }
    }
    Ok(())
}
