//! Throughput of the receive path, each figure next to a baseline measured in the same run.
//!
//! `cargo bench --bench throughput` runs the full measurement; under `cargo test` (no
//! `--bench` flag) it runs a tiny smoke version so the code stays exercised.
//!
//! 1. CPU per message: wire decode only (baseline) vs the whole aggregator (`arrival`).
//! 2. Snapshot cost for 1,000 dummies (the live view takes one every 250 ms).
//! 3. Loopback UDP: a bare blocking `recv_from` loop (baseline) vs the bridge's receiver
//!    (batched recvmmsg + kernel timestamps + channel + aggregator), same sender, same burst.
//!
//! The whole pipeline against bare C-style receivers, CPU per datagram under a steady
//! load and the drain rate: `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use coppelia_bridge::collector::{bind_udp, BatchPool, UdpConfig};
use coppelia_bridge::event::{Arrival, ReceiverEvent, Source};
use coppelia_bridge::metrics::aggregator::Aggregator;
use coppelia_bridge::metrics::MetricsConfig;
use coppelia_bridge::wire::{Hello, Message, Stamp, NO_RTT};

struct Scale {
    messages: u32,
    dummies: u32,
    repeats: usize,
    udp_datagrams: u32,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full {
        Scale {
            messages: 2_000_000,
            dummies: 1_000,
            repeats: 5,
            udp_datagrams: 400_000,
        }
    } else {
        Scale {
            messages: 2_000,
            dummies: 10,
            repeats: 1,
            udp_datagrams: 2_000,
        }
    };
    println!(
        "coppelia-bridge throughput ({} mode)",
        if full { "bench" } else { "smoke" }
    );
    cpu_per_message(&scale);
    snapshot_cost(&scale);
    udp_loopback(&scale);
}

fn stamp(id: u32, seq: u32) -> Vec<u8> {
    Message::Stamp(Stamp {
        dummy_id: id,
        seq,
        step: seq,
        sim_time_s: f64::from(seq) * 0.05,
        sent_unix_s: 1.7e9 + f64::from(seq) * 0.05,
        rtt_us: NO_RTT,
    })
    .encode()
}

fn hello(id: u32) -> Vec<u8> {
    Message::Hello(Hello {
        dummy_id: id,
        dt_s: 0.05,
        script_version: 1,
        flags: 0,
        name: format!("Dummy{id}"),
    })
    .encode()
}

fn event(id: u32, payload: &[u8], t_ns: i64) -> Arrival<'_> {
    let port = 10_000 + (id % 50_000) as u16;
    Arrival {
        source: Source::Udp(([127, 0, 0, 1], port).into()),
        payload,
        kernel_ns: Some(t_ns),
        read_ns: t_ns + 5_000,
        truncated: false,
    }
}

