//! The simulation driver against a fake server that models a tiny simulation (stopped /
//! running, time, stepping level). Every wait is bounded by a generous failure guard.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::remote_api::driver::{self, DriverEvent, DriverOptions};
use coppelia_bridge::remote_api::fake::{empty_map, FakeAction, FakeServer, Seen};
use coppelia_bridge::remote_api::message::{encode_err, encode_func, encode_ret, encode_value};
use coppelia_bridge::remote_api::{BackoffConfig, SimState};

const GUARD: Duration = Duration::from_secs(20);
const DT: f64 = 0.05;

/// The fake's simulation.
#[derive(Debug, Default)]
struct Model {
    running: bool,
    time_s: f64,
    stepping_level: i64,
    /// A `sim.step` in progress was answered with one `_*wait*_` already.
    in_step: bool,
    steps: u64,
    /// Simulation time does not advance (lets a test set it without racing the driver).
    frozen: bool,
}

type Shared = Arc<Mutex<Model>>;

fn ret(v: Vec<Value>) -> FakeAction {
    FakeAction::Reply(encode_ret(v))
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// Serves the calls the driver makes, like CoppeliaSim would (notes §5).
fn serve(model: &Shared, seen: &Seen) -> FakeAction {
    let Some(req) = seen else {
        return FakeAction::Reply(encode_err("bad request"));
    };
    let mut m = model.lock().unwrap();
    match req.func.as_str() {
        "sim.getInt32Param" => ret(vec![int(if req.args == [int(1)] { 40700 } else { 3 })]),
        "sim.getBoolParam" => ret(vec![Value::Bool(false)]),
        "sim.getSimulationTimeStep" => ret(vec![Value::Float(DT)]),
        "sim.loadScene" => ret(vec![]),
        "sim.getSimulationState" => ret(vec![int(if m.running { 17 } else { 0 })]),
        "sim.getSimulationTime" => {
            if m.running && m.stepping_level == 0 && !m.frozen {
                m.time_s += DT; // free running: time moves between polls
            }
            ret(vec![Value::Float(m.time_s)])
        }
        "sim.startSimulation" => {
            m.running = true;
            m.time_s = 0.0;
            ret(vec![])
        }
        "sim.stopSimulation" => {
            m.running = false;
            m.stepping_level = 0;
            ret(vec![])
        }
        "sim.setStepping" => {
            let prev = m.stepping_level;
            m.stepping_level = if req.args == [Value::Bool(true)] {
                prev + 1
            } else {
                (prev - 1).max(0)
            };
            ret(vec![int(prev)])
        }
        // One `_*wait*_` round per step, then the pass is done.
        "sim.step" => {
            m.in_step = true;
            FakeAction::Reply(encode_func("_*wait*_", vec![]))
        }
        "_*executed*_" if m.in_step => {
            m.in_step = false;
            if m.running && !m.frozen {
                m.time_s += DT;
                m.steps += 1;
            }
            ret(vec![])
        }
        "_*end*_" => FakeAction::Reply(empty_map()),
        other => FakeAction::Reply(encode_err(&format!("No such function: {other}"))),
    }
}

fn start_fake(model: &Shared, bind: Option<&str>) -> FakeServer {
    let m = model.clone();
    let handler = move |seen: &Seen| serve(&m, seen);
    match bind {
        Some(b) => FakeServer::start_at(b, handler).unwrap(),
        None => FakeServer::start(handler).unwrap(),
    }
}

fn options(endpoint: &str) -> DriverOptions {
    DriverOptions {
        // Generous: a loaded machine must not look like an outage.
        timeout: Duration::from_millis(1500),
        poll_rate_hz: 50.0,
        backoff: BackoffConfig {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
            factor: 2.0,
            jitter: 0.0,
        },
        ..DriverOptions::new(endpoint)
    }
}

/// Collects events until `pred` matches one (returns all collected), or panics at the guard.
fn wait_for(
    rx: &Receiver<DriverEvent>,
    what: &str,
    pred: impl Fn(&DriverEvent) -> bool,
) -> Vec<DriverEvent> {
    let until = Instant::now() + GUARD;
    let mut seen = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(e) => {
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    let tail: Vec<_> = seen.iter().rev().take(12).map(DriverEvent::kind).collect();
    panic!(
        "no {what} event within {GUARD:?}; got {} events, the last ones (newest first): {tail:?}",
        seen.len()
    );
}

fn rest(rx: &Receiver<DriverEvent>) -> Vec<DriverEvent> {
    rx.try_iter().collect()
}

#[test]
fn starts_a_stopped_simulation_polls_it_and_stops_it_at_the_end() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        scene: Some("/scenes/dummies.simscene.xml".into()),
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    let first = wait_for(&rx, "connected", |e| {
        matches!(e, DriverEvent::Connected { .. })
    });
    let DriverEvent::Connected {
        version,
        dt_s,
        real_time,
    } = first.last().unwrap()
    else {
        unreachable!()
    };
    assert_eq!(
        (version.to_string(), *dt_s, *real_time),
        ("4.7.0".to_owned(), DT, false)
    );
    wait_for(&rx, "started", |e| {
        matches!(e, DriverEvent::StartedSimulation { .. })
    });
    wait_for(&rx, "running state", |e| {
        matches!(
            e,
            DriverEvent::StateChanged {
                from: None,
                to: SimState::Running,
                ..
            }
        )
    });
    // Time advances between polls and every poll reports its round trip.
    let mut times = Vec::new();
    let events = wait_for(
        &rx,
        "third time",
        |e| matches!(e, DriverEvent::SimTime { sim_time_s, .. } if *sim_time_s >= 3.0 * DT - 1e-9),
    );
    for e in &events {
        if let DriverEvent::SimTime { sim_time_s, .. } = e {
            times.push(*sim_time_s);
        }
    }
    assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, DriverEvent::CallRtt { .. })));
    handle.shutdown();
    let last = rest(&rx);
    assert_eq!(
        last.last(),
        Some(&DriverEvent::Finished {
            stopped_simulation: true
        })
    );
    let funcs = server.funcs();
    let pos = |f: &str| {
        funcs
            .iter()
            .position(|x| x == f)
            .unwrap_or_else(|| panic!("no {f} in {funcs:?}"))
    };
    assert!(pos("sim.loadScene") < pos("sim.startSimulation"));
    assert!(pos("sim.stopSimulation") < pos("_*end*_"));
    assert_eq!(funcs.last().map(String::as_str), Some("_*end*_"));
    assert!(!model.lock().unwrap().running);
}

