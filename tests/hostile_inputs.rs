//! Issue 11 §3, the hostile-input matrix, driven through the pure core with synthetic time:
//! the [`Aggregator`] that owns every dummy's statistics gets what the receivers would hand
//! it, datagram by datagram, at wall times the test chooses. No socket, no clock, so every
//! cell is exact and independent of machine speed. (Cells that only exist on a real socket
//! are in `tests/hostile_sockets.rs`; the remote API's in `tests/hostile_remote_api.rs`.)
//!
//! Every cell checks the four promises of the matrix:
//! 1. no crash (the cell runs to the end);
//! 2. a counter in the summary (`RunSnapshot`, i.e. `summary.json`'s `final`) says how many;
//! 3. it is logged, rate-limited: at least one notice of the expected kind, and a bounded
//!    number however long the attack lasts;
//! 4. the other dummies' metrics are unchanged: a well-behaved dummy's snapshot is equal,
//!    field for field, to its snapshot in the same run without the hostile input.
//!
//! The matrix with every cell, its counter and this file's test names: docs/RELIABILITY.md.

use std::net::SocketAddr;

use coppelia_bridge::event::{Arrival, EventKind, Notice, ReceiverStatus, Refusal, Source};
use coppelia_bridge::metrics::aggregator::{
    Admission, Aggregator, MAX_REJECT_SOURCES, MAX_SESSIONS_KEPT,
};
use coppelia_bridge::metrics::{DummySnapshot, MetricsConfig, RunSnapshot};
use coppelia_bridge::wire::{classify, Bye, Datagram, Echo, Hello, Message, Stamp, NO_RTT};

const MS: i64 = 1_000_000;
const S: i64 = 1_000 * MS;
const T0: i64 = 1_700_000_000 * S;
/// Passes of the well-behaved dummy (20 Hz for 20 s).
const PASSES: u32 = 400;
/// Most notices a 20 s attack may produce per kind: the aggregator logs at most
/// `NOTICE_BURST` per kind per 10 s window, plus one "n more not logged" line per window.
const MAX_NOTICES_PER_KIND: usize = 3 * (100 + 1);

fn udp(ip: [u8; 4], port: u16) -> Source {
    Source::Udp(SocketAddr::from((ip, port)))
}

/// The well-behaved dummy 0 and the hostile host.
fn good() -> Source {
    udp([10, 0, 0, 1], 5000)
}
fn hostile(port: u16) -> Source {
    udp([10, 0, 0, 66], port)
}

fn hello(id: u32, name: &str) -> Vec<u8> {
    Message::Hello(Hello {
        dummy_id: id,
        dt_s: 0.05,
        script_version: 1,
        flags: 0,
        name: name.into(),
    })
    .encode()
}

fn stamp_at(id: u32, seq: u32, sim_time_s: f64, sent_ns: i64) -> Vec<u8> {
    Message::Stamp(Stamp {
        dummy_id: id,
        seq,
        step: seq,
        sim_time_s,
        sent_unix_s: sent_ns as f64 / 1e9,
        rtt_us: NO_RTT,
    })
    .encode()
}

fn stamp(id: u32, seq: u32, sent_ns: i64) -> Vec<u8> {
    stamp_at(id, seq, f64::from(seq) * 0.05, sent_ns)
}

/// What the hostile side sends during pass `k` (at wall time `t`).
type Attack<'a> = dyn FnMut(u32, i64) -> Vec<(Source, Vec<u8>)> + 'a;

/// What a cell ran into.
struct Ran {
    snap: RunSnapshot,
    notices: Vec<Notice>,
    /// Receiver status events handled along the way (socket-level cells inject them).
    statuses: usize,
    /// Messages of dummies' earlier sessions (not in `snap.dummies`).
    earlier_messages: u64,
}

impl Ran {
    fn good(&self) -> &DummySnapshot {
        self.snap
            .dummies
            .iter()
            .find(|d| d.id == 0)
            .expect("the well-behaved dummy")
    }

