//! Hand-computed scenarios for [`DummyMetrics`] on synthetic timelines, including the
//! "done when" numbers the aggregator relies on. Every expected value is worked out in the
//! comment beside it.

use super::*;
use crate::wire::{Bye, NO_RTT};

const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
/// Run start: an arbitrary but realistic Unix time.
const T0: i64 = 1_763_700_000 * S;

fn cfg() -> MetricsConfig {
    MetricsConfig {
        run_start_ns: T0,
        ..MetricsConfig::default()
    }
}

fn info(id: u32, dt_s: Option<f64>, transport: Transport) -> DummyInfo {
    DummyInfo {
        id,
        name: format!("Dummy{id}"),
        transport,
        dt_s,
        source: ([127, 0, 0, 1], 50000).into(),
    }
}

fn v1(id: u32) -> DummyMetrics {
    DummyMetrics::new(info(id, Some(0.05), Transport::Udp), &cfg())
}

/// A sender running pass k at sender wall time `T0 + k·period`, simulation time `k·dt`,
/// arriving `latency` later (kernel stamp) and read by user space `backlog` after that.
#[derive(Debug, Clone, Copy)]
struct Sender {
    period_ns: i64,
    dt_s: f64,
    latency_ns: i64,
    backlog_ns: i64,
    clock_offset_ns: i64,
}

impl Sender {
    fn rtf(rtf: f64) -> Self {
        Self {
            period_ns: (50.0 * MS as f64 / rtf) as i64,
            dt_s: 0.05,
            latency_ns: 300_000,
            backlog_ns: 20_000,
            clock_offset_ns: 0,
        }
    }

    fn wall(&self, k: u32) -> i64 {
        T0 + i64::from(k) * self.period_ns
    }

    /// The STAMP of pass `k` with seq `seq`, sent at sender wall time `wall`.
    fn stamp_at(&self, seq: u32, k: u32, wall: i64) -> Sample {
        let recv = wall + self.latency_ns;
        Sample {
            seq: Some(seq),
            step: Some(k),
            sim_time_s: f64::from(k) * self.dt_s,
            sent_unix_ns: Some(wall + self.clock_offset_ns),
            recv_unix_ns: recv,
            read_unix_ns: recv + self.backlog_ns,
            recv_clock: RecvClock::Kernel,
            rtt_us: None,
        }
    }

    fn stamp(&self, k: u32) -> Sample {
        self.stamp_at(k, k, self.wall(k))
    }
}

fn feed(m: &mut DummyMetrics, samples: impl IntoIterator<Item = Sample>) -> Option<i64> {
    let c = cfg();
    let mut last = None;
    for s in samples {
        let out = m.record(&s, &c);
        assert_eq!(out.new_session, None, "unexpected new session at {s:?}");
        last = Some(s.recv_unix_ns);
    }
    last
}

fn near(v: Option<f64>, want: f64, tol: f64) -> bool {
    v.is_some_and(|v| (v - want).abs() <= tol)
}

#[test]
fn done_when_four_dummies_20hz_3s() {
    // 20 Hz for 3 s: passes 0..=59 → 60 messages, sender span 2.95 s.
    let tx = Sender::rtf(1.0);
    for id in 0..4 {
        let mut m = v1(id);
        let now = feed(&mut m, (0..60).map(|k| tx.stamp(k))).unwrap();
        let s = m.snapshot(now, &cfg());
        assert_eq!(s.messages, 60);
        assert_eq!(s.state, DummyState::Active);
        assert!(near(s.rtf.last_1s, 1.0, 0.02), "{:?}", s.rtf);
        assert!(near(s.rtf.total, 1.0, 0.02), "{:?}", s.rtf);
        assert_eq!(s.rtf.last_10s, None, "3 s of data do not span 10 s");
        assert_eq!(s.rtf.wall_source, WallSource::SenderWall);
        // (60 − 1) / 2.95 s = 20 Hz exactly; 20 samples in the last second.
        assert!(near(s.rate.wall_hz, 20.0, 0.5));
        assert!(near(s.rate.wall_hz_1s, 20.0, 0.5));
        assert!(near(s.rate.sim_hz, 20.0, 1e-9));
        assert_eq!(s.rate.expected_hz, Some(20.0));
        let ia = s.rate.interarrival.unwrap();
        assert_eq!(ia.count, 59);
        assert!((ia.mean_ms - 50.0).abs() < 1e-9 && ia.std_dev_ms < 1e-9);
        let loss = s.loss.unwrap();
        assert_eq!(
            (loss.expected, loss.received, loss.lost, loss.missed_steps),
            (60, 60, 0, 0)
        );
        assert_eq!(loss.loss_pct, 0.0);
        // Constant 300 µs latency: every percentile is 300, jitter 0.
        let lat = s.latency.unwrap();
        assert_eq!(
            (lat.count, lat.p50_us, lat.p999_us, lat.max_us),
            (60, 300.0, 300.0, 300.0)
        );
        assert_eq!(s.jitter_rfc3550_us, Some(0.0));
        assert_eq!(s.rtt, None);
        assert!(!s.off_target);
    }
}