/// Median of `repeats` timings of `f`, in ns per item.
fn median_ns_per_item(repeats: usize, items: u32, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / f64::from(items)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn cpu_per_message(s: &Scale) {
    let payloads: Vec<(u32, Vec<u8>)> = (0..s.messages)
        .map(|i| (i % s.dummies, stamp(i % s.dummies, i / s.dummies)))
        .collect();
    let decode = median_ns_per_item(s.repeats, s.messages, || {
        for (_, p) in &payloads {
            black_box(Message::decode(black_box(p)).ok());
        }
    });
    let t0 = 1_700_000_000_000_000_000i64;
    let full = median_ns_per_item(s.repeats, s.messages, || {
        let mut agg = Aggregator::new(MetricsConfig {
            run_start_ns: t0,
            ..MetricsConfig::default()
        });
        for id in 0..s.dummies {
            agg.arrival(event(id, &hello(id), t0), t0);
        }
        for (i, (id, p)) in payloads.iter().enumerate() {
            let t = t0 + (i as i64 / i64::from(s.dummies)) * 50_000_000 + 200_000;
            black_box(agg.arrival(event(*id, p, t), t));
        }
    });
    println!(
        "cpu/message: decode only {decode:.0} ns (baseline), aggregator {full:.0} ns = {:.1}x baseline; {:.2} M msg/s on one core",
        full / decode,
        1e3 / full
    );
}

fn snapshot_cost(s: &Scale) {
    let t0 = 1_700_000_000_000_000_000i64;
    let mut agg = Aggregator::new(MetricsConfig {
        run_start_ns: t0,
        ..MetricsConfig::default()
    });
    for id in 0..s.dummies {
        agg.arrival(event(id, &hello(id), t0), t0);
        for seq in 0..200u32 {
            let t = t0 + i64::from(seq) * 50_000_000;
            agg.arrival(event(id, &stamp(id, seq), t + 100_000), t + 100_000);
        }
    }
    let now = t0 + 10_000_000_000;
    let per = median_ns_per_item(s.repeats, 1, || {
        black_box(agg.snapshot(now));
    });
    let budget_ns = 250e6; // one tick
    println!(
        "snapshot of {} dummies: {:.2} ms = {:.1} % of the 250 ms tick",
        s.dummies,
        per / 1e6,
        100.0 * per / budget_ns
    );
}

fn udp_loopback(s: &Scale) {
    let n = s.udp_datagrams;
    let base = baseline_recv(n);
    let bridge = bridge_recv(n);
    println!(
        "loopback UDP, {n} datagrams sent as fast as one thread can: bare recv_from {:.0} k/s ({} received, baseline), bridge receiver+aggregator {:.0} k/s ({} received) = {:.2}x baseline",
        base.0 / 1e3,
        base.1,
        bridge.0 / 1e3,
        bridge.1,
        bridge.0 / base.0
    );
}

/// Sends `n` stamps from 8 sockets (8 dummies) to `to`.
fn blast(to: std::net::SocketAddr, n: u32) {
    let socks: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, s) in socks.iter().enumerate() {
        s.send_to(&hello(i as u32), to).unwrap();
    }
    for i in 0..n {
        let d = i % 8;
        let _ = socks[d as usize].send_to(&stamp(d, i / 8), to);
    }
}

/// Rate (msg/s) and count received within the burst (+200 ms of quiet).
fn baseline_recv(n: u32) -> (f64, u32) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&sock)
        .set_recv_buffer_size(64 << 20)
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let to = sock.local_addr().unwrap();
    let sender = std::thread::spawn(move || blast(to, n));
    let mut buf = [0u8; 2048];
    let (mut got, mut first, mut last) = (0u32, None, Instant::now());
    while let Ok((len, _)) = sock.recv_from(&mut buf) {
        black_box(&buf[..len]);
        first.get_or_insert_with(Instant::now);
        last = Instant::now();
        got += 1;
    }
    sender.join().unwrap();
    let span = last
        .duration_since(first.unwrap_or(last))
        .as_secs_f64()
        .max(1e-9);
    (f64::from(got) / span, got)
}

fn bridge_recv(n: u32) -> (f64, u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let udp = bind_udp(&UdpConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            recv_buffer: 64 << 20,
            cadence: Default::default(),
            allow: coppelia_bridge::collector::AllowList::Any,
        })
        .unwrap();
        let to = udp.local_addr;
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let pool = BatchPool::default();
        let receiver = udp.spawn(tx, pool.clone(), Default::default()).unwrap();
        let sender = std::thread::spawn(move || blast(to, n));
        let mut agg = Aggregator::new(MetricsConfig::default());
        let (mut got, mut first, mut last) = (0u32, None, Instant::now());
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            let now = coppelia_bridge::time::unix_now_ns();
            if let ReceiverEvent::Arrivals(batch) = ev {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                got += batch.len() as u32;
                for a in batch.iter() {
                    black_box(agg.arrival(a, now));
                }
                pool.give(batch);
            }
        }
        sender.join().unwrap();
        drop(rx);
        receiver.join().unwrap();
        let span = last
            .duration_since(first.unwrap_or(last))
            .as_secs_f64()
            .max(1e-9);
        (f64::from(got) / span, got)
    })
}
