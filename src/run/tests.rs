//! The run machine on synthetic timelines: no socket, no clock, no thread.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::event::{Arrival, ArrivalBatch, ReceiverStatus};
use crate::remote_api::{ProgramVersion, SimState};
use crate::wire::{flags, Bye, Hello, Message, Stamp, NO_RTT};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;

fn udp(port: u16) -> Source {
    Source::Udp(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn hello(id: u32, fl: u16) -> Vec<u8> {
    Message::Hello(Hello {
        dummy_id: id,
        dt_s: 0.05,
        script_version: 1,
        flags: fl,
        name: format!("Dummy{id}"),
    })
    .encode()
}

fn stamp(id: u32, seq: u32, sent_ns: i64) -> Vec<u8> {
    Message::Stamp(Stamp {
        dummy_id: id,
        seq,
        step: seq,
        sim_time_s: f64::from(seq) * 0.05,
        sent_unix_s: sent_ns as f64 / 1e9,
        rtt_us: NO_RTT,
    })
    .encode()
}

fn bye(id: u32, last: u32) -> Vec<u8> {
    Message::Bye(Bye {
        dummy_id: id,
        last_seq: last,
        stamps_sent: last + 1,
        send_errors: 0,
        echoes_received: 0,
    })
    .encode()
}

/// One datagram from dummy `id`'s port, kernel-stamped at `t`, read 50 µs later.
fn batch(msgs: &[(u32, Vec<u8>, i64)]) -> ReceiverEvent {
    let mut b = ArrivalBatch::default();
    for (id, payload, t) in msgs {
        b.push(Arrival {
            source: udp(5000 + *id as u16),
            payload,
            kernel_ns: Some(*t),
            read_ns: t + 50_000,
            truncated: false,
        });
    }
    ReceiverEvent::Arrivals(b)
}

fn feed(m: &mut RunMachine, ev: ReceiverEvent, now: i64) -> Vec<Action> {
    m.on_event(Input::Receiver(&ev), now).collect()
}

/// `n` dummies at 20 Hz from `from` (pass 0) for `passes` passes, HELLO first; each pass's
/// datagrams arrive 100 µs after they were sent.
fn steady(m: &mut RunMachine, n: u32, from: i64, passes: u32) -> Vec<Action> {
    let mut out = Vec::new();
    let hellos: Vec<_> = (0..n).map(|id| (id, hello(id, 0), from)).collect();
    out.extend(feed(m, batch(&hellos), from));
    for k in 0..passes {
        let sent = from + i64::from(k) * 50 * MS;
        let msgs: Vec<_> = (0..n)
            .map(|id| (id, stamp(id, k, sent), sent + 100_000))
            .collect();
        out.extend(feed(m, batch(&msgs), sent + MS));
    }
    out
}

fn ticks(m: &mut RunMachine, from: i64, to: i64) -> Vec<(i64, Action)> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        out.extend(m.on_tick(t).map(|a| (t, a)));
        t += 250 * MS;
    }
    out
}

fn records(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Record(_)))
        .count()
}

fn notices(actions: &[Action]) -> Vec<EventKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notice(n) => Some(n.kind),
            _ => None,
        })
        .collect()
}

fn config() -> RunConfig {
    RunConfig::new(T0)
}

#[test]
fn every_arrival_becomes_a_sample_row_and_the_duration_ends_the_run() {
    let mut cfg = config();
    cfg.stop.duration = Some(Duration::from_secs(3));
    let mut m = RunMachine::new(cfg);
    let actions = steady(&mut m, 4, T0, 60);
    assert_eq!(records(&actions), 240, "one row per STAMP");
    assert_eq!(
        notices(&actions),
        [EventKind::DummyRegistered; 4],
        "registrations only"
    );
    let before: Vec<_> = ticks(&mut m, T0, T0 + 2750 * MS);
    assert!(!before.iter().any(|(_, a)| *a == Action::Finish));
    assert_eq!(
        m.deadline(),
        Some(T0 + 3 * S),
        "the shell wakes at the end exactly"
    );
    let just_before: Vec<_> = m.on_tick(T0 + 3 * S - 1).collect();
    assert!(!just_before.contains(&Action::Finish));
    let at_3s: Vec<_> = m.on_tick(T0 + 3 * S).collect();
    assert!(at_3s.contains(&Action::Finish), "{at_3s:?}");
    assert!(!m.is_measuring());
    assert_eq!(m.deadline(), None, "stopped: nothing left to wake for");
    let outcome = m.finish(T0 + 3 * S);
    assert_eq!(outcome.reason, StopReason::Duration(Duration::from_secs(3)));
    let d = &outcome.snapshot.dummies[0];
    assert_eq!(d.messages, 60);
    assert!((d.rtf.total.unwrap() - 1.0).abs() < 0.02, "{:?}", d.rtf);
}

