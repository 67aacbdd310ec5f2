//! ZeroMQ remote API, protocol 2, server side: CBOR requests and replies, the client
//! table and the stepping handshake (notes §5). Pure: bytes and time in, bytes out; the
//! simulation is reached through [`SimControl`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ciborium::Value;

use super::sim_lib::CONSTANTS;

/// Idle time after which the server forgets a client that gave no `timeout` (notes §5).
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Remote API protocol version served.
pub const PROTOCOL_VERSION: i64 = 2;

/// `sim.*` functions the stand-in serves (listed by `zmqRemoteApi.info('sim')`).
pub const SIM_FUNCTIONS: &[&str] = &[
    "getSimulationTime",
    "getSimulationTimeStep",
    "getSimulationState",
    "startSimulation",
    "stopSimulation",
    "pauseSimulation",
    "setStepping",
    "step",
    "loadScene",
    "getInt32Param",
    "getBoolParam",
    "getFloatParam",
    "getObject",
    "getObjectAlias",
    "getNamedStringParam",
    "setNamedStringParam",
    "getSystemTime",
];

/// The simulation as the remote API server reaches it.
pub trait SimControl {
    /// Runs `sim.<name>` (without the `sim.` prefix) for a remote client. Stepping, step
    /// and the remote API's own functions are handled by [`RemoteState`].
    fn call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String>;
    /// Passes completed since the stand-in started (monotonic across runs).
    fn passes_done(&self) -> u64;
    /// The pass being served at its add-on point, or None while stopped or paused.
    fn gate_pass(&self) -> Option<u64>;
    /// Whether passes are to run (started, not paused): idle serving then ends.
    fn advancing(&self) -> bool;
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Call {
        uuid: String,
        func: String,
        args: Vec<Value>,
        /// `timeout` of the client's first message, seconds.
        timeout_s: Option<f64>,
    },
    /// A message without uuid: a protocol-1 client (CoppeliaSim ≤ 4.5.1).
    Protocol1,
    /// A protocol version other than 2.
    WrongVersion(i64),
}

/// A reply to encode.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ret(Vec<Value>),
    Err(String),
    /// `{func: "_*wait*_", args: []}`: the client must answer `_*executed*_`.
    Wait,
    /// `{}` (answer to `_*end*_`).
    Empty,
    /// `{success: false, error: ...}` for protocol-1 clients.
    VersionMismatch(String),
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn map_get<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(i128::from(*i) as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Decodes one request message.
pub fn decode_request(bytes: &[u8]) -> Result<Request, String> {
    let value: Value =
        ciborium::from_reader(bytes).map_err(|e| format!("request is not valid CBOR: {e}"))?;
    let Value::Map(map) = value else {
        return Err("request is not a CBOR map".into());
    };
    let Some(Value::Text(uuid)) = map_get(&map, "uuid") else {
        return Ok(Request::Protocol1);
    };
    if let Some(ver) = map_get(&map, "ver").and_then(as_f64) {
        if ver as i64 != PROTOCOL_VERSION {
            return Ok(Request::WrongVersion(ver as i64));
        }
    }
    let Some(Value::Text(func)) = map_get(&map, "func") else {
        return Err("request has no func".into());
    };
    let args = match map_get(&map, "args") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err("request args is not an array".into()),
    };
    let timeout_s = map_get(&map, "timeout").and_then(as_f64);
    Ok(Request::Call {
        uuid: uuid.clone(),
        func: func.clone(),
        args,
        timeout_s,
    })
}

/// Encodes a reply; error texts carry newlines as `_=NL=_` and tabs as `_=TB=_` (notes §5).
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    let value = match reply {
        Reply::Ret(values) => Value::Map(vec![(text("ret"), Value::Array(values.clone()))]),
        Reply::Err(message) => {
            let escaped = message.replace('\n', "_=NL=_").replace('\t', "_=TB=_");
            Value::Map(vec![(text("err"), Value::Text(escaped))])
        }
        Reply::Wait => Value::Map(vec![
            (text("func"), text("_*wait*_")),
            (text("args"), Value::Array(vec![])),
        ]),
        Reply::Empty => Value::Map(vec![]),
        Reply::VersionMismatch(message) => Value::Map(vec![
            (text("success"), Value::Bool(false)),
            (text("error"), Value::Text(message.clone())),
        ]),
    };
    let mut out = Vec::new();
    // Writing CBOR into a Vec cannot fail.
    let _ = ciborium::into_writer(&value, &mut out);
    out
}

