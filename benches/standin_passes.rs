//! Passes per second of a free-running stand-in (max speed, the 4-dummy scene with the shipped
//! script) with no remote client, against the same with the bridge's remote API driver
//! attached and not stepping (what `coppelia-bridge run` does: 10 polls/s of
//! `sim.getSimulationTime` + `sim.getSimulationState`), measured in the same run,
//! alternating, median of three rounds each. Issue 9 requires the ratio to be at least 0.8:
//! the server follows the add-on's `handleQueue` (one zero-timeout poll per pass when nothing
//! is queued; zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua).
//!
//! Run: `cargo bench --bench standin_passes` (add `--profile dev` to skip a release build).
//! Under `cargo test` (no `--bench` flag) it runs one short smoke round of each, so the code
//! stays exercised without costing the test run 18 s.

use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coppelia_bridge::remote_api::driver::{self, DriverOptions};
use coppelia_bridge::scene::parse::parse_scene;
use coppelia_bridge::scene::{generate_scene, SceneOptions};
use coppelia_bridge::standin::{spawn, LogSink, Speed, StandinConfig};

const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
/// Smoke round under `cargo test`.
const SMOKE_ROUND: Duration = Duration::from_millis(300);

fn main() {
    // The scripts send to a bound socket nobody reads (the kernel drops what overflows).
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind UDP sink");
    let port = sink.local_addr().expect("addr").port();
    let xml = generate_scene(&SceneOptions {
        port,
        ..SceneOptions::default()
    });
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, round) = if full {
        (ROUNDS, ROUND)
    } else {
        (1, SMOKE_ROUND)
    };
    let mut alone = Vec::new();
    let mut attached = Vec::new();
    for _ in 0..rounds {
        alone.push(passes_per_s(&xml, false, round));
        attached.push(passes_per_s(&xml, true, round));
    }
    let (a, b) = (median(&mut alone), median(&mut attached));
    println!("stand-in passes/s at max speed, 4 dummies, median of {rounds} rounds of {round:?}");
    println!("  baseline  no client                          {a:10.0}");
    println!("  attached  remote API driver, not stepping    {b:10.0}");
    println!(
        "  ratio     attached / baseline                {:10.2}",
        b / a
    );
}

fn passes_per_s(xml: &str, attach: bool, round: Duration) -> f64 {
    let mut config = StandinConfig::new(parse_scene(xml).expect("scene"));
    config.speed = Some(Speed::MaxSpeed);
    config.remote = Some(("127.0.0.1".into(), 0));
    config.start = !attach;
    config.log = LogSink {
        tx: None,
        quiet: true,
    };
    let standin = spawn(config).expect("stand-in");
    let endpoint = standin.endpoint().expect("endpoint").to_owned();
    let (tx, _rx) = mpsc::channel();
    let driver = attach.then(|| driver::spawn(DriverOptions::new(endpoint), tx).expect("driver"));
    let t0 = Instant::now();
    std::thread::sleep(round);
    let elapsed = t0.elapsed();
    if let Some(d) = driver {
        d.shutdown();
    }
    let summary = standin.shutdown().expect("stand-in ends");
    summary.passes as f64 / elapsed.as_secs_f64()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