    fn count(&self, kind: EventKind) -> usize {
        self.notices.iter().filter(|n| n.kind == kind).count()
    }

    fn rejected(&self, reason: &str) -> u64 {
        self.snap
            .rejected
            .iter()
            .filter_map(|r| r.by_reason.get(reason))
            .sum()
    }

    /// Promise 3: logged, and rate-limited.
    fn logged(&self, kind: EventKind) {
        let n = self.count(kind);
        assert!(n >= 1, "no {kind} notice at all");
        assert!(
            n <= MAX_NOTICES_PER_KIND,
            "{n} {kind} notices: the log is not rate-limited"
        );
    }
}

fn new_aggregator(admission: Admission) -> Aggregator {
    Aggregator::new(MetricsConfig {
        run_start_ns: T0,
        ..MetricsConfig::default()
    })
    .with_admission(admission)
}

fn feed(agg: &mut Aggregator, source: Source, payload: &[u8], t: i64, notices: &mut Vec<Notice>) {
    let out = agg.arrival(
        Arrival {
            source,
            payload,
            kernel_ns: Some(t),
            read_ns: t + 20_000,
            truncated: payload.len() > 2048,
        },
        t + 20_000,
    );
    notices.extend(out.notices);
}

/// 20 s of dummy 0 at 20 Hz, with `attack` interleaved 1 ms after each of its STAMPs, and
/// `statuses` (receiver status events) handled at pass `k`.
fn run_with(
    admission: Admission,
    attack: &mut Attack<'_>,
    statuses: &mut dyn FnMut(u32) -> Vec<ReceiverStatus>,
) -> Ran {
    let mut agg = new_aggregator(admission);
    let mut notices = Vec::new();
    let mut handled = 0;
    feed(&mut agg, good(), &hello(0, "Dummy0"), T0, &mut notices);
    for k in 0..PASSES {
        let t = T0 + S + i64::from(k) * 50 * MS;
        feed(&mut agg, good(), &stamp(0, k, t - 200_000), t, &mut notices);
        for (source, payload) in attack(k, t + MS) {
            feed(&mut agg, source, &payload, t + MS, &mut notices);
        }
        for s in statuses(k) {
            handled += 1;
            notices.extend(agg.status(&s, t + 2 * MS).notices);
        }
    }
    let end = T0 + S + i64::from(PASSES) * 50 * MS;
    let ran = Ran {
        snap: agg.snapshot(end),
        notices,
        statuses: handled,
        earlier_messages: agg
            .sessions()
            .iter()
            .map(|s| s.final_snapshot.messages)
            .sum(),
    };
    if ran.snap.dummies.len() > 1 || !ran.snap.rejected.is_empty() || handled > 0 {
        print_figures(&ran); // not for the control runs
    }
    ran
}

fn run(attack: &mut Attack<'_>) -> Ran {
    run_with(Admission::default(), attack, &mut |_| vec![])
}

/// The figures of a cell, one line on stdout (`--nocapture` shows them; docs/RELIABILITY.md
/// quotes them): rejects per reason, non-zero `refused` counters, notices per kind.
fn print_figures(ran: &Ran) {
    let mut reasons = std::collections::BTreeMap::<&str, u64>::new();
    for r in &ran.snap.rejected {
        for (reason, n) in &r.by_reason {
            *reasons.entry(reason.as_str()).or_default() += n;
        }
    }
    let refused: Vec<String> = ran
        .snap
        .refused
        .named()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for n in &ran.notices {
        *kinds.entry(n.kind.as_str()).or_default() += 1;
    }
    println!(
        "FIGURES {}: dummies={} rejected={reasons:?} refused=[{}] notices={kinds:?}",
        std::thread::current().name().unwrap_or("?"),
        ran.snap.dummies.len(),
        refused.join(", ")
    );
}