#[test]
fn done_when_rtf_half_with_five_percent_skipped_seqs() {
    // RTF 0.5: a 50 ms pass every 100 ms of wall time, for 20 s (200 passes). Every seq with
    // k mod 20 = 10 is lost on the way: 10 of 200 → 5 %.
    let tx = Sender::rtf(0.5);
    let mut m = v1(1);
    let now = feed(
        &mut m,
        (0..200).filter(|k| k % 20 != 10).map(|k| tx.stamp(k)),
    )
    .unwrap();
    let s = m.snapshot(now, &cfg());
    for v in [s.rtf.last_1s, s.rtf.last_10s, s.rtf.total, s.rtf.worst_1s] {
        assert!(near(v, 0.5, 0.02), "{:?}", s.rtf);
    }
    let loss = s.loss.unwrap();
    assert_eq!((loss.expected, loss.received, loss.lost), (200, 190, 10));
    assert!((loss.loss_pct - 5.0).abs() <= 1.0);
    // Lost datagrams are not missed passes: seq and step moved together.
    assert_eq!(loss.missed_steps, 0);
    // 190 received over 19.9 s: (190 − 1) / 19.9 s. The last 1 s window (18.9 s, 19.9 s]
    // holds passes 190..=199 without the lost 190: 9 messages.
    assert!(near(s.rate.wall_hz, 189.0 / 19.9, 1e-9), "{:?}", s.rate);
    assert!(near(s.rate.wall_hz_1s, 9.0, 1e-9));
    assert!(s.off_target, "RTF 0.5 is off the default target 1.0 ± 10 %");
}

#[test]
fn duplicates_are_counted_not_lost() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    // Passes 0..40, pass 7 delivered three times, pass 30 twice: 3 extra copies.
    let mut samples: Vec<Sample> = (0..40).map(|k| tx.stamp(k)).collect();
    samples.insert(8, tx.stamp(7));
    samples.insert(8, tx.stamp(7));
    samples.insert(33, tx.stamp(30));
    let now = feed(&mut m, samples).unwrap();
    let loss = m.snapshot(now, &cfg()).loss.unwrap();
    assert_eq!(
        (loss.expected, loss.received, loss.lost, loss.duplicates),
        (40, 40, 0, 3)
    );
    assert_eq!(loss.reordered, 0);
}

#[test]
fn reordering_is_counted_and_does_not_start_a_session() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    // Swap 5↔6 and 20↔21 in arrival order: 6 then 5, 21 then 20 → 2 reordered.
    let mut order: Vec<u32> = (0..30).collect();
    order.swap(5, 6);
    order.swap(20, 21);
    let now = feed(&mut m, order.into_iter().map(|k| tx.stamp(k))).unwrap();
    let s = m.snapshot(now, &cfg());
    let loss = s.loss.unwrap();
    assert_eq!((loss.lost, loss.reordered, loss.duplicates), (0, 2, 0));
    assert_eq!(s.session, 0);
}

#[test]
fn two_second_stall_shows_in_worst_window() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    // Passes 0..100 every 50 ms, then pass 100 comes 2.05 s after pass 99, then 100 more.
    let stall = 2 * S;
    let samples = (0..200).map(|k| {
        let extra = if k >= 100 { stall } else { 0 };
        tx.stamp_at(k, k, tx.wall(k) + extra)
    });
    let now = feed(&mut m, samples).unwrap();
    let s = m.snapshot(now, &cfg());
    // Inside the gap the simulation advanced 0.05 s in 2.05 s: RTF ≈ 0.024.
    assert!(s.rtf.worst_1s.unwrap() < 0.1, "{:?}", s.rtf);
    assert!(near(s.rtf.last_1s, 1.0, 1e-9));
    // Total: 9.95 s of simulation over 11.95 s of wall time.
    assert!(near(s.rtf.total, 9.95 / 11.95, 1e-9));
}

