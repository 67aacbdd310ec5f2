//! Round trip of one remote call over loopback: our client (`Client::get_simulation_time`,
//! CBOR encode + ZeroMQ + CBOR decode) against a baseline measured in the same run, a raw
//! REQ socket sending pre-encoded bytes to the same fake server. The ratio is what the
//! client adds over bare ZeroMQ.
//!
//! Run: `cargo bench --bench remote_api_rtt` (add `--profile dev` to skip a release build).

use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::remote_api::fake::{FakeAction, FakeServer};
use coppelia_bridge::remote_api::message::{encode_request, encode_ret, Request};
use coppelia_bridge::remote_api::{Client, ClientConfig};

const CALLS: usize = 5000;
const WARMUP: usize = 200;

fn main() {
    let reply = encode_ret(vec![Value::Float(1.25)]);
    let server = FakeServer::start(move |_| FakeAction::Reply(reply.clone())).expect("bind fake");
    let raw = median_us(&mut raw_round_trip(server.endpoint()));
    let client = median_us(&mut client_round_trip(server.endpoint()));
    println!("remote call round trip over loopback, median of {CALLS} calls, µs");
    println!("  baseline  raw REQ socket, pre-encoded request   {raw:8.1}");
    println!("  client    Client::get_simulation_time          {client:8.1}");
    println!(
        "  ratio     client / baseline                    {:8.2}",
        client / raw
    );
}

fn raw_round_trip(endpoint: &str) -> Vec<Duration> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.connect(endpoint).expect("connect");
    let request = encode_request(&Request {
        func: "sim.getSimulationTime",
        args: &[],
        uuid: "bench",
        hello: None,
    });
    (0..WARMUP + CALLS)
        .map(|_| {
            let t0 = Instant::now();
            socket.send(&request, 0).expect("send");
            socket.recv_bytes(0).expect("recv");
            t0.elapsed()
        })
        .skip(WARMUP)
        .collect()
}

fn client_round_trip(endpoint: &str) -> Vec<Duration> {
    let config = ClientConfig {
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    let mut client = Client::connect(endpoint, config).expect("client");
    (0..WARMUP + CALLS)
        .map(|_| {
            let t0 = Instant::now();
            client.get_simulation_time().expect("call");
            t0.elapsed()
        })
        .skip(WARMUP)
        .collect()
}

fn median_us(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}