#[test]
fn attaches_to_a_running_simulation_and_leaves_it_running() {
    let model = Shared::default();
    model.lock().unwrap().running = true;
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        scene: Some("/scenes/x.ttt".into()),
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    wait_for(&rx, "sim time", |e| {
        matches!(e, DriverEvent::SimTime { .. })
    });
    handle.shutdown();
    let events = rest(&rx);
    assert_eq!(
        events.last(),
        Some(&DriverEvent::Finished {
            stopped_simulation: false
        })
    );
    let funcs = server.funcs();
    for f in ["sim.startSimulation", "sim.stopSimulation", "sim.loadScene"] {
        assert!(!funcs.iter().any(|x| x == f), "{f} called: {funcs:?}");
    }
    assert!(model.lock().unwrap().running);
}

#[test]
fn no_start_leaves_a_stopped_simulation_stopped() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        start_if_stopped: false,
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    wait_for(&rx, "stopped state", |e| {
        matches!(
            e,
            DriverEvent::StateChanged {
                to: SimState::Stopped,
                ..
            }
        )
    });
    handle.shutdown();
    assert!(!server.funcs().iter().any(|f| f == "sim.startSimulation"));
}

#[test]
fn stepping_mode_steps_the_simulation_and_reports_stats() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        stepping: Some(0.0),
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    let events = wait_for(&rx, "stepping stats", |e| {
        matches!(e, DriverEvent::SteppingStats { .. })
    });
    let Some(DriverEvent::SteppingStats {
        steps,
        steps_per_s,
        pacing_error,
        ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert!(*steps > 0 && *steps_per_s > 0.0);
    assert_eq!(*pacing_error, None, "unpaced");
    handle.shutdown();
    let funcs = server.funcs();
    let pos = |f: &str| funcs.iter().position(|x| x == f).unwrap();
    assert!(
        pos("sim.setStepping") < pos("sim.startSimulation"),
        "{funcs:?}"
    );
    assert!(model.lock().unwrap().steps >= *steps);
}

#[test]
fn paced_stepping_reports_a_pacing_error() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        stepping: Some(1.0),
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    let events = wait_for(&rx, "stepping stats", |e| {
        matches!(e, DriverEvent::SteppingStats { .. })
    });
    handle.shutdown();
    let Some(DriverEvent::SteppingStats {
        achieved_rtf,
        pacing_error,
        ..
    }) = events.last()
    else {
        unreachable!()
    };
    // Definition check only (no speed assertion): error = (achieved - target) / target.
    let err = pacing_error.expect("paced");
    assert!((err - (achieved_rtf - 1.0)).abs() < 1e-9);
}