#[test]
fn bursts_of_four_passes_at_rtf_one() {
    // CoppeliaSim with a GUI: 4 passes back to back (1 ms apart), every 200 ms; 12 s.
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    let samples = (0..240).map(|k| {
        let wall = T0 + i64::from(k / 4) * 200 * MS + i64::from(k % 4) * MS;
        tx.stamp_at(k, k, wall)
    });
    let now = feed(&mut m, samples).unwrap();
    for at in [now, now + 100 * MS] {
        let s = m.snapshot(at, &cfg());
        assert!(near(s.rtf.last_1s, 1.0, 0.02), "{:?}", s.rtf);
        assert!(near(s.rtf.last_10s, 1.0, 0.02), "{:?}", s.rtf);
        assert!(near(s.rtf.worst_1s, 1.0, 0.02), "{:?}", s.rtf);
        assert!(near(s.rate.wall_hz_1s, 20.0, 1e-9));
    }
}

#[test]
fn legacy_dummy_has_no_loss_latency_or_jitter() {
    let mut m = DummyMetrics::new(info(3, None, Transport::LegacyUdp), &cfg());
    let samples = (0..60).map(|k| {
        let recv = T0 + i64::from(k) * 50 * MS;
        Sample {
            seq: None,
            step: None,
            sim_time_s: f64::from(k) * 0.05,
            sent_unix_ns: None,
            recv_unix_ns: recv,
            read_unix_ns: recv,
            recv_clock: RecvClock::User,
            rtt_us: None,
        }
    });
    let now = feed(&mut m, samples).unwrap();
    let s = m.snapshot(now, &cfg());
    assert_eq!(s.loss, None);
    assert_eq!(s.latency, None);
    assert_eq!(s.jitter_rfc3550_us, None);
    assert_eq!(s.rate.expected_hz, None);
    assert_eq!(s.last_step, None);
    // RTF and rates from receive times.
    assert_eq!(s.rtf.wall_source, WallSource::ReceiveTime);
    assert!(near(s.rtf.last_1s, 1.0, 1e-9));
    assert!(near(s.rate.wall_hz, 20.0, 1e-9));
}

#[test]
fn seq_restart_starts_a_new_session_and_keeps_the_old_snapshot() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    feed(&mut m, (0..40).map(|k| tx.stamp(k)));
    // The simulation is restarted: seq 0, pass 0, 3 s later on the sender's clock.
    let restart = tx.stamp_at(0, 0, tx.wall(39) + 3 * S);
    let out = m.record(&restart, &cfg());
    let old = out.new_session.expect("new session");
    assert_eq!((old.dummy_id, old.session), (1, 0));
    assert!(old.reason.contains("seq restarted"), "{}", old.reason);
    assert_eq!(old.final_snapshot.messages, 40);
    assert!(near(old.final_snapshot.rtf.total, 1.0, 1e-9));
    let s = m.snapshot(restart.recv_unix_ns, &cfg());
    assert_eq!((s.session, s.messages), (1, 1));
    assert_eq!(s.loss.unwrap().expected, 1);
}

#[test]
fn legacy_sim_time_restart_starts_a_new_session() {
    let mut m = DummyMetrics::new(info(3, None, Transport::LegacyUdp), &cfg());
    let legacy = |t: f64, recv: i64| Sample {
        seq: None,
        step: None,
        sim_time_s: t,
        sent_unix_ns: None,
        recv_unix_ns: recv,
        read_unix_ns: recv,
        recv_clock: RecvClock::User,
        rtt_us: None,
    };
    assert_eq!(m.record(&legacy(1.0, T0), &cfg()).new_session, None);
    assert_eq!(
        m.record(&legacy(1.0, T0 + MS), &cfg()).new_session,
        None,
        "same time: no restart"
    );
    let out = m.record(&legacy(0.0, T0 + 2 * MS), &cfg());
    assert!(out
        .new_session
        .unwrap()
        .reason
        .contains("simulation time restarted"));
    assert_eq!(m.session(), 1);
}

