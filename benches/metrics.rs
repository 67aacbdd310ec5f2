//! Cost of the per-dummy metrics, against a baseline measured in the same run.
//!
//! `cargo bench --bench metrics`. The baseline copies each sample into a preallocated `Vec`
//! (the least any consumer of a sample does); the ratio says how many such copies one
//! `DummyMetrics::record` costs. Budget: 1,000 dummies × 20 Hz = 20,000 samples/s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use coppelia_bridge::metrics::{
    DummyInfo, DummyMetrics, MetricsConfig, RecvClock, Sample, Transport,
};

const DUMMIES: u32 = 1_000;
const PASSES: u32 = 200; // 10 s at 20 Hz per dummy
const T0: i64 = 1_763_700_000_000_000_000;
const PERIOD_NS: i64 = 50_000_000;

fn sample(k: u32, id: u32) -> Sample {
    let sent = T0 + i64::from(k) * PERIOD_NS + i64::from(id) * 1_000;
    Sample {
        seq: Some(k),
        step: Some(k),
        sim_time_s: f64::from(k) * 0.05,
        sent_unix_ns: Some(sent),
        recv_unix_ns: sent + 250_000 + i64::from(k % 7) * 10_000,
        read_unix_ns: sent + 270_000,
        recv_clock: RecvClock::Kernel,
        rtt_us: Some(500 + k % 100),
    }
}

fn dummies(cfg: &MetricsConfig) -> Vec<DummyMetrics> {
    (0..DUMMIES)
        .map(|id| {
            let info = DummyInfo {
                id,
                name: format!("Dummy{id}"),
                transport: Transport::Udp,
                dt_s: Some(0.05),
                source: ([127, 0, 0, 1], 50000).into(),
            };
            DummyMetrics::new(info, cfg)
        })
        .collect()
}

fn time(label: &str, ops: u64, f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    let d = start.elapsed();
    println!(
        "{label:<40} {:>10.1} ns/op",
        d.as_nanos() as f64 / ops as f64
    );
    d
}

fn main() {
    let cfg = MetricsConfig {
        run_start_ns: T0,
        ..MetricsConfig::default()
    };
    let ops = u64::from(DUMMIES) * u64::from(PASSES);
    let mut sink = Vec::with_capacity(ops as usize);
    let base = time("baseline: copy sample into Vec", ops, || {
        for k in 0..PASSES {
            for id in 0..DUMMIES {
                sink.push(black_box(sample(k, id)));
            }
        }
    });
    black_box(&sink);
    let mut ds = dummies(&cfg);
    let rec = time("DummyMetrics::record", ops, || {
        for k in 0..PASSES {
            for (id, d) in (0..DUMMIES).zip(ds.iter_mut()) {
                black_box(d.record(&sample(k, id), &cfg));
            }
        }
    });
    let now = T0 + i64::from(PASSES) * PERIOD_NS;
    let snap = time("DummyMetrics::snapshot", u64::from(DUMMIES), || {
        for d in &ds {
            black_box(d.snapshot(now, &cfg));
        }
    });
    println!(
        "record / baseline = {:.1}; record throughput {:.0} samples/s (budget 20,000); \
         snapshot of {DUMMIES} dummies: {:.2} ms",
        rec.as_secs_f64() / base.as_secs_f64(),
        ops as f64 / rec.as_secs_f64(),
        snap.as_secs_f64() * 1e3
    );
    sample_files(ops, base);
}

/// The two sample-file formats, each writing every sample into memory (no disk: the
/// formatting and copying the receive path pays per message), against the same baseline.
fn sample_files(ops: u64, base: Duration) {
    use coppelia_bridge::output::sample_file::SampleEncoder;
    use coppelia_bridge::output::samples_bin::SampleBin;
    use coppelia_bridge::output::samples_csv::SampleCsv;
    let mut csv = SampleCsv::new(Vec::with_capacity(ops as usize * 110));
    let text = time("samples.csv row", ops, || {
        for k in 0..PASSES {
            for id in 0..DUMMIES {
                csv.write_sample(id, 0, Transport::Udp, &black_box(sample(k, id)))
                    .unwrap();
            }
        }
    });
    let csv_bytes = black_box(csv.into_inner().unwrap()).len();
    let mut bin = SampleBin::new(Vec::with_capacity(ops as usize * 56 + 16));
    let binary = time("samples.bin record", ops, || {
        for k in 0..PASSES {
            for id in 0..DUMMIES {
                bin.write_sample(id, 0, Transport::Udp, &black_box(sample(k, id)))
                    .unwrap();
            }
        }
    });
    let bin_bytes = black_box(bin.into_inner().unwrap()).len();
    println!(
        "samples.csv / baseline = {:.1}, samples.bin / baseline = {:.1}; csv / bin = {:.1}; \
         bytes per message {:.1} (csv) vs {:.1} (bin)",
        text.as_secs_f64() / base.as_secs_f64(),
        binary.as_secs_f64() / base.as_secs_f64(),
        text.as_secs_f64() / binary.as_secs_f64(),
        csv_bytes as f64 / ops as f64,
        bin_bytes as f64 / ops as f64
    );
}