/// A stepping driver against the fake, once it has stepped past t = 1 s.
fn stepping_past_one_second() -> (
    Shared,
    FakeServer,
    Receiver<DriverEvent>,
    driver::DriverHandle,
) {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        stepping: Some(0.0),
        ..options(server.endpoint())
    };
    let handle = driver::spawn(opts, tx).unwrap();
    wait_for(
        &rx,
        "later time",
        |e| matches!(e, DriverEvent::SimTime { sim_time_s, .. } if *sim_time_s > 1.0),
    );
    (model, server, rx, handle)
}

#[test]
fn a_restart_by_someone_else_is_reported_and_stepping_renewed() {
    let (model, _server, rx, handle) = stepping_past_one_second();
    {
        // Another client's stopSimulation + startSimulation: stepping reset, time back to 0.
        let mut m = model.lock().unwrap();
        m.stepping_level = 0;
        m.time_s = 0.0;
        m.frozen = true;
    }
    let events = wait_for(&rx, "restarted", |e| {
        matches!(e, DriverEvent::Restarted { .. })
    });
    model.lock().unwrap().frozen = false;
    assert!(
        matches!(events.last(), Some(DriverEvent::Restarted { previous_sim_time_s, .. }) if *previous_sim_time_s > 1.0)
    );
    // The driver enabled stepping again: the model is stepped only while the level is > 0.
    let until = Instant::now() + GUARD;
    while model.lock().unwrap().stepping_level == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(model.lock().unwrap().stepping_level, 1);
    handle.shutdown();
}

/// zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua: only a remote
/// `sim.stopSimulation` resets a client's stepping level; a run stopped otherwise (GUI, a
/// script) keeps it (`sysCall_afterSimulation` resets only the step count). The driver renews
/// stepping after any restart without stacking a second level: it stays exactly 1.
#[test]
fn a_restart_not_stopped_remotely_keeps_the_stepping_level_at_one() {
    let (model, server, rx, handle) = stepping_past_one_second();
    let calls_before = server
        .funcs()
        .iter()
        .filter(|f| f.as_str() == "sim.setStepping")
        .count();
    {
        // Stopped and started again by the GUI: time back to 0, the level kept.
        let mut m = model.lock().unwrap();
        assert_eq!(m.stepping_level, 1);
        m.time_s = 0.0;
        m.frozen = true;
    }
    wait_for(&rx, "restarted", |e| {
        matches!(e, DriverEvent::Restarted { .. })
    });
    let until = Instant::now() + GUARD;
    let renewed = || {
        server
            .funcs()
            .iter()
            .filter(|f| f.as_str() == "sim.setStepping")
            .count()
            >= calls_before + 2
    };
    while !renewed() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        renewed(),
        "the driver renews stepping: +1, then −1 as it was already 1"
    );
    model.lock().unwrap().frozen = false;
    assert_eq!(model.lock().unwrap().stepping_level, 1);
    handle.shutdown();
}

