//! The U-Net runs under the samplers (as an `imagen-diffusion` Denoiser) and
//! trains (gradients reach every parameter under `Autodiff`).

use crate::common;

use common::fixtures;

use burn::backend::Autodiff;
use burn::tensor::{Distribution, Tensor, TensorData};
use burn_flex::Flex;
use imagen_diffusion::{
    DdpmScheduler, Denoiser, NoiseSource, SampleOptions, SchedulerConfig, SeededNoise, sample,
};
use imagen_unet::{UNet, UNetCond, UNetConfig};

#[test]
fn if_stage1_unet_samples_with_guidance() {
    let device = Default::default();
    let unet = UNet::<Flex>::from_dir(fixtures().join("if_stage1_tiny"), &device).unwrap();
    let config: SchedulerConfig = serde_json::from_str(
        r#"{"beta_schedule": "squaredcos_cap_v2", "variance_type": "learned_range",
            "thresholding": true, "dynamic_thresholding_ratio": 0.95, "sample_max_value": 1.5}"#,
    )
    .unwrap();
    let mut scheduler = DdpmScheduler::new(&config).unwrap();
    scheduler.set_timesteps(4).unwrap();
    let cond = UNetCond {
        text: Tensor::random([2, 7, 40], Distribution::Normal(0.0, 1.0), &device),
        text_mask: None,
        lowres: None,
        noise_level: None,
    };
    let mut noise = SeededNoise::new(3);
    let x = NoiseSource::<Flex>::gaussian(&mut noise, [1, 3, 16, 16], &device);
    let options = SampleOptions {
        guidance_scale: Some(7.0),
        ..Default::default()
    };
    let out = sample(
        &unet,
        &mut scheduler,
        x,
        &cond,
        options,
        &mut noise,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(out.dims(), [1, 3, 16, 16]);
}

/// Outside a guidance interval the sampler runs the conditional rows only;
/// they must give what the doubled batch gives for them. Tolerance 1e-5
/// (the same kernels on half the rows).
#[test]
fn conditional_half_alone_equals_the_doubled_batch_second_half() {
    let device = Default::default();
    let unet = UNet::<Flex>::from_dir(fixtures().join("if_stage2_tiny"), &device).unwrap();
    let normal = Distribution::Normal(0.0, 1.0);
    let cond = UNetCond {
        text: Tensor::random([4, 5, 40], normal, &device),
        // Row i attends to its first 2 + i tokens.
        text_mask: Some(Tensor::from_data(
            TensorData::new(
                (0..20).map(|k| k % 5 < 2 + k / 5).collect::<Vec<_>>(),
                [4, 5],
            ),
            &device,
        )),
        lowres: Some(Tensor::random([4, 3, 16, 16], normal, &device)),
        noise_level: Some(vec![250.0, 100.0, 250.0, 100.0]),
    };
    let x = Tensor::<Flex, 4>::random([2, 3, 16, 16], normal, &device);
    let doubled = unet.predict(Tensor::cat(vec![x.clone(), x.clone()], 0), 10, &cond);
    let alone = unet.predict_conditional(x, 10, &cond);
    let expected = doubled.narrow(0, 2, 2);
    let diff: f32 = (alone - expected).abs().max().into_scalar();
    assert!(diff < 1e-5, "max difference {diff}");
}

#[test]
fn gradients_reach_every_part_of_the_network() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let config = UNetConfig::from_file(fixtures().join("if_stage2_tiny/config.json")).unwrap();
    let unet = config.init::<B>(&device).unwrap();
    let x = Tensor::<B, 4>::random([1, 6, 16, 8], Distribution::Normal(0.0, 1.0), &device);
    let text = Tensor::<B, 3>::random([1, 5, 40], Distribution::Normal(0.0, 1.0), &device);
    let loss = unet
        .forward(x, &[10.0], text, None, Some(&[250.0]))
        .powi_scalar(2)
        .mean();
    let grads = loss.backward();
    let norm = |g: Option<Tensor<Flex, 2>>, what: &str| {
        let g = g.unwrap_or_else(|| panic!("{what}: no gradient"));
        let n: f32 = g.abs().sum().into_scalar();
        assert!(n > 0.0, "{what}: zero gradient");
    };
    norm(
        unet.encoder_hid_proj.as_ref().unwrap().weight.grad(&grads),
        "encoder_hid_proj",
    );
    norm(
        unet.time_embedding.linear_1.weight.grad(&grads),
        "time_embedding",
    );
    norm(
        unet.class_embedding
            .as_ref()
            .unwrap()
            .linear_1
            .weight
            .grad(&grads),
        "class_embedding",
    );
    norm(
        unet.add_embedding
            .as_ref()
            .unwrap()
            .pool
            .q_proj
            .weight
            .grad(&grads),
        "text pooling",
    );
    norm(
        unet.down_blocks[3].attentions[0]
            .add_k_proj
            .weight
            .grad(&grads),
        "attention add_k_proj",
    );
    norm(
        unet.mid_block.resnets[1].time_emb_proj.weight.grad(&grads),
        "mid resnet",
    );
    norm(
        unet.up_blocks[0].resnets[0]
            .time_emb_proj
            .weight
            .grad(&grads),
        "up resnet",
    );
    let conv = unet
        .conv_out
        .weight
        .grad(&grads)
        .expect("conv_out: no gradient");
    assert!(conv.abs().sum().into_scalar() > 0.0);
}
