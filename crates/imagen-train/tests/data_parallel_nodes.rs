//! Data-parallel training across two nodes over loopback: this test process
//! is node 0 and runs burn-collective's global orchestrator; it launches
//! itself again as node 1. Each node has one device and one micro-batch; the
//! result must equal one device accumulating both micro-batches.
//! (Its own test binary, outside `tests/main.rs`: burn-collective keeps one
//! local server per backend and process, which the in-process data-parallel
//! test also uses.)
#![cfg(feature = "collective")]

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use imagen_train::{
    DataParallel, StageKind, TrainConfig, Trainer, materialize, serve_orchestrator_on,
};
use imagen_unet::UNetConfig;

mod parallel_support;
mod seeded;

use parallel_support::{B, micro_batch, null};
use seeded::seeded;

const NODE_ENV: &str = "IMAGEN_TEST_NODE1";
const STEPS: usize = 2;

fn trainer(grad_accumulation: usize, init_seed: u64) -> Trainer<B> {
    let mut c = TrainConfig::new(StageKind::Base, 16);
    c.batch_size = 2;
    c.grad_accumulation = grad_accumulation;
    c.lr = 1e-3;
    c.warmup_steps = 2;
    c.seed = 5;
    let unet_config = UNetConfig::tiny_base(16);
    let unet = seeded::<B, _>(init_seed, || {
        unet_config.init::<B>(&Default::default()).map(materialize)
    })
    .unwrap();
    Trainer::new(c, unet_config, unet).unwrap()
}

fn save(t: &Trainer<B>, dir: &std::path::Path) {
    t.unet()
        .valid()
        .save_dir(&t.unet_config, dir, None)
        .unwrap();
}

fn read(dir: &std::path::Path) -> Vec<f32> {
    let ckpt = imagen_weights::Checkpoint::open_dir(dir, "diffusion_pytorch_model").unwrap();
    let mut keys: Vec<String> = ckpt.keys().map(str::to_owned).collect();
    keys.sort();
    keys.iter()
        .flat_map(|k| {
            let t = ckpt.read(k, burn::tensor::DType::F32).unwrap();
            t.to_vec::<f32>().unwrap()
        })
        .collect()
}

/// This machine's address on its default route, if it has one besides
/// loopback (a UDP "connect" sends nothing).
fn outside_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Issue 39: a server the test bound to loopback answers on 127.0.0.1 and
/// not on this machine's other address (it used to listen on 0.0.0.0,
/// open to anyone who could reach the machine).
fn assert_loopback_only(what: &str, port: u16) {
    let timeout = Duration::from_secs(2);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        std::net::TcpStream::connect_timeout(&local, timeout).is_ok(),
        "{what} is not reachable on {local}"
    );
    match outside_ip() {
        Some(ip) => {
            let outside = std::net::SocketAddr::new(ip, port);
            assert!(
                std::net::TcpStream::connect_timeout(&outside, timeout).is_err(),
                "{what} bound to loopback answers on {outside}"
            );
        }
        None => eprintln!("no address besides loopback: {what} checked on loopback only"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Node `node` of 2: one device, micro-batch `node`.
fn run_node(node: usize, orchestrator: u16, data_port: u16, init_seed: u64, out: &std::path::Path) {
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
    let mut t = trainer(1, init_seed)
        .join(parallel, &Default::default())
        .unwrap();
    assert_loopback_only(&format!("node {node}'s data service"), data_port);
    let batch = micro_batch(30 + node as u64);
    for _ in 0..STEPS {
        t.train_step(std::slice::from_ref(&batch), &null()).unwrap();
    }
    save(&t, out);
    t.leave().unwrap();
}

/// Two nodes over loopback equal one device with both micro-batches, to
/// 1e-5 absolute on every weight.
#[test]
fn two_nodes_over_loopback_equal_one_device() {
    if let Ok(spec) = std::env::var(NODE_ENV) {
        // The child: node 1.
        let parts: Vec<&str> = spec.split(',').collect();
        run_node(
            1,
            parts[0].parse().unwrap(),
            parts[1].parse().unwrap(),
            7,
            std::path::Path::new(parts[2]),
        );
        return;
    }
    let root = std::env::temp_dir().join(format!("imagen-nodes-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    let (orchestrator, port0, port1) = (free_port(), free_port(), free_port());
    std::thread::spawn(move || {
        serve_orchestrator_on(([127, 0, 0, 1], orchestrator).into()).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_loopback_only("the orchestrator", orchestrator);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_nodes_over_loopback_equal_one_device",
            "--nocapture",
        ])
        .env(
            NODE_ENV,
            format!("{orchestrator},{port1},{}", root.join("node1").display()),
        )
        .spawn()
        .unwrap();
    let node0 = root.join("node0");
    let worker = {
        let node0 = node0.clone();
        std::thread::spawn(move || run_node(0, orchestrator, port0, 1, &node0))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !worker.is_finished() {
        child.kill().ok();
        panic!("node 0 did not finish within 120 s");
    }
    worker.join().unwrap();
    assert!(child.wait().unwrap().success(), "node 1 failed");

    let batches = [micro_batch(30), micro_batch(31)];
    let mut single = trainer(2, 1);
    for _ in 0..STEPS {
        single.train_step(&batches, &null()).unwrap();
    }
    save(&single, &root.join("single"));

    let (w0, w1, w) = (
        read(&node0),
        read(&root.join("node1")),
        read(&root.join("single")),
    );
    assert!(w0 == w1, "the two nodes diverged");
    let max_diff = w
        .iter()
        .zip(&w0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!(
        "max |w_2nodes - w_1dev| = {max_diff:e} over {} weights",
        w.len()
    );
    assert!(max_diff < 1e-5, "max weight difference {max_diff}");
    std::fs::remove_dir_all(&root).ok();
}