#[test]
fn snapshots_are_published_at_their_cadence_and_printed_at_theirs() {
    let mut cfg = config();
    cfg.snapshot_every = Duration::from_secs(1);
    cfg.print_every = Some(Duration::from_secs(2));
    let mut m = RunMachine::new(cfg);
    steady(&mut m, 1, T0, 10);
    let published: Vec<(i64, bool)> = ticks(&mut m, T0, T0 + 4 * S)
        .into_iter()
        .filter_map(|(t, a)| match a {
            Action::Publish(p) => Some(((t - T0) / MS, p.print)),
            _ => None,
        })
        .collect();
    assert_eq!(
        published,
        [
            (0, true),
            (1000, false),
            (2000, true),
            (3000, false),
            (4000, true)
        ]
    );
}

#[test]
fn measuring_starts_at_the_arrival_of_the_last_expected_hello() {
    let mut cfg = config();
    cfg.expect_dummies = Some(2);
    cfg.stop.duration = Some(Duration::from_secs(1));
    let mut m = RunMachine::new(cfg);
    // Nothing starts the clock before both are here, however long that takes.
    assert!(ticks(&mut m, T0, T0 + 5 * S)
        .iter()
        .all(|(_, a)| !matches!(a, Action::Finish | Action::Fail(_))));
    feed(&mut m, batch(&[(0, hello(0, 0), T0 + 5 * S)]), T0 + 5 * S);
    // The second HELLO arrived at 6 s but is handled 300 ms later, behind a stamp.
    let late = batch(&[
        (1, hello(1, 0), T0 + 6 * S),
        (0, stamp(0, 0, T0 + 6 * S), T0 + 6 * S + MS),
    ]);
    let actions = feed(&mut m, late, T0 + 6300 * MS);
    assert!(notices(&actions).contains(&EventKind::Info), "gate opened");
    assert!(!m.on_tick(T0 + 6900 * MS).any(|a| a == Action::Finish));
    assert!(
        m.on_tick(T0 + 7 * S).any(|a| a == Action::Finish),
        "1 s after the HELLO's arrival, not after its handling"
    );
}

#[test]
fn expected_dummies_that_never_come_fail_the_run_with_their_names() {
    let mut cfg = config();
    cfg.expect_dummies = Some(3);
    cfg.expect_timeout = Duration::from_secs(10);
    let mut m = RunMachine::new(cfg);
    feed(&mut m, batch(&[(1, hello(1, 0), T0)]), T0);
    let fail = ticks(&mut m, T0, T0 + 10 * S)
        .into_iter()
        .find_map(|(t, a)| match a {
            Action::Fail(msg) => Some((t, msg)),
            _ => None,
        })
        .expect("a failure");
    assert_eq!(fail.0, T0 + 10 * S);
    assert!(fail.1.contains("Dummy0, Dummy2"), "{}", fail.1);
}

fn driver(m: &mut RunMachine, ev: DriverEvent, now: i64) -> Vec<Action> {
    m.on_event(Input::Driver(&ev), now).collect()
}

fn state(m: &mut RunMachine, to: SimState, now: i64) {
    driver(
        m,
        DriverEvent::StateChanged {
            wall_ns: now,
            from: None,
            to,
        },
        now,
    );
}

#[test]
fn with_a_simulator_the_driver_stops_first_and_byes_are_collected_for_the_grace() {
    let mut cfg = config();
    cfg.has_sim = true;
    cfg.stop.duration = Some(Duration::from_secs(2));
    cfg.bye_grace = Duration::from_millis(500);
    let mut m = RunMachine::new(cfg);
    let connected = driver(
        &mut m,
        DriverEvent::Connected {
            version: ProgramVersion {
                raw: 40600,
                revision: 0,
            },
            dt_s: 0.05,
            real_time: true,
        },
        T0,
    );
    assert_eq!(notices(&connected), [EventKind::SimConnected]);
    state(&mut m, SimState::Running, T0);
    steady(&mut m, 2, T0, 40);
    let stop: Vec<_> = m.on_tick(T0 + 2 * S).collect();
    assert!(stop.contains(&Action::StopDriver), "{stop:?}");
    assert!(
        !stop.contains(&Action::Finish),
        "not before the driver stopped"
    );
    // The simulation's stop passes send BYEs while the driver shuts down.
    let byes = batch(&[
        (0, bye(0, 39), T0 + 2100 * MS),
        (1, bye(1, 39), T0 + 2100 * MS),
    ]);
    feed(&mut m, byes, T0 + 2100 * MS);
    assert!(m.on_tick(T0 + 2250 * MS).next().is_none());
    let stopped: Vec<_> = m.on_event(Input::DriverStopped, T0 + 2300 * MS).collect();
    assert!(stopped.is_empty(), "grace starts now");
    assert!(!m.on_tick(T0 + 2750 * MS).any(|a| a == Action::Finish));
    assert!(m.on_tick(T0 + 2800 * MS).any(|a| a == Action::Finish));
    let outcome = m.finish(T0 + 2800 * MS);
    assert!(outcome
        .snapshot
        .dummies
        .iter()
        .all(|d| d.state == crate::metrics::DummyState::Ended));
    assert_eq!(outcome.snapshot.sim.unwrap().state, "running");
}