#[test]
fn negative_latency_warns_and_stays_out_of_the_histogram() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    feed(&mut m, (0..10).map(|k| tx.stamp(k)));
    // Pass 10 claims to be sent 2 ms after it was received: the clocks disagree.
    let mut bad = tx.stamp(10);
    bad.sent_unix_ns = Some(bad.recv_unix_ns + 2 * MS);
    let out = m.record(&bad, &cfg());
    let msg = out.clock_warning.expect("warning");
    assert!(
        msg.contains("clocks disagree") && msg.contains("-2000 µs"),
        "{msg}"
    );
    // An implausibly large latency (beyond 10 s by default) too.
    let mut late = tx.stamp(11);
    late.sent_unix_ns = Some(late.recv_unix_ns - 11 * S);
    assert!(m.record(&late, &cfg()).clock_warning.is_some());
    let s = m.snapshot(late.recv_unix_ns, &cfg());
    assert_eq!(s.clock_warnings, 2);
    let lat = s.latency.unwrap();
    assert_eq!((lat.count, lat.min_us, lat.max_us), (10, 300.0, 300.0));
    assert_eq!(s.messages, 12, "the messages still count");
}

#[test]
fn sender_clock_ahead_still_gives_windows() {
    // The sender's clock is 5 s ahead: every latency is negative (warnings), but RTF windows
    // live on the sender's clock and `now` is mapped onto it.
    let mut tx = Sender::rtf(1.0);
    tx.clock_offset_ns = 5 * S;
    let mut m = v1(1);
    let c = cfg();
    let mut now = 0;
    for k in 0..60 {
        let s = tx.stamp(k);
        assert!(m.record(&s, &c).clock_warning.is_some());
        now = s.recv_unix_ns;
    }
    let s = m.snapshot(now + 200 * MS, &c);
    assert!(near(s.rtf.last_1s, 1.0, 1e-9), "{:?}", s.rtf);
    assert_eq!(s.latency, None);
    assert_eq!(
        s.jitter_rfc3550_us,
        Some(0.0),
        "jitter is immune to a clock offset"
    );
    assert_eq!(s.clock_warnings, 60);
}

#[test]
fn warm_up_samples_are_excluded() {
    let c = MetricsConfig {
        warmup_ns: S,
        ..cfg()
    };
    let tx = Sender::rtf(1.0);
    let mut m = DummyMetrics::new(info(1, Some(0.05), Transport::Udp), &c);
    let mut excluded = 0;
    for k in 0..60 {
        if m.record(&tx.stamp(k), &c).excluded_warmup {
            excluded += 1;
        }
    }
    // Passes 0..=19 arrive at T0 + k·50 ms + 0.3 ms < T0 + 1 s: 20 excluded.
    assert_eq!(excluded, 20);
    let s = m.snapshot(tx.stamp(59).recv_unix_ns, &c);
    assert_eq!(s.messages, 40);
    let loss = s.loss.unwrap();
    assert_eq!(
        (loss.expected, loss.lost),
        (40, 0),
        "counting starts at seq 20"
    );
    assert_eq!(s.latency.unwrap().count, 40);
    assert_eq!(s.last_sim_time_s, Some(59.0 * 0.05));
}

#[test]
fn hello_bye_and_states() {
    let tx = Sender::rtf(1.0);
    let c = cfg();
    let mut m = v1(1);
    assert_eq!(m.snapshot(T0, &c).state, DummyState::Registered);
    // A HELLO before any stamp only updates the identity.
    let mut renamed = info(1, Some(0.01), Transport::Udp);
    renamed.name = "Renamed".to_owned();
    assert_eq!(m.on_hello(renamed, T0), None);
    assert_eq!(m.info().name, "Renamed");
    let mut m = v1(1);
    let now = feed(&mut m, (0..40).map(|k| tx.stamp(k))).unwrap();
    assert_eq!(m.snapshot(now, &c).state, DummyState::Active);
    // Silent for longer than idle_after (2 s): Idle, and the 1 s RTF reads 0 (stall).
    let later = m.snapshot(now + 3 * S, &c);
    assert_eq!(later.state, DummyState::Idle);
    assert_eq!(later.rtf.last_1s, Some(0.0));
    // BYE: the last two stamps (seq 40, 41) never arrived → tail loss; state Ended, and the
    // RTF stays as it was at the BYE however late the snapshot.
    let bye = Bye {
        dummy_id: 1,
        last_seq: 41,
        stamps_sent: 42,
        send_errors: 0,
        echoes_received: 0,
    };
    m.on_bye(&bye, now + 60 * MS);
    let ended = m.snapshot(now + 30 * S, &c);
    assert_eq!(ended.state, DummyState::Ended);
    assert!(near(ended.rtf.last_1s, 1.0, 1e-9));
    let loss = ended.loss.unwrap();
    assert_eq!((loss.expected, loss.lost), (42, 2));
    assert_eq!(m.bye().map(|b| b.0), Some(bye));
    // A new HELLO after stamps: new session; the old one's snapshot is returned.
    let old = m
        .on_hello(info(1, Some(0.05), Transport::Udp), now + 40 * S)
        .unwrap();
    assert_eq!(old.final_snapshot.state, DummyState::Ended);
    assert_eq!(old.final_snapshot.messages, 40);
    assert!(old.reason.contains("HELLO"));
    let s = m.snapshot(now + 40 * S, &c);
    assert_eq!(
        (s.session, s.messages, s.state),
        (1, 0, DummyState::Registered)
    );
}