/// `zmqRemoteApi.info('sim')`: every value a map, `{func: {}}` or `{const: v}`, as the
/// official Python client requires.
pub fn sim_info() -> Value {
    let mut entries: Vec<(Value, Value)> = SIM_FUNCTIONS
        .iter()
        .map(|f| {
            (
                text(f),
                Value::Map(vec![(text("func"), Value::Map(vec![]))]),
            )
        })
        .collect();
    entries.extend(CONSTANTS.iter().map(|(name, v)| {
        (
            text(name),
            Value::Map(vec![(text("const"), Value::Integer((*v).into()))]),
        )
    }));
    Value::Map(entries)
}

/// Where a client is in the stepping handshake.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StepState {
    Idle,
    /// Asked `sim.step` during pass `released_at`; answered once that pass completed.
    Waiting {
        released_at: u64,
    },
}

#[derive(Debug, Clone)]
struct Client {
    timeout: Duration,
    last_seen: Instant,
    stepping: bool,
    step: StepState,
    /// Pass (global index) this client last released with `sim.step`.
    stepped_for: Option<u64>,
}

/// The server's clients and their stepping state.
#[derive(Debug, Default)]
pub struct RemoteState {
    clients: HashMap<String, Client>,
}

impl RemoteState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of known clients (the server polls about 2 ms per client per pass).
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Whether a stepping client holds pass `gate` at its add-on point: it has not yet
    /// asked `sim.step` for this pass (notes §5).
    pub fn holding(&self, gate: u64) -> bool {
        self.clients
            .values()
            .any(|c| c.stepping && c.stepped_for != Some(gate))
    }

    /// Forgets clients idle for longer than their timeout.
    pub fn expire(&mut self, now: Instant) {
        self.clients
            .retain(|_, c| now.duration_since(c.last_seen) <= c.timeout);
    }

    /// Handles one decoded request.
    pub fn handle(&mut self, request: Request, now: Instant, sim: &mut dyn SimControl) -> Reply {
        let (uuid, func, args, timeout_s) =
            match request {
                Request::Call {
                    uuid,
                    func,
                    args,
                    timeout_s,
                } => (uuid, func, args, timeout_s),
                Request::Protocol1 | Request::WrongVersion(_) => return Reply::VersionMismatch(
                    "client version does not match server version: the stand-in serves remote API \
                     protocol 2 (CoppeliaSim 4.6+); use coppeliasim-zmqremoteapi-client 2.x"
                        .into(),
                ),
            };
        if func == "_*end*_" {
            self.clients.remove(&uuid);
            return Reply::Empty;
        }
        let client = self.clients.entry(uuid).or_insert_with(|| Client {
            // A timeout too long for a Duration (found by fuzzing: `from_secs_f64` panics
            // on 1e20) means "never forget".
            timeout: timeout_s
                .filter(|t| t.is_finite() && *t > 0.0)
                .map_or(DEFAULT_CLIENT_TIMEOUT, |t| {
                    Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
                }),
            last_seen: now,
            stepping: false,
            step: StepState::Idle,
            stepped_for: None,
        });
        client.last_seen = now;
        match func.as_str() {
            "_*executed*_" => executed(client, sim),
            "sim.step" => step(client, sim),
            "sim.setStepping" => {
                let previous = i64::from(client.stepping);
                client.stepping = args.first().is_some_and(truthy);
                Reply::Ret(vec![Value::Integer(previous.into())])
            }
            "sim.stopSimulation" => {
                // A remote stop resets every client's stepping (notes §5).
                for c in self.clients.values_mut() {
                    c.stepping = false;
                }
                reply_of(sim.call("stopSimulation", &args))
            }
            "zmqRemoteApi.require" => module_reply(&args, Vec::new()),
            "zmqRemoteApi.info" => module_reply(&args, vec![sim_info()]),
            other => match other.strip_prefix("sim.") {
                Some(name) if SIM_FUNCTIONS.contains(&name) => reply_of(sim.call(name, &args)),
                _ => Reply::Err(format!("No such function: {other}")),
            },
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Integer(i) => i128::from(*i) != 0,
        Value::Null => false,
        _ => true,
    }
}

fn reply_of(result: Result<Vec<Value>, String>) -> Reply {
    match result {
        Ok(values) => Reply::Ret(values),
        Err(message) => Reply::Err(message),
    }
}

fn module_reply(args: &[Value], ret: Vec<Value>) -> Reply {
    match args.first() {
        Some(Value::Text(name)) if name == "sim" => Reply::Ret(ret),
        Some(Value::Text(name)) => Reply::Err(format!(
            "module '{name}' not found (the stand-in serves only 'sim')"
        )),
        _ => Reply::Err("expected a module name".into()),
    }
}