#[test]
fn silence_stops_the_run_only_while_the_simulation_advances() {
    let mut cfg = config();
    cfg.has_sim = true;
    cfg.stop.idle_timeout = Some(Duration::from_secs(5));
    let mut m = RunMachine::new(cfg);
    state(&mut m, SimState::Running, T0);
    steady(&mut m, 1, T0, 20);
    state(&mut m, SimState::Paused, T0 + S);
    assert!(!ticks(&mut m, T0 + S, T0 + 20 * S)
        .iter()
        .any(|(_, a)| *a == Action::StopDriver));
    state(&mut m, SimState::Running, T0 + 20 * S);
    let stop = m.on_tick(T0 + 20 * S).collect::<Vec<_>>();
    assert!(stop.contains(&Action::StopDriver), "{stop:?}");
    m.on_event(Input::DriverStopped, T0 + 20 * S).for_each(drop);
    m.on_tick(T0 + 21 * S).for_each(drop);
    assert_eq!(
        m.finish(T0 + 21 * S).reason,
        StopReason::Idle(Duration::from_secs(5))
    );
}

#[test]
fn echo_dummies_get_replies_and_switch_the_receiver_to_low_latency() {
    let mut m = RunMachine::new(config());
    let a = feed(&mut m, batch(&[(3, hello(3, flags::ECHO), T0)]), T0);
    assert!(a.contains(&Action::LowLatency(true)), "{a:?}");
    let a = feed(&mut m, batch(&[(3, stamp(3, 0, T0), T0 + MS)]), T0 + 2 * MS);
    let reply = a.iter().find_map(|a| match a {
        Action::Reply { to, payload } => Some((*to, payload.clone())),
        _ => None,
    });
    let (to, payload) = reply.expect("an ECHO");
    assert_eq!(to, udp(5003));
    assert!(matches!(Message::decode(&payload), Ok(Message::Echo(_))));
    let a = feed(&mut m, batch(&[(4, hello(4, 0), T0)]), T0);
    assert!(!a.iter().any(|a| matches!(a, Action::LowLatency(_))));
}

#[test]
fn a_reset_restarts_the_view_but_the_run_keeps_every_message() {
    let mut m = RunMachine::new(config());
    steady(&mut m, 1, T0, 100);
    let reset: Vec<_> = m.on_event(Input::ResetView, T0 + 5 * S).collect();
    assert_eq!(notices(&reset), [EventKind::StatsReset]);
    let more: Vec<_> = (100..140)
        .map(|k| {
            let sent = T0 + i64::from(k) * 50 * MS;
            (0, stamp(0, k, sent), sent + 100_000)
        })
        .collect();
    feed(&mut m, batch(&more), T0 + 7 * S);
    let published = m
        .on_tick(T0 + 7 * S)
        .find_map(|a| match a {
            Action::Publish(p) => Some(p),
            _ => None,
        })
        .expect("published");
    assert_eq!(published.run.dummies[0].messages, 140);
    let view = published.view.expect("a view after the reset");
    assert_eq!(view.dummies[0].messages, 40);
    assert_eq!(view.dummies[0].name, "Dummy0", "registrations survive");
}

#[test]
fn signals_and_quit_end_the_run_once() {
    let mut m = RunMachine::new(config());
    let a: Vec<_> = m.on_event(Input::Quit, T0).collect();
    assert_eq!(a, [Action::Finish]);
    let a: Vec<_> = m.on_event(Input::Signal, T0).collect();
    assert!(a.is_empty(), "already finishing");
    assert_eq!(m.finish(T0).reason, StopReason::UserQuit);
}

#[test]
fn kernel_drops_become_a_notice_and_reach_the_snapshot() {
    let mut m = RunMachine::new(config());
    let ev = ReceiverEvent::Status(ReceiverStatus::KernelDrops(7));
    let a = feed(&mut m, ev, T0);
    assert_eq!(notices(&a), [EventKind::KernelDrops]);
    assert_eq!(m.snapshot(T0).kernel_drops, Some(7));
}