#[test]
fn reset_clears_statistics_keeps_identity() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(7);
    let now = feed(&mut m, (0..40).map(|k| tx.stamp(k))).unwrap();
    m.reset(now);
    let s = m.snapshot(now, &cfg());
    assert_eq!((s.id, s.session, s.messages), (7, 0, 0));
    assert_eq!((s.latency, s.loss, s.rtf.total), (None, None, None));
    // Continuing the same run after a reset is not a restart.
    let now = feed(&mut m, (40..80).map(|k| tx.stamp(k))).unwrap();
    let s = m.snapshot(now, &cfg());
    assert_eq!((s.messages, s.session), (40, 0));
    assert_eq!(s.loss.unwrap().expected, 40);
}

#[test]
fn rtt_distribution() {
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    let samples = (0..10).map(|k| {
        let mut s = tx.stamp(k);
        s.recv_clock = RecvClock::User;
        s.read_unix_ns = s.recv_unix_ns;
        // First stamp has no round trip yet; then 1000, 2000, ... µs.
        s.rtt_us = Some(if k == 0 { NO_RTT } else { k * 1000 });
        s
    });
    let now = feed(&mut m, samples).unwrap();
    let s = m.snapshot(now, &cfg());
    let rtt = s.rtt.unwrap();
    // 1000..=9000 µs: nearest-rank p50 is the 5th value, 5000. Above 2047 µs HdrHistogram
    // buckets are wider than 1 µs and it reports the bucket's highest value (≤ 0.1 % above).
    assert_eq!((rtt.count, rtt.min_us, rtt.max_us), (9, 1000.0, 9000.0));
    assert!((5000.0..=5005.0).contains(&rtt.p50_us), "{rtt:?}");
}

#[test]
fn jitter_hand_computed_through_the_dummy() {
    // Transit 300, 316, 300 µs: J = 1 after the 2nd, 1 + 15/16 after the 3rd (RFC 3550 A.8).
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    let samples = [0u32, 1, 2].map(|k| {
        let mut s = tx.stamp(k);
        if k == 1 {
            s.recv_unix_ns += 16_000;
            s.read_unix_ns += 16_000;
        }
        s
    });
    let now = feed(&mut m, samples).unwrap();
    assert_eq!(
        m.snapshot(now, &cfg()).jitter_rfc3550_us,
        Some(1.0 + 15.0 / 16.0)
    );
}

#[test]
fn missed_steps_from_the_step_index() {
    // The sender sent seq 0..10 for passes 0..5 and 8..13: passes 5, 6, 7 produced no STAMP.
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    let samples = (0..10).map(|seq| {
        let k = if seq < 5 { seq } else { seq + 3 };
        tx.stamp_at(seq, k, tx.wall(k))
    });
    let now = feed(&mut m, samples).unwrap();
    let loss = m.snapshot(now, &cfg()).loss.unwrap();
    assert_eq!((loss.lost, loss.missed_steps), (0, 3));
}

#[test]
fn one_hour_at_20hz_keeps_memory_bounded() {
    // 72,000 STAMPs: the windows keep 10 s worth (≈ 200 samples + 1), never the whole run.
    let tx = Sender::rtf(1.0);
    let mut m = v1(1);
    let mut max_stored = 0;
    let mut now = 0;
    for k in 0..72_000 {
        let s = tx.stamp(k);
        m.record(&s, &cfg());
        max_stored = max_stored.max(m.stored_samples());
        now = s.recv_unix_ns;
    }
    assert!(max_stored <= 202, "{max_stored}");
    let s = m.snapshot(now, &cfg());
    assert_eq!(s.messages, 72_000);
    assert!(near(s.rtf.total, 1.0, 1e-9) && near(s.rtf.last_10s, 1.0, 1e-9));
    assert_eq!(s.loss.unwrap().lost, 0);
}
