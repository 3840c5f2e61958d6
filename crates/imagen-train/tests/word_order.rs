//! The word-order probe and the ordering objective on a tiny encoder: the
//! machinery runs end to end in seconds (issue 41).

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn_flex::Flex as DefaultBackend;
use imagen_shapes::{Colour, Shape};
use imagen_text::{T5Config, T5Tokenizer};
use imagen_train::text::{
    OrderObjective, PretrainConfig, ProbeConfig, ProbeFeature, ProbeFit, default_probe_held_out,
    pretrain_encoder, probe_captions, probe_encoder, write_word_tokenizer,
};

type B = Autodiff<DefaultBackend>;

fn tiny() -> (T5Tokenizer, T5Config, Vec<String>) {
    let config = ProbeConfig {
        train_captions: 300,
        test_captions: 100,
        synonyms: true,
        ..ProbeConfig::default()
    };
    let (train, test) = probe_captions(&config).unwrap();
    let mut captions: Vec<String> = train.into_iter().map(|c| c.text).collect();
    captions.extend(test.into_iter().map(|c| c.text));
    let dir = std::env::temp_dir().join(format!("imagen-word-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    let vocab = write_word_tokenizer(captions.iter().map(String::as_str), 1, &path).unwrap();
    let config = T5Config {
        vocab_size: vocab,
        d_model: 16,
        d_kv: 8,
        d_ff: 32,
        num_layers: 1,
        num_heads: 2,
        ..T5Config::t5_v1_1_small()
    };
    (T5Tokenizer::from_file(&path).unwrap(), config, captions)
}

#[test]
fn probe_and_ordering_objective_run_on_a_tiny_encoder() {
    let device = Default::default();
    let (tok, config, captions) = tiny();
    B::seed(&device, 0);
    let encoder = config.init::<B>(&device).unwrap();
    let pairs: Vec<(Colour, Shape)> = Colour::ALL
        .into_iter()
        .flat_map(|c| Shape::ALL.into_iter().map(move |s| (c, s)))
        .filter(|p| !default_probe_held_out().contains(p))
        .collect();
    let cfg = PretrainConfig {
        steps: 3,
        batch_size: 8,
        order: Some(OrderObjective {
            weight: 1.0,
            batch_size: 4,
            temperature: 0.1,
            synonyms: true,
            pairs,
        }),
        ..PretrainConfig::default()
    };
    let (encoder, history) = pretrain_encoder(encoder, &tok, &captions, &cfg, |_| {}).unwrap();
    assert_eq!(history.len(), 3);
    assert!(
        history
            .iter()
            .all(|s| s.order_loss.is_finite() && s.order_loss > 0.0)
    );
    for feature in [
        ProbeFeature::Noun,
        ProbeFeature::Phrase,
        ProbeFeature::BagOfWords,
    ] {
        let probe = ProbeConfig {
            train_captions: 60,
            test_captions: 20,
            synonyms: true,
            feature,
            fit: ProbeFit {
                steps: 50,
                ..ProbeFit::default()
            },
            ..ProbeConfig::default()
        };
        let r = probe_encoder(&encoder, &tok, &probe).unwrap();
        assert_eq!((r.train_objects, r.test_objects), (120, 40));
        for a in [r.role, r.count, r.role_fit, r.count_fit] {
            assert!((0.0..=1.0).contains(&a), "{feature:?}: {r:?}");
        }
    }
    // A caption longer than the token length is refused, not misread.
    let short = ProbeConfig {
        max_length: 4,
        train_captions: 4,
        test_captions: 2,
        ..ProbeConfig::default()
    };
    assert!(probe_encoder(&encoder, &tok, &short).is_err());
}
