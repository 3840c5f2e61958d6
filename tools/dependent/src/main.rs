//! Checks what a project depending on imagen by path gets (README.md).

use std::any::type_name;
use std::net::TcpListener;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use imagen::burn::backend::Autodiff;
use imagen::burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use imagen::burn::nn::PaddingConfig2d;
use imagen::burn::nn::conv::Conv2dConfig;
use imagen::burn::tensor::backend::Backend;
use imagen::burn::tensor::{Distribution, Int, Tensor};
use imagen::flex::patch;
use imagen::train::{DataParallel, NullText, StageKind, TrainBatch, TrainConfig, Trainer};
use imagen::unet::UNetConfig;

type B = imagen::DefaultBackend;
type AB = Autodiff<B>;

/// Set in the child process: `orchestrator_port,data_port,output_file`.
const NODE_ENV: &str = "IMAGEN_DEPENDENT_NODE1";
const STEPS: usize = 3;

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(NODE_ENV) {
        let parts: Vec<&str> = spec.split(',').collect();
        let weights = run_node(1, parts[0].parse().unwrap(), parts[1].parse().unwrap());
        std::fs::write(parts[2], to_bytes(&weights)).unwrap();
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    for (name, check) in [
        (
            "backend is imagen-burn-flex",
            check_backend as fn() -> Result<String, String>,
        ),
        ("two-node all-reduce over loopback", check_two_nodes),
    ] {
        match check() {
            Ok(detail) => println!("ok   {name}: {detail}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check_backend() -> Result<String, String> {
    let backend = type_name::<B>();
    if !backend.starts_with("imagen_burn_flex::") {
        return Err(format!(
            "DefaultBackend is {backend}, not imagen_burn_flex's Flex"
        ));
    }
    let (input, weight) = ([1, 64, 32, 32], [64, 64, 3, 3]);
    let options = imagen::burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let kernel = patch::conv2d_f32_kernel(input, weight, &options);
    if kernel != "winograd-f2x2-3x3" {
        return Err(format!("a 64-channel 3x3 conv at 32x32 takes {kernel}"));
    }
    // The convolution itself, against a direct f64 sum.
    let device = Default::default();
    B::seed(&device, 3);
    let conv = Conv2dConfig::new([64, 64], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init::<B>(&device);
    let x = Tensor::<B, 4>::random(input, Distribution::Normal(0.0, 1.0), &device);
    let y: Vec<f32> = conv.forward(x.clone()).into_data().to_vec().unwrap();
    let xs: Vec<f32> = x.into_data().to_vec().unwrap();
    let ws: Vec<f32> = conv.weight.val().into_data().to_vec().unwrap();
    let bs: Vec<f32> = conv
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    let mut max_err = 0f64;
    for o in 0..64 {
        for i in 0..32usize {
            for j in 0..32usize {
                let mut sum = bs[o] as f64;
                for c in 0..64 {
                    for (di, dj) in (0..9).map(|k| (k / 3, k % 3)) {
                        let (ii, jj) = ((i + di).wrapping_sub(1), (j + dj).wrapping_sub(1));
                        if ii < 32 && jj < 32 {
                            sum += xs[(c * 32 + ii) * 32 + jj] as f64
                                * ws[((o * 64 + c) * 3 + di) * 3 + dj] as f64;
                        }
                    }
                }
                max_err = max_err.max((y[(o * 32 + i) * 32 + j] as f64 - sum).abs());
            }
        }
    }
    // f32 accumulation over 576 products of unit-scale values.
    if max_err > 1e-4 {
        return Err(format!("conv differs from the direct sum by {max_err:e}"));
    }
    Ok(format!(
        "{backend}, burn-flex {} + {:?}, conv kernel {kernel}, max |err| {max_err:.1e}",
        patch::BASE_VERSION,
        patch::PATCHES
    ))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Node `node` of two: joins, trains `STEPS` steps on its own micro-batch,
/// returns its weights.
fn run_node(node: usize, orchestrator: u16, data_port: u16) -> Vec<f32> {
    let device = Default::default();
    let parallel = DataParallel::multi_node(
        node,
        2,
        0,
        1,
        &format!("ws://127.0.0.1:{orchestrator}"),
        &format!("ws://127.0.0.1:{data_port}"),
        data_port,
    )
    .unwrap();
    let mut config = TrainConfig::new(StageKind::Base, 16);
    config.batch_size = 2;
    config.lr = 1e-3;
    let unet_config = UNetConfig::tiny_base(16);
    // Different initial weights on purpose: joining broadcasts node 0's.
    AB::seed(&device, 100 + node as u64);
    let unet = unet_config.init::<AB>(&device).unwrap();
    let mut trainer = Trainer::new(config, unet_config, unet)
        .unwrap()
        .join(parallel, &device)
        .unwrap();
    AB::seed(&device, 30 + node as u64);
    let batch = TrainBatch {
        images: Tensor::<AB, 4>::random([2, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device),
        text: Tensor::random([2, 6, 16], Distribution::Normal(0.0, 1.0), &device),
        text_mask: Tensor::<AB, 2, Int>::ones([2, 6], &device),
    };
    let null = NullText {
        text: Tensor::zeros([1, 6, 16], &device),
        mask: Tensor::<AB, 2, Int>::zeros([1, 6], &device),
    };
    for _ in 0..STEPS {
        trainer
            .train_step(std::slice::from_ref(&batch), &null)
            .unwrap();
    }
    let flat: Vec<f32> = flatten(&trainer.unet().valid());
    trainer.leave().unwrap();
    flat
}

fn flatten<M: Module<B>>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0
                .extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn check_two_nodes() -> Result<String, String> {
    let (orchestrator, port0, port1) = (free_port(), free_port(), free_port());
    std::thread::spawn(move || {
        imagen::train::serve_orchestrator_on(([127, 0, 0, 1], orchestrator).into())
    });
    std::thread::sleep(Duration::from_millis(300));
    let out = std::env::temp_dir().join(format!("imagen-dependent-{}", std::process::id()));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(
            NODE_ENV,
            format!("{orchestrator},{port1},{}", out.display()),
        )
        .spawn()
        .map_err(|e| format!("starting node 1: {e}"))?;
    let worker = std::thread::spawn(move || run_node(0, orchestrator, port0));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !worker.is_finished() {
        child.kill().ok();
        return Err("node 0 did not finish within 120 s (stock burn-collective hangs here)".into());
    }
    let w0 = worker.join().map_err(|_| "node 0 panicked".to_string())?;
    if !child.wait().map_err(|e| e.to_string())?.success() {
        return Err("node 1 failed".into());
    }
    let w1 = std::fs::read(&out).map_err(|e| format!("node 1's weights: {e}"))?;
    std::fs::remove_file(&out).ok();
    if to_bytes(&w0) != w1 {
        return Err("the two nodes ended with different weights".into());
    }
    Ok(format!(
        "{STEPS} steps, {} weights identical on both nodes",
        w0.len()
    ))
}