#[test]
fn coppeliasim_going_away_and_coming_back_is_reported_with_the_gap() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let endpoint = server.endpoint().to_owned();
    let (tx, rx) = mpsc::channel();
    let opts = DriverOptions {
        stepping: Some(0.0),
        ..options(&endpoint)
    };
    let handle = driver::spawn(opts, tx).unwrap();
    wait_for(&rx, "sim time", |e| {
        matches!(e, DriverEvent::SimTime { .. })
    });
    server.stop();
    wait_for(&rx, "disconnected", |e| {
        matches!(e, DriverEvent::Disconnected { .. })
    });
    // A new CoppeliaSim process: stopped, knows nothing of our stepping.
    let model2 = Shared::default();
    let back = start_fake(&model2, Some(&endpoint));
    let events = wait_for(&rx, "reconnected", |e| {
        matches!(e, DriverEvent::Reconnected { .. })
    });
    let Some(DriverEvent::Reconnected { gap_s }) = events.last() else {
        unreachable!()
    };
    assert!(*gap_s > 0.0);
    wait_for(&rx, "connected again", |e| {
        matches!(e, DriverEvent::Connected { .. })
    });
    // We had started the run, so we start it again, with stepping.
    wait_for(&rx, "started again", |e| {
        matches!(e, DriverEvent::StartedSimulation { .. })
    });
    assert!(model2.lock().unwrap().running);
    assert_eq!(model2.lock().unwrap().stepping_level, 1);
    handle.shutdown();
    assert!(back.funcs().iter().any(|f| f == "sim.stopSimulation"));
}

#[test]
fn unreachable_at_start_is_reported_once_and_shutdown_is_prompt() {
    let (_held, port) = common::refusing_tcp_port();
    let (tx, rx) = mpsc::channel();
    let handle = driver::spawn(options(&format!("tcp://127.0.0.1:{port}")), tx).unwrap();
    let events = wait_for(&rx, "disconnected", |e| {
        matches!(e, DriverEvent::Disconnected { .. })
    });
    let Some(DriverEvent::Disconnected { error, .. }) = events.last() else {
        unreachable!()
    };
    assert!(error.contains(&port.to_string()), "{error}");
    handle.shutdown();
    let events = rest(&rx);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, DriverEvent::Disconnected { .. })),
        "reported once"
    );
    assert_eq!(
        events.last(),
        Some(&DriverEvent::Finished {
            stopped_simulation: false
        })
    );
}

#[test]
fn a_protocol1_server_fails_the_driver() {
    let server = FakeServer::start(|_| {
        FakeAction::Reply(encode_value(&Value::Map(vec![
            (Value::Text("success".into()), Value::Bool(false)),
            (
                Value::Text("error".into()),
                Value::Text("version does not match".into()),
            ),
        ])))
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = driver::spawn(options(server.endpoint()), tx).unwrap();
    let events = wait_for(&rx, "failed", |e| matches!(e, DriverEvent::Failed { .. }));
    let Some(DriverEvent::Failed { error }) = events.last() else {
        unreachable!()
    };
    assert!(error.contains("4.6 or newer"), "{error}");
    handle.shutdown();
}

#[test]
fn tokio_unbounded_sender_works_as_a_sink() {
    let model = Shared::default();
    let server = start_fake(&model, None);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = driver::spawn(options(server.endpoint()), tx).unwrap();
    let until = Instant::now() + GUARD;
    let mut connected = false;
    while !connected && Instant::now() < until {
        match rx.try_recv() {
            Ok(DriverEvent::Connected { .. }) => connected = true,
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert!(connected);
    handle.shutdown();
}
