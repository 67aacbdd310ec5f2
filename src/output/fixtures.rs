//! Hand-built snapshots and samples, shared by unit tests, integration tests and the
//! screenshot script. Numbers are plausible for a 50 ms CoppeliaSim step (20 Hz).

use crate::metrics::{
    DummySnapshot, DummyState, LatencyStats, LossStats, RateStats, RecvClock, RtfStats,
    RunSnapshot, SessionRecord, SimSnapshot, SourceErrors, SpreadMs, SteppingSnapshot, Transport,
    WallSource,
};

use super::events::{Event, EventKind};
use super::samples_csv::SampleRow;

/// Wall clock of the fixture run's start: 2026-01-02T03:04:05Z.
pub const RUN_START_UNIX_S: f64 = 1_767_323_045.0;

/// A run 12.5 s in: a healthy UDP dummy, an off-target TCP dummy with losses, and a
/// legacy (notebook-format) dummy whose latency, jitter and loss are unavailable.
pub fn sample_run_snapshot() -> RunSnapshot {
    RunSnapshot {
        elapsed_s: 12.5,
        taken_unix_s: RUN_START_UNIX_S + 12.5,
        recv_clock: RecvClock::Kernel,
        kernel_drops: Some(0),
        backlog: Some(latency(8.0, 95.0)),
        latency: Some(latency(210.0, 9800.0)),
        dummies: vec![healthy_dummy(), off_target_dummy(), legacy_dummy()],
        rejected: vec![rejected_source()],
        refused: Default::default(),
        sim: Some(sim_snapshot()),
    }
}

/// One earlier session of dummy 1, ended by a simulation restart.
pub fn sample_sessions() -> Vec<SessionRecord> {
    let mut earlier = off_target_dummy();
    earlier.session = 0;
    earlier.state = DummyState::Ended;
    earlier.messages = 40;
    vec![SessionRecord {
        dummy_id: 1,
        session: 0,
        reason: "seq restarted at 0".to_owned(),
        final_snapshot: earlier,
    }]
}

/// A time series of `n` snapshots, one per second, whose RTF dips in the middle and
/// whose dummy 1 loses a message every few seconds: input for report and CSV tests.
pub fn sample_snapshot_series(n: usize) -> Vec<RunSnapshot> {
    (0..n)
        .map(|i| {
            let t = i as f64 + 1.0;
            let mut s = sample_run_snapshot();
            s.elapsed_s = t;
            s.taken_unix_s = RUN_START_UNIX_S + t;
            let dip = if (n / 3..n / 2).contains(&i) {
                0.6
            } else {
                1.0
            };
            for d in &mut s.dummies {
                let wobble = 0.02 * ((i + d.id as usize) % 5) as f64;
                d.rtf.last_1s = Some(dip - wobble);
                d.rtf.last_10s = Some(dip - wobble / 2.0);
                d.messages = (20 * (i + 1)) as u64;
                d.rate.wall_hz_1s = Some(20.0 * dip);
                if let Some(loss) = &mut d.loss {
                    loss.lost = (i / 4) as u64 * u64::from(d.id);
                    loss.expected = loss.received + loss.lost;
                    loss.loss_pct = 100.0 * loss.lost as f64 / loss.expected as f64;
                }
            }
            if let Some(sim) = &mut s.sim {
                sim.rtf.last_1s = Some(dip);
                sim.sim_time_s = Some(t * 0.95);
            }
            s
        })
        .collect()
}

/// `n` received messages per dummy id in `ids`, 20 Hz, with latency spikes every 50th
/// message; dummy 2 is legacy (no seq, step, sender clock or latency).
pub fn sample_rows(ids: &[u32], n: u32) -> Vec<SampleRow> {
    let mut rows = Vec::new();
    for &id in ids {
        for k in 0..n {
            rows.push(sample_row(id, k));
        }
    }
    rows
}

fn sample_row(id: u32, k: u32) -> SampleRow {
    let sim_time_s = f64::from(k) * 0.05;
    let recv_unix_s = RUN_START_UNIX_S + sim_time_s * 1.02 + 0.01;
    // Dummy 1 is slower and spikes on a different period, so the plots tell them apart.
    let latency_us = if k % (50 + 13 * id) == 49 {
        4_000.0 + 1_500.0 * f64::from(id)
    } else {
        150.0 + 250.0 * f64::from(id) + f64::from((k * 37 + id * 11) % 100)
    };
    let legacy = id == 2;
    SampleRow {
        dummy: id,
        session: 0,
        seq: (!legacy).then_some(k),
        step: (!legacy).then_some(k),
        sim_time_s,
        sent_unix_s: (!legacy).then_some(recv_unix_s - latency_us / 1e6),
        recv_unix_s,
        read_unix_s: recv_unix_s + 0.000_02,
        latency_us: (!legacy).then_some(latency_us),
        rtt_us: None,
        recv_clock: RecvClock::Kernel,
        transport: if legacy {
            Transport::LegacyUdp
        } else {
            Transport::Udp
        },
    }
}

/// A few events of each common kind.
pub fn sample_events() -> Vec<Event> {
    let ev = |elapsed_s: f64, kind, dummy, message: &str| Event {
        t_unix_s: RUN_START_UNIX_S + elapsed_s,
        elapsed_s,
        kind,
        dummy,
        message: message.to_owned(),
    };
    vec![
        ev(
            0.0,
            EventKind::RunStarted,
            None,
            "listening on 127.0.0.1:8888",
        ),
        ev(
            0.4,
            EventKind::DummyRegistered,
            Some(0),
            "Dummy0 (udp) from 127.0.0.1:50123",
        ),
        ev(
            5.0,
            EventKind::Loss,
            Some(1),
            "Dummy1 lost 2 messages (total 2)",
        ),
        ev(
            6.0,
            EventKind::OffTarget,
            Some(1),
            "Dummy1 RTF 1 s 0.62, target 1.00",
        ),
        ev(
            9.0,
            EventKind::Warning,
            None,
            "rejected 3 datagrams from 10.0.0.9:4000 (bad_version)",
        ),
    ]
}