/// Promise 4: dummy 0 is exactly as it is without the attack.
fn assert_untouched(ran: &Ran) {
    let control = run(&mut |_, _| vec![]);
    assert_eq!(ran.good(), control.good(), "the well-behaved dummy changed");
    assert_eq!(control.good().messages, u64::from(PASSES));
}

/// A small deterministic generator (xorshift64), so the random cells repeat exactly.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max_len: u64) -> Vec<u8> {
        let len = (self.next() % (max_len + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn cell_random_datagrams() {
    // 10 random datagrams of 0–100 bytes per pass, from one source. A random datagram that
    // happens to be ASCII digits is a valid legacy registration, and once registered an
    // 8-byte one is a legacy time; all others are rejected.
    let mut rng = Rng(0x5eed);
    let mut sent = 0u64;
    let mut registrations = 0u64;
    let ran = run(&mut |_, _| {
        sent += 10;
        let batch: Vec<_> = (0..10).map(|_| (hostile(7000), rng.bytes(100))).collect();
        registrations += batch
            .iter()
            .filter(|(_, b)| matches!(classify(b, false), Datagram::LegacyRegister(_)))
            .count() as u64;
        batch
    });
    let rejected: u64 = ran.snap.rejected.iter().map(|r| r.total).sum();
    let times: u64 = ran
        .snap
        .dummies
        .iter()
        .filter(|d| d.id != 0)
        .map(|d| d.messages)
        .sum();
    assert_eq!(
        rejected + registrations + times + ran.earlier_messages,
        sent,
        "every datagram is accounted for"
    );
    assert!(rejected >= sent * 9 / 10);
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_truncated_datagrams() {
    // Every prefix of a valid STAMP, HELLO and BYE: too short for a header, or the wrong
    // length for its kind.
    let full = [
        stamp(9, 1, T0),
        hello(9, "Dummy9"),
        Message::Bye(Bye {
            dummy_id: 9,
            last_seq: 1,
            stamps_sent: 2,
            send_errors: 0,
            echoes_received: 0,
        })
        .encode(),
    ];
    let ran = run(&mut |k, _| {
        let m = &full[k as usize % 3];
        let cut = 1 + k as usize % (m.len() - 1);
        vec![(hostile(7001), m[..cut].to_vec())]
    });
    assert!(ran.rejected("too_short") > 0 && ran.rejected("bad_length") > 0);
    // A one-byte prefix ("C") is not even the magic: unrecognised.
    assert_eq!(
        ran.rejected("too_short") + ran.rejected("bad_length") + ran.rejected("unrecognised"),
        u64::from(PASSES)
    );
    assert_eq!(ran.snap.dummies.len(), 1, "no dummy from a cut message");
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_oversized_datagrams() {
    // What the receiver hands over for a datagram longer than its 2048-byte buffer: the first
    // 2048 bytes, flagged truncated. Rejected whatever they contain (here a valid STAMP start).
    let ran = run(&mut |k, _| {
        let mut big = stamp(9, k, T0);
        big.resize(2049, b'x');
        vec![(hostile(7002), big)]
    });
    assert_eq!(ran.rejected("oversized"), u64::from(PASSES));
    assert_eq!(ran.snap.dummies.len(), 1);
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_empty_datagrams() {
    let ran = run(&mut |_, _| vec![(hostile(7003), vec![])]);
    assert_eq!(ran.rejected("unrecognised"), u64::from(PASSES));
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_wrong_versions_and_kinds() {
    // Version 0, 2 and 255; kind 0, 6 and 255; and an ECHO, which only the bridge sends.
    let echo = Message::Echo(Echo {
        dummy_id: 0,
        seq: 1,
        sent_unix_s: 1.0,
        bridge_recv_unix_s: 1.0,
        bridge_send_unix_s: 1.0,
    })
    .encode();
    let ran = run(&mut |k, _| {
        let mut s = stamp(0, k, T0);
        match k % 7 {
            0 => s[2] = 0,
            1 => s[2] = 2,
            2 => s[2] = 255,
            3 => s[3] = 0,
            4 => s[3] = 6,
            5 => s[3] = 255,
            _ => s = echo.clone(),
        }
        vec![(hostile(7004), s)]
    });
    let p = u64::from(PASSES);
    assert_eq!(ran.rejected("bad_version"), (p / 7) * 3 + (p % 7).min(3));
    assert_eq!(
        ran.rejected("unknown_kind") + ran.rejected("unexpected_echo"),
        p - ran.rejected("bad_version")
    );
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_non_finite_times() {
    // NaN, +inf and -inf as simulation time and as sender time, for dummy 0's own id.
    let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    let ran = run(&mut |k, t| {
        let v = bad[k as usize % 3];
        let mut s = stamp(0, k, t);
        let at = if k % 2 == 0 { 16 } else { 24 }; // sim_time_s or sent_unix_s
        s[at..at + 8].copy_from_slice(&v.to_le_bytes());
        vec![(good(), s)]
    });
    assert_eq!(ran.rejected("not_finite"), u64::from(PASSES));
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_negative_and_huge_simulation_times() {
    // A dummy of the hostile host sends simulation times no CoppeliaSim can reach: negative,
    // or beyond 10⁹ s (about 32 years). Refused before they reach any statistic.
    let times = [
        -1.0,
        -1e300,
        1e10,
        1e300,
        f64::MAX,
        -0.0 - f64::MIN_POSITIVE,
    ];
    let ran = run(&mut |k, t| {
        vec![(
            hostile(7005),
            stamp_at(9, k, times[k as usize % times.len()], t),
        )]
    });
    assert_eq!(ran.rejected("implausible_sim_time"), u64::from(PASSES));
    assert!(ran
        .snap
        .dummies
        .iter()
        .all(|d| d.id != 9 || d.messages == 0));
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_negative_and_huge_sender_times() {
    // Dummy 9's sender clock is absurd (negative, 1e300 s, i64 overflow as ns): its latencies
    // are counted as "clocks disagree" and left out; its RTF is its own business; nothing
    // overflows and nothing reaches dummy 0.
    let sent: [f64; 5] = [-1e9, 1e300, -1e300, 9.3e9, 1e-300];
    let ran = run(&mut |k, t| {
        let mut s = stamp(9, k, t);
        s[24..32].copy_from_slice(&sent[k as usize % sent.len()].to_le_bytes());
        vec![(hostile(7006), s)]
    });
    let d9 = ran.snap.dummies.iter().find(|d| d.id == 9).unwrap();
    assert_eq!(d9.messages, u64::from(PASSES));
    assert_eq!(
        d9.clock_warnings,
        u64::from(PASSES),
        "every latency is implausible"
    );
    assert!(
        d9.latency.is_none(),
        "no absurd latency enters the statistics"
    );
    ran.logged(EventKind::ClockWarning);
    assert_untouched(&ran);
}

#[test]
fn cell_seq_wrap_around_at_2_pow_32() {
    // Not an attack: a dummy whose seq passes u32::MAX → 0 (2³² STAMPs, or a script that
    // started high). Serial-number arithmetic (RFC 1982) keeps it one session without loss.
    let start = u32::MAX - 99;
    let ran = run(&mut |k, t| {
        let seq = start.wrapping_add(k);
        vec![(hostile(7007), stamp_at(9, seq, f64::from(k) * 0.05, t))]
    });
    let d9 = ran.snap.dummies.iter().find(|d| d.id == 9).unwrap();
    let loss = d9.loss.as_ref().unwrap();
    assert_eq!((d9.session, d9.messages), (0, u64::from(PASSES)));
    assert_eq!(
        (loss.expected, loss.lost, loss.duplicates, loss.reordered),
        (u64::from(PASSES), 0, 0, 0)
    );
    assert_eq!(
        ran.count(EventKind::SessionStarted),
        0,
        "a wrap is no restart"
    );
    assert_untouched(&ran);
}

#[test]
fn cell_spoofed_ids_from_another_host() {
    // The hostile host claims dummy 0 (HELLO, STAMPs with seqs far ahead, BYE) while it is
    // active and while it is silent: the id is pinned to 10.0.0.1, every claim is refused.
    let bye = Message::Bye(Bye {
        dummy_id: 0,
        last_seq: 0,
        stamps_sent: 0,
        send_errors: 0,
        echoes_received: 0,
    })
    .encode();
    let ran = run(&mut |k, t| {
        let m = match k % 3 {
            0 => hello(0, "Impostor"),
            1 => stamp(0, k + 1_000, t),
            _ => bye.clone(),
        };
        vec![(hostile(7008), m)]
    });
    assert_eq!(ran.rejected("id_pinned"), u64::from(PASSES));
    assert_eq!(ran.snap.refused.id_pinned, u64::from(PASSES));
    assert_eq!(ran.good().name, "Dummy0");
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_spoofed_ids_after_silence_need_allow_roaming() {
    // Dummy 0 goes silent after its last STAMP; 3 s later another host claims it. Pinned
    // (default): refused. With --allow-roaming: taken over, as before issue 11.
    let claim = |roaming: bool| {
        let mut agg = new_aggregator(Admission {
            allow_roaming: roaming,
            ..Admission::default()
        });
        let mut notices = Vec::new();
        feed(&mut agg, good(), &hello(0, "Dummy0"), T0, &mut notices);
        feed(&mut agg, good(), &stamp(0, 0, T0), T0, &mut notices);
        let t = T0 + 3 * S;
        feed(&mut agg, hostile(7009), &stamp(0, 1, t), t, &mut notices);
        (agg.snapshot(t), notices)
    };
    let (pinned, notices) = claim(false);
    assert_eq!(pinned.refused.id_pinned, 1);
    assert_eq!(pinned.dummies[0].messages, 1);
    assert!(notices
        .iter()
        .any(|n| n.kind == EventKind::Rejected && n.message.contains("--allow-roaming")));
    let (roaming, notices) = claim(true);
    assert_eq!(roaming.refused.id_pinned, 0);
    assert_eq!(roaming.dummies[0].messages, 2);
    assert!(notices.iter().any(|n| n.kind == EventKind::SourceChanged));
}

#[test]
fn cell_same_id_from_the_same_host_while_active() {
    // A second script with the same id on the dummy's own host (another port): refused
    // while the first sends (`duplicate_id`), as before issue 11.
    let ran = run(&mut |k, t| vec![(udp([10, 0, 0, 1], 5001), stamp(0, k + 500, t))]);
    assert_eq!(ran.rejected("duplicate_id"), u64::from(PASSES));
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_id_flood() {
    // 50 new ids per pass (20,000 in all) against --max-dummies 1000: 999 are admitted next to
    // dummy 0, the rest refused and counted; memory stops growing at the cap.
    let admission = Admission {
        max_dummies: 1000,
        ..Admission::default()
    };
    let mut next = 1u32;
    let ran = run_with(
        admission,
        &mut |_, t| {
            (0..50)
                .map(|_| {
                    next += 1;
                    (hostile(7010), stamp(next, 0, t))
                })
                .collect()
        },
        &mut |_| vec![],
    );
    assert_eq!(ran.snap.dummies.len(), 1000);
    assert_eq!(
        ran.snap.refused.over_max_dummies,
        u64::from(PASSES) * 50 - 999
    );
    assert_eq!(
        ran.rejected("max_dummies"),
        ran.snap.refused.over_max_dummies
    );
    ran.logged(EventKind::LimitReached);
    assert_eq!(
        ran.count(EventKind::Rejected),
        0,
        "one line per window, not one per source"
    );
    assert_untouched(&ran);
}

#[test]
fn cell_bye_flood_for_unknown_ids() {
    // BYEs for ids nobody registered take no memory (they used to create an empty route).
    let mut rng = Rng(77);
    let ran = run(&mut |_, _| {
        let bye = Message::Bye(Bye {
            dummy_id: rng.next() as u32 | 1,
            last_seq: 0,
            stamps_sent: 0,
            send_errors: 0,
            echoes_received: 0,
        });
        vec![(hostile(7011), bye.encode())]
    });
    assert_eq!(ran.rejected("unknown_dummy"), u64::from(PASSES));
    assert_eq!(ran.snap.dummies.len(), 1);
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_legacy_registrations_with_huge_numbers() {
    // The largest id (2³²−1) registers; beyond u32, negative or with a sign, it is not an id.
    let texts: [&[u8]; 5] = [
        b"4294967295",
        b"4294967296",
        b"99999999999999999999999",
        b"-1",
        b"+5",
    ];
    let ran = run(&mut |k, _| vec![(hostile(7012), texts[k as usize % 5].to_vec())]);
    let ids: Vec<u32> = ran.snap.dummies.iter().map(|d| d.id).collect();
    assert_eq!(ids, [0, u32::MAX]);
    assert_eq!(ran.rejected("unrecognised"), u64::from(PASSES) / 5 * 4);
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_legacy_registration_flood() {
    // A new legacy id from a new port per datagram: the legacy address table and the dummy
    // table stop at --max-dummies; every registration is O(1) (it used to scan the table).
    let admission = Admission {
        max_dummies: 100,
        ..Admission::default()
    };
    let mut id = 0u32;
    let ran = run_with(
        admission,
        &mut |k, _| {
            (0..5)
                .map(|i| {
                    id += 1;
                    (
                        hostile(10_000 + (k * 5 + i) as u16),
                        id.to_string().into_bytes(),
                    )
                })
                .collect()
        },
        &mut |_| vec![],
    );
    assert_eq!(ran.snap.dummies.len(), 100);
    assert_eq!(
        ran.snap.refused.over_max_dummies,
        u64::from(PASSES) * 5 - 99
    );
    ran.logged(EventKind::LimitReached);
    assert_untouched(&ran);
}

#[test]
fn cell_session_flood() {
    // Dummy 9 announces itself again after every STAMP: a new session each time. The
    // sessions kept for summary.json stop at MAX_SESSIONS_KEPT; the rest are counted.
    let admission = Admission::default();
    let mut agg = new_aggregator(admission);
    let mut notices = Vec::new();
    let rounds = MAX_SESSIONS_KEPT as u32 + 500;
    for k in 0..rounds {
        let t = T0 + i64::from(k) * MS;
        feed(
            &mut agg,
            hostile(7013),
            &hello(9, "Dummy9"),
            t,
            &mut notices,
        );
        feed(&mut agg, hostile(7013), &stamp(9, 0, t), t, &mut notices);
    }
    let snap = agg.snapshot(T0 + i64::from(rounds) * MS);
    assert_eq!(agg.sessions().len(), MAX_SESSIONS_KEPT);
    assert_eq!(
        snap.refused.sessions_not_kept,
        u64::from(rounds) - 1 - MAX_SESSIONS_KEPT as u64
    );
    let started = notices
        .iter()
        .filter(|n| n.kind == EventKind::SessionStarted)
        .count();
    assert!(
        (1..=MAX_NOTICES_PER_KIND).contains(&started),
        "{started} session notices in {} s",
        rounds / 1000
    );
    assert!(notices.iter().any(|n| n.kind == EventKind::LimitReached));
}

#[test]
fn cell_garbage_from_many_sources() {
    // Garbage from 20 new source ports per pass (8,000 sources): the per-source table keeps
    // MAX_REJECT_SOURCES sources and folds the rest into one "(other sources)" row; the log
    // stays bounded although each source is new.
    let mut port = 20_000u16;
    let ran = run(&mut |_, _| {
        (0..20)
            .map(|_| {
                port += 1;
                (hostile(port), b"junk".to_vec())
            })
            .collect()
    });
    assert_eq!(ran.snap.rejected.len(), MAX_REJECT_SOURCES + 1);
    let folded = ran
        .snap
        .rejected
        .iter()
        .find(|r| r.source == "(other sources)")
        .expect("the folded row");
    let sent = u64::from(PASSES) * 20;
    assert_eq!(folded.total, sent - MAX_REJECT_SOURCES as u64);
    assert_eq!(ran.snap.refused.reject_sources_folded, folded.total);
    let total: u64 = ran.snap.rejected.iter().map(|r| r.total).sum();
    assert_eq!(total, sent);
    ran.logged(EventKind::Rejected);
    assert_untouched(&ran);
}

#[test]
fn cell_control_characters_in_names() {
    // A HELLO name with a terminal escape, a newline and a bidi override: the name shown
    // everywhere (log, live view, CSV, report, Prometheus labels) has them replaced.
    let name = "\u{1b}[2J\nFAKE LOG LINE\u{202e}x";
    let ran = run(&mut |k, t| {
        if k == 0 {
            vec![(hostile(7014), hello(9, name))]
        } else {
            vec![(hostile(7014), stamp(9, k, t))]
        }
    });
    let d9 = ran.snap.dummies.iter().find(|d| d.id == 9).unwrap();
    assert_eq!(d9.name, "\u{fffd}[2J\u{fffd}FAKE LOG LINE\u{fffd}x");
    for n in &ran.notices {
        assert!(
            !n.message.chars().any(|c| c.is_control()),
            "raw control characters in a notice: {:?}",
            n.message
        );
    }
    assert_untouched(&ran);
}

#[test]
fn cell_receiver_refusals_are_counted_from_status_events() {
    // What the receivers report (filtering at the socket, connection caps, TCP timeouts,
    // frame errors) lands in `refused`, logged rate-limited, without touching any dummy.
    let peer: SocketAddr = "192.0.2.9:4000".parse().unwrap();
    let tcp = Source::Tcp { peer, conn: 7 };
    let ran = run_with(Admission::default(), &mut |_, _| vec![], &mut |k| {
        let total = u64::from(k) + 1;
        vec![
            ReceiverStatus::Refused {
                what: Refusal::UdpOutsideAllow,
                total: total * 10,
                last: peer,
            },
            ReceiverStatus::Refused {
                what: Refusal::TcpOutsideAllow,
                total,
                last: peer,
            },
            ReceiverStatus::Refused {
                what: Refusal::TcpOverConnCap,
                total,
                last: peer,
            },
            ReceiverStatus::Refused {
                what: Refusal::MetricsOutsideAllow,
                total,
                last: peer,
            },
            ReceiverStatus::Refused {
                what: Refusal::MetricsOverConnCap,
                total,
                last: peer,
            },
            ReceiverStatus::Refused {
                what: Refusal::MetricsBadRequest,
                total,
                last: peer,
            },
            ReceiverStatus::TcpFrameError {
                source: tcp,
                error: "frame of 4294967295 bytes exceeds the maximum of 4096 bytes".into(),
            },
        ]
    });
    let p = u64::from(PASSES);
    let r = &ran.snap.refused;
    assert_eq!(ran.statuses, 7 * PASSES as usize);
    assert_eq!(
        (
            r.udp_outside_allow,
            r.tcp_outside_allow,
            r.tcp_over_conn_cap
        ),
        (10 * p, p, p)
    );
    assert_eq!(
        (
            r.metrics_outside_allow,
            r.metrics_over_conn_cap,
            r.metrics_bad_requests
        ),
        (p, p, p)
    );
    assert_eq!(r.tcp_frame_errors, p);
    assert_eq!(ran.rejected("frame_error"), p);
    ran.logged(EventKind::OutsideAllow);
    ran.logged(EventKind::LimitReached);
    assert_untouched(&ran);
}
