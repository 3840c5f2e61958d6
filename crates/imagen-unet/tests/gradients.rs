//! Backward parity: the gradients of the whole IF-layout U-Net against
//! PyTorch autograd on the tiny random diffusers models of `unet.rs`
//! (stage I and stage II, masked text). The loss is `sum(out * w)` for a
//! fixed random `w`; we compare the gradient of every parameter (by its
//! diffusers key), of the sample and of the text states. Training runs
//! through these, and forward parity alone does not prove them.
//!
//! Tolerance: max abs error <= 1e-4 + 1e-4 * max |reference| per tensor
//! (f32). Measured worst: 1.7e-4 on a conv weight gradient of magnitude up to
//! 56 (stage I), 2.5e-4 of up to 46 (stage II), i.e. ~5e-6 relative.

use crate::common;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn_flex::Flex;
use common::{Fixture, fixtures};
use imagen_unet::{UNet, UNetConfig};
use safetensors::SafeTensors;

type AD = Autodiff<Flex>;

/// Replaces every parameter's value by its gradient (zeros where none).
struct ToGradient<'a> {
    grads: &'a GradientsParams,
    missing: usize,
}

impl ModuleMapper<Flex> for ToGradient<'_> {
    fn map_float<const D: usize>(
        &mut self,
        param: Param<Tensor<Flex, D>>,
    ) -> Param<Tensor<Flex, D>> {
        let (id, value, mapper) = param.consume();
        let grad = self.grads.get::<Flex, D>(id).unwrap_or_else(|| {
            self.missing += 1;
            value.zeros_like()
        });
        Param::from_mapped_value(id, grad, mapper)
    }
}

fn lift<const D: usize>(t: Tensor<Flex, D>) -> Tensor<AD, D> {
    Tensor::from_data(t.into_data(), &Default::default())
}

/// `(max abs error, max |reference|)`.
fn compare(got: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .fold((0.0f32, 0.0f32), |(e, m), (a, b)| {
            (e.max((a - b).abs()), m.max(b.abs()))
        })
}

fn within(err: f32, scale: f32) -> bool {
    err <= 1e-4 + 1e-4 * scale
}

fn check(stage: &str, has_class: bool) {
    let device = Default::default();
    let dir = fixtures().join(stage);
    let config = UNetConfig::from_file(dir.join("config.json")).unwrap();
    let unet = UNet::<AD>::from_dir(&dir, &device).unwrap();
    let io = Fixture::open(&format!("{stage}_io.safetensors"));
    let reference = Fixture::open(&format!("{stage}_grads.safetensors"));

    let (timesteps, labels, mask) = common::conditioning::<AD>(&io, has_class, &device);
    let sample = lift(io.tensor::<4>("sample")).require_grad();
    let text = lift(io.tensor::<3>("encoder_hidden_states")).require_grad();
    let weights = lift(reference.tensor::<4>("loss_weights"));
    let out = unet.forward(
        sample.clone(),
        &timesteps,
        text.clone(),
        Some(mask),
        labels.as_deref(),
    );
    let mut grads = (out * weights).sum().backward();

    let mut failures = Vec::new();
    let mut worst = (String::new(), 0.0f32, 0.0f32);
    let mut record = |name: String, got: Vec<f32>, want: &[f32]| {
        let (err, scale) = compare(&got, want);
        if !within(err, scale) {
            failures.push(format!(
                "{name}: max abs error {err:e} (max |ref| {scale:e})"
            ));
        }
        if err > worst.1 {
            worst = (name, err, scale);
        }
    };
    for input in ["sample", "encoder_hidden_states"] {
        let got = match input {
            "sample" => sample.grad(&grads).unwrap().into_data(),
            _ => text.grad(&grads).unwrap().into_data(),
        };
        let want = reference.floats(&format!("input.{input}")).1;
        record(format!("input.{input}"), got.to_vec().unwrap(), &want);
    }

    let params = GradientsParams::from_module(&mut grads, &unet);
    let mut mapper = ToGradient {
        grads: &params,
        missing: 0,
    };
    let gradient_net = unet.valid().map(&mut mapper);
    assert_eq!(mapper.missing, 0, "{stage}: parameters without a gradient");
    let out_dir = std::env::temp_dir().join(format!("imagen-grad-{stage}-{}", std::process::id()));
    gradient_net.save_dir(&config, &out_dir, None).unwrap();
    let bytes = std::fs::read(out_dir.join("diffusion_pytorch_model.safetensors")).unwrap();
    std::fs::remove_dir_all(&out_dir).unwrap();
    let ours = SafeTensors::deserialize(&bytes).unwrap();

    let ref_bytes = std::fs::read(fixtures().join(format!("{stage}_grads.safetensors"))).unwrap();
    let theirs = SafeTensors::deserialize(&ref_bytes).unwrap();
    let mut compared = 0;
    for (key, view) in theirs.tensors() {
        let Some(param) = key.strip_prefix("param.") else {
            continue;
        };
        let got = ours
            .tensor(param)
            .unwrap_or_else(|_| panic!("{stage}: no parameter {param}"));
        assert_eq!(got.shape(), view.shape(), "{stage}: {param} shape");
        let floats = |d: &[u8]| -> Vec<f32> {
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        record(param.to_string(), floats(got.data()), &floats(view.data()));
        compared += 1;
    }
    assert_eq!(compared, ours.len(), "{stage}: parameter sets differ");
    eprintln!(
        "{stage}: {compared} parameter gradients + 2 input gradients; worst {}: {:e} (max |ref| {:e})",
        worst.0, worst.1, worst.2
    );
    assert!(failures.is_empty(), "{stage}:\n{}", failures.join("\n"));
}

#[test]
fn if_stage1_tiny_gradients_match_pytorch() {
    check("if_stage1_tiny", false);
}

#[test]
fn if_stage2_tiny_gradients_match_pytorch() {
    check("if_stage2_tiny", true);
}