/// `sim.step`: while the simulation advances, release the held pass and wait until it
/// completed; while stopped or paused no pass can complete, so it returns at once.
fn step(client: &mut Client, sim: &mut dyn SimControl) -> Reply {
    match sim.gate_pass() {
        Some(gate) => {
            client.step = StepState::Waiting { released_at: gate };
            client.stepped_for = Some(gate);
            Reply::Wait
        }
        None => Reply::Ret(vec![]),
    }
}

fn executed(client: &mut Client, sim: &mut dyn SimControl) -> Reply {
    match client.step {
        StepState::Waiting { released_at }
            if sim.passes_done() <= released_at && sim.gate_pass().is_some() =>
        {
            Reply::Wait
        }
        _ => {
            client.step = StepState::Idle;
            Reply::Ret(vec![])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeSim {
        passes_done: u64,
        gate: Option<u64>,
        calls: Vec<String>,
    }

    impl SimControl for FakeSim {
        fn call(&mut self, name: &str, _args: &[Value]) -> Result<Vec<Value>, String> {
            self.calls.push(name.to_owned());
            match name {
                "getSimulationTime" => Ok(vec![Value::Float(0.5)]),
                "getObject" => Err("object does not exist\nsecond line".into()),
                _ => Ok(vec![]),
            }
        }
        fn passes_done(&self) -> u64 {
            self.passes_done
        }
        fn gate_pass(&self) -> Option<u64> {
            self.gate
        }
        fn advancing(&self) -> bool {
            self.gate.is_some()
        }
    }

    fn call(uuid: &str, func: &str, args: Vec<Value>) -> Request {
        Request::Call {
            uuid: uuid.into(),
            func: func.into(),
            args,
            timeout_s: None,
        }
    }

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn decodes_the_python_clients_first_message() {
        let msg = Value::Map(vec![
            (text("func"), text("zmqRemoteApi.require")),
            (text("args"), Value::Array(vec![text("sim")])),
            (text("argsL"), Value::Integer(1.into())),
            (text("uuid"), text("u-1")),
            (text("ver"), Value::Integer(2.into())),
            (text("lang"), text("python")),
            (text("timeout"), Value::Integer(600.into())),
        ]);
        let req = decode_request(&encode(&msg)).unwrap();
        assert_eq!(
            req,
            Request::Call {
                uuid: "u-1".into(),
                func: "zmqRemoteApi.require".into(),
                args: vec![text("sim")],
                timeout_s: Some(600.0)
            }
        );
    }

    #[test]
    fn protocol_1_and_wrong_versions_get_the_mismatch_reply() {
        let p1 = Value::Map(vec![
            (text("func"), text("sim.getSimulationTime")),
            (text("args"), Value::Array(vec![])),
        ]);
        assert_eq!(decode_request(&encode(&p1)).unwrap(), Request::Protocol1);
        let v3 = Value::Map(vec![
            (text("func"), text("f")),
            (text("uuid"), text("u")),
            (text("ver"), Value::Integer(3.into())),
        ]);
        assert_eq!(
            decode_request(&encode(&v3)).unwrap(),
            Request::WrongVersion(3)
        );
        let mut state = RemoteState::new();
        let reply = state.handle(Request::Protocol1, Instant::now(), &mut FakeSim::default());
        let bytes = encode_reply(&reply);
        let value: Value = ciborium::from_reader(&bytes[..]).unwrap();
        let Value::Map(m) = value else { panic!() };
        assert_eq!(map_get(&m, "success"), Some(&Value::Bool(false)));
        let Some(Value::Text(e)) = map_get(&m, "error") else {
            panic!()
        };
        assert!(e.contains("version does not match"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_request(b"\xff\x00garbage").is_err());
        assert!(decode_request(&encode(&Value::Integer(3.into()))).is_err());
    }

    #[test]
    fn unknown_functions_and_error_escaping() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let r = state.handle(call("u", "sim.fly", vec![]), Instant::now(), &mut sim);
        assert_eq!(r, Reply::Err("No such function: sim.fly".into()));
        let r = state.handle(
            call("u", "sim.getObject", vec![text("/x")]),
            Instant::now(),
            &mut sim,
        );
        let bytes = encode_reply(&r);
        let value: Value = ciborium::from_reader(&bytes[..]).unwrap();
        assert_eq!(
            value,
            Value::Map(vec![(
                text("err"),
                text("object does not exist_=NL=_second line")
            )])
        );
    }

    #[test]
    fn info_values_are_all_maps() {
        let Value::Map(entries) = sim_info() else {
            panic!()
        };
        assert!(entries.iter().all(|(_, v)| matches!(v, Value::Map(_))));
        assert!(entries.iter().any(|(k, _)| k == &text("step")));
        assert!(entries.iter().any(|(k, v)| k == &text("simulation_stopped")
            && v == &Value::Map(vec![(text("const"), Value::Integer(0.into()))])));
    }

    #[test]
    fn stepping_handshake_holds_and_releases_one_pass_per_step() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        let r = state.handle(
            call("c", "sim.setStepping", vec![Value::Bool(true)]),
            now,
            &mut sim,
        );
        assert_eq!(r, Reply::Ret(vec![Value::Integer(0.into())]));
        // Pass 0 reaches its add-on point: held until the client steps.
        sim.gate = Some(0);
        assert!(state.holding(0));
        assert_eq!(
            state.handle(call("c", "sim.step", vec![]), now, &mut sim),
            Reply::Wait
        );
        assert!(!state.holding(0));
        // Same pass still running: keep waiting.
        assert_eq!(
            state.handle(call("c", "_*executed*_", vec![]), now, &mut sim),
            Reply::Wait
        );
        // Pass 0 completed, pass 1 at its gate: the step returns, and pass 1 is held.
        sim.passes_done = 1;
        sim.gate = Some(1);
        assert!(state.holding(1));
        assert_eq!(
            state.handle(call("c", "_*executed*_", vec![]), now, &mut sim),
            Reply::Ret(vec![])
        );
        assert!(state.holding(1));
        // setStepping returns the previous level.
        let r = state.handle(
            call("c", "sim.setStepping", vec![Value::Bool(false)]),
            now,
            &mut sim,
        );
        assert_eq!(r, Reply::Ret(vec![Value::Integer(1.into())]));
        assert!(!state.holding(1));
    }

    #[test]
    fn remote_stop_resets_stepping_and_step_returns_when_stopped() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim {
            gate: Some(4),
            ..Default::default()
        };
        let now = Instant::now();
        state.handle(
            call("a", "sim.setStepping", vec![Value::Bool(true)]),
            now,
            &mut sim,
        );
        state.handle(
            call("b", "sim.setStepping", vec![Value::Bool(true)]),
            now,
            &mut sim,
        );
        assert!(state.holding(4));
        state.handle(call("b", "sim.stopSimulation", vec![]), now, &mut sim);
        assert!(!state.holding(4));
        assert_eq!(sim.calls, ["stopSimulation"]);
        sim.gate = None;
        assert_eq!(
            state.handle(call("a", "sim.step", vec![]), now, &mut sim),
            Reply::Ret(vec![])
        );
    }

    #[test]
    fn end_forgets_and_timeouts_expire_clients() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim {
            gate: Some(0),
            ..Default::default()
        };
        let t0 = Instant::now();
        let first = Request::Call {
            uuid: "x".into(),
            func: "sim.setStepping".into(),
            args: vec![Value::Bool(true)],
            timeout_s: Some(1.0),
        };
        state.handle(first, t0, &mut sim);
        assert!(state.holding(0));
        state.expire(t0 + Duration::from_millis(500));
        assert_eq!(state.client_count(), 1);
        state.expire(t0 + Duration::from_secs(2));
        assert_eq!(state.client_count(), 0);
        state.handle(
            call("y", "sim.setStepping", vec![Value::Bool(true)]),
            t0,
            &mut sim,
        );
        assert_eq!(
            state.handle(call("y", "_*end*_", vec![]), t0, &mut sim),
            Reply::Empty
        );
        assert!(!state.holding(0));
        assert_eq!(encode_reply(&Reply::Empty), [0xa0]);
    }

    #[test]
    fn a_client_timeout_too_long_for_a_duration_never_expires() {
        let mut state = RemoteState::new();
        let t0 = Instant::now();
        let first = Request::Call {
            uuid: "x".into(),
            func: "sim.getSimulationTime".into(),
            args: vec![],
            timeout_s: Some(1e20),
        };
        let reply = state.handle(first, t0, &mut FakeSim::default());
        assert_eq!(reply, Reply::Ret(vec![Value::Float(0.5)]));
        state.expire(t0 + Duration::from_secs(1_000_000));
        assert_eq!(state.client_count(), 1);
    }

    #[test]
    fn require_and_info_serve_only_sim() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        assert_eq!(
            state.handle(
                call("u", "zmqRemoteApi.require", vec![text("sim")]),
                now,
                &mut sim
            ),
            Reply::Ret(vec![])
        );
        assert!(matches!(
            state.handle(
                call("u", "zmqRemoteApi.require", vec![text("simIK")]),
                now,
                &mut sim
            ),
            Reply::Err(_)
        ));
        let Reply::Ret(ret) = state.handle(
            call("u", "zmqRemoteApi.info", vec![text("sim")]),
            now,
            &mut sim,
        ) else {
            panic!()
        };
        assert_eq!(ret.len(), 1);
    }
}