fn latency(p50_us: f64, max_us: f64) -> LatencyStats {
    LatencyStats {
        count: 250,
        min_us: p50_us * 0.5,
        mean_us: p50_us * 1.1,
        p50_us,
        p90_us: p50_us * 1.6,
        p99_us: p50_us * 3.0,
        p999_us: p50_us * 5.0,
        relative_error: 1.0 / 1024.0,
        max_us,
    }
}

fn rtf(last_1s: f64, last_10s: f64, total: f64, wall_source: WallSource) -> RtfStats {
    RtfStats {
        last_1s: Some(last_1s),
        last_10s: Some(last_10s),
        total: Some(total),
        worst_1s: Some(last_1s.min(last_10s) - 0.05),
        worst_1s_at_s: Some(7.0),
        wall_source,
    }
}

fn rate(hz: f64, expected_hz: Option<f64>) -> RateStats {
    RateStats {
        wall_hz_1s: Some(hz),
        wall_hz: Some(hz * 0.99),
        sim_hz: Some(20.0),
        expected_hz,
        expected_wall_hz: expected_hz,
        interarrival: Some(SpreadMs {
            count: 249,
            mean_ms: 1000.0 / hz,
            min_ms: 1000.0 / hz - 3.0,
            max_ms: 1000.0 / hz + 12.0,
            std_dev_ms: 1.4,
        }),
    }
}

fn healthy_dummy() -> DummySnapshot {
    DummySnapshot {
        id: 0,
        name: "Dummy0".to_owned(),
        transport: Transport::Udp,
        source: "127.0.0.1:50123".to_owned(),
        session: 0,
        state: DummyState::Active,
        messages: 250,
        dt_s: Some(0.05),
        last_sim_time_s: Some(12.45),
        last_step: Some(249),
        rtf: rtf(0.998, 0.995, 0.996, WallSource::SenderWall),
        rate: rate(19.96, Some(20.0)),
        latency: Some(latency(182.0, 1_250.0)),
        jitter_rfc3550_us: Some(21.5),
        loss: Some(LossStats {
            expected: 250,
            received: 250,
            lost: 0,
            loss_pct: 0.0,
            duplicates: 0,
            reordered: 0,
            missed_steps: 0,
        }),
        rtt: None,
        clock_warnings: 0,
        clock: None,
        bye: None,
        off_target: false,
    }
}

fn off_target_dummy() -> DummySnapshot {
    DummySnapshot {
        id: 1,
        name: "Dummy1".to_owned(),
        transport: Transport::Tcp,
        source: "127.0.0.1:50124".to_owned(),
        session: 1,
        state: DummyState::Active,
        messages: 180,
        dt_s: Some(0.05),
        last_sim_time_s: Some(9.0),
        last_step: Some(180),
        rtf: rtf(0.62, 0.81, 0.85, WallSource::SenderWall),
        rate: rate(12.4, Some(20.0)),
        latency: Some(latency(240.0, 9_800.0)),
        jitter_rfc3550_us: Some(310.0),
        loss: Some(LossStats {
            expected: 184,
            received: 180,
            lost: 4,
            loss_pct: 100.0 * 4.0 / 184.0,
            duplicates: 1,
            reordered: 2,
            missed_steps: 3,
        }),
        rtt: Some(latency(420.0, 2_100.0)),
        clock_warnings: 2,
        clock: None,
        bye: None,
        off_target: true,
    }
}

fn legacy_dummy() -> DummySnapshot {
    DummySnapshot {
        id: 2,
        name: "legacy-2".to_owned(),
        transport: Transport::LegacyUdp,
        source: "127.0.0.1:50200".to_owned(),
        session: 0,
        state: DummyState::Idle,
        messages: 90,
        dt_s: None,
        last_sim_time_s: Some(4.5),
        last_step: None,
        rtf: RtfStats {
            last_1s: None,
            last_10s: Some(0.97),
            total: Some(0.97),
            worst_1s: None,
            worst_1s_at_s: None,
            wall_source: WallSource::ReceiveTime,
        },
        rate: RateStats {
            wall_hz_1s: None,
            wall_hz: Some(19.4),
            sim_hz: Some(20.0),
            expected_hz: None,
            expected_wall_hz: None,
            interarrival: None,
        },
        latency: None,
        jitter_rfc3550_us: None,
        loss: None,
        rtt: None,
        clock_warnings: 0,
        clock: None,
        bye: None,
        off_target: false,
    }
}

fn sim_snapshot() -> SimSnapshot {
    SimSnapshot {
        state: "running".to_owned(),
        sim_time_s: Some(12.45),
        rtf: rtf(0.97, 0.96, 0.96, WallSource::RemotePoll),
        remote_rtt: Some(latency(310.0, 2_900.0)),
        remote_rtt_idle: None,
        version: Some("4.6.0 rev 18".to_owned()),
        disconnected_s: 0.0,
        stepping: Some(SteppingSnapshot {
            steps: 249,
            steps_per_s: 19.4,
            achieved_rtf: 0.97,
            target_rtf: 1.0,
            pacing_error: Some(-0.03),
        }),
    }
}

fn rejected_source() -> SourceErrors {
    SourceErrors {
        source: "10.0.0.9:4000".to_owned(),
        total: 3,
        by_reason: [("bad_version".to_owned(), 3)].into_iter().collect(),
    }
}
