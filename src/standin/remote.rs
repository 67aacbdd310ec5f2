//! ZeroMQ remote API, protocol 2, server side: CBOR requests and replies, the client
//! table and the stepping handshake (notes §5). Pure: bytes and time in, bytes out; the
//! simulation is reached through [`SimControl`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ciborium::Value;

use super::api;
use crate::remote_api::ProgramVersion;

/// Idle time after which the server forgets a client that gave no `timeout` (notes §5).
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Remote API protocol version served.
pub const PROTOCOL_VERSION: i64 = 2;

/// The simulation as the remote API server reaches it.
pub trait SimControl {
    /// Runs `sim.<name>` (without the `sim.` prefix) for a remote client. Stepping, step
    /// and the remote API's own functions are handled by [`RemoteState`].
    fn call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String>;
    /// Whether the simulation is advancing (not stopped, not paused).
    fn advancing(&self) -> bool;
    /// The version the stand-in claims: it decides which `sim.*` names exist.
    fn version(&self) -> ProgramVersion;
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
    // Only `uuid` tells protocol 2 from 1; `ver` is never checked
    // (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, handleQueue).
    let Some(Value::Text(uuid)) = map_get(&map, "uuid") else {
        return Ok(Request::Protocol1);
    };
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

/// `zmqRemoteApi.info('sim')`: every value a map, `{func: {}}` or `{const: v}`
/// (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, zmqRemoteApi.info),
/// listing exactly what `version` has in [`api::SIM_API`].
pub fn sim_info(version: ProgramVersion) -> Value {
    let mut entries: Vec<(Value, Value)> = api::remote_functions(version)
        .map(|f| {
            (
                text(f),
                Value::Map(vec![(text("func"), Value::Map(vec![]))]),
            )
        })
        .collect();
    entries.extend(api::constants(version).map(|(name, v)| {
        (
            text(name),
            Value::Map(vec![(text("const"), Value::Integer(v.into()))]),
        )
    }));
    Value::Map(entries)
}

/// Where a client's `sim.step` is: answered with `_*wait*_` until the add-on's step counter
/// moved on from `at_step`, or after one round when the simulation was not advancing.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StepWait {
    at_step: u64,
    advancing: bool,
}

/// One client, as the add-on's `allClients[uuid]`.
#[derive(Debug, Clone)]
struct Client {
    timeout: Duration,
    last_seen: Instant,
    /// `steppingLevel`: the client steps while it is > 0.
    level: i64,
    /// `desiredStep`: the simulation holds at the add-on point while this is <= the step count.
    desired_step: u64,
    step: Option<StepWait>,
}

/// The server's clients and their stepping state, as the ZMQ remote API add-on keeps them
/// (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua; the same logic from
/// coppeliasim-v4.6.0-rev0 to coppeliasim-v4.10.0-rev0).
#[derive(Debug, Default)]
pub struct RemoteState {
    clients: HashMap<String, Client>,
    /// `currentStep`: add-on actuations completed in this run (reset after each run).
    current_step: u64,
}

impl RemoteState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of known clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Whether a stepping client holds the pass at its add-on point: level > 0 and it has not
    /// asked for this step yet (`sysCall_actuation`'s `waitForStep`).
    pub fn holding(&self) -> bool {
        self.clients
            .values()
            .any(|c| c.level > 0 && c.desired_step <= self.current_step)
    }

    /// End of the add-on's actuation: `currentStep = currentStep + 1`.
    pub fn end_of_actuation(&mut self) {
        self.current_step += 1;
    }

    /// `sysCall_afterSimulation`: the step count restarts, clients' target steps and levels
    /// are kept (so a stepping client of a run that was not stopped remotely keeps its
    /// level, and its target step persists).
    pub fn after_simulation(&mut self) {
        self.current_step = 0;
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
                Request::Protocol1 => return Reply::VersionMismatch(
                    "The client ZeroMQ remote API version does not match CoppeliaSim's version \
                     (the stand-in serves protocol 2: use coppeliasim-zmqremoteapi-client 2.x)"
                        .into(),
                ),
            };
        if func == "_*end*_" {
            self.clients.remove(&uuid);
            return Reply::Empty;
        }
        let current_step = self.current_step;
        let client = self.clients.entry(uuid).or_insert_with(|| Client {
            // A timeout too long for a Duration (found by fuzzing: `from_secs_f64` panics
            // on 1e20) means "never forget".
            timeout: timeout_s
                .filter(|t| t.is_finite() && *t > 0.0)
                .map_or(DEFAULT_CLIENT_TIMEOUT, |t| {
                    Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
                }),
            last_seen: now,
            level: 0,
            desired_step: current_step,
            step: None,
        });
        client.last_seen = now;
        let version = sim.version();
        match func.as_str() {
            "_*executed*_" if client.step.is_some() => executed(client, current_step),
            "sim.step" if api::has_function(version, "step", true) => {
                step(client, current_step, sim.advancing())
            }
            "sim.setStepping" if api::has_function(version, "setStepping", true) => {
                Reply::Ret(vec![Value::Integer(
                    set_stepping(client, current_step, args.first()).into(),
                )])
            }
            "sim.stopSimulation" => {
                // The add-on's wrapper: every client stops stepping
                // (addOns/ZMQ remote API server.lua, sim.stopSimulation).
                for c in self.clients.values_mut() {
                    c.level = 0;
                    c.desired_step = current_step + 10;
                }
                reply_of(sim.call("stopSimulation", &args))
            }
            "zmqRemoteApi.require" => module_reply(&args, Vec::new()),
            "zmqRemoteApi.info" => module_reply(&args, vec![sim_info(version)]),
            other => match other.strip_prefix("sim.") {
                Some(name) if api::has_function(version, name, true) => {
                    reply_of(sim.call(name, &args))
                }
                _ => Reply::Err(format!("No such function: {other}")),
            },
        }
    }
}

/// Lua truthiness: only `false` and `nil` are false (0 is true).
fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Bool(false)) | Some(Value::Null))
}

/// `sim.setStepping(enabled)` as the add-on shadows it: +1 when Lua-true (taking the current
/// step as target when the level was 0), −1 otherwise (not below 0); returns the previous level.
fn set_stepping(client: &mut Client, current_step: u64, enabled: Option<&Value>) -> i64 {
    let previous = client.level;
    if truthy(enabled) {
        if client.level == 0 {
            client.desired_step = current_step;
        }
        client.level += 1;
    } else if client.level > 0 {
        client.level -= 1;
    }
    previous
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

/// The add-on's `sim.step`: while advancing, a stepping client releases this step; either way
/// the client is told to wait (at least one `_*wait*_` round, even when stopped or paused).
fn step(client: &mut Client, current_step: u64, advancing: bool) -> Reply {
    if advancing && client.level > 0 {
        client.desired_step = current_step + 1;
    }
    client.step = Some(StepWait {
        at_step: current_step,
        advancing,
    });
    Reply::Wait
}

/// `_*executed*_` after a `_*wait*_`: wait again while the step count has not moved (and the
/// simulation was advancing when `sim.step` came), else `sim.step` returns.
fn executed(client: &mut Client, current_step: u64) -> Reply {
    match client.step {
        Some(w) if w.advancing && w.at_step == current_step => Reply::Wait,
        _ => {
            client.step = None;
            Reply::Ret(vec![])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeSim {
        advancing: bool,
        version: i64,
        calls: Vec<String>,
    }

    impl Default for FakeSim {
        fn default() -> Self {
            FakeSim {
                advancing: true,
                version: 40600,
                calls: Vec::new(),
            }
        }
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
        fn advancing(&self) -> bool {
            self.advancing
        }
        fn version(&self) -> ProgramVersion {
            ProgramVersion {
                raw: self.version,
                revision: 0,
            }
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

    fn int(i: i64) -> Value {
        Value::Integer(i.into())
    }

    #[test]
    fn decodes_the_python_clients_first_message() {
        let msg = Value::Map(vec![
            (text("func"), text("zmqRemoteApi.require")),
            (text("args"), Value::Array(vec![text("sim")])),
            (text("argsL"), int(1)),
            (text("uuid"), text("u-1")),
            (text("ver"), int(2)),
            (text("lang"), text("python")),
            (text("timeout"), int(600)),
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

    /// zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, handleQueue:
    /// only a missing uuid is refused; `ver` is not looked at.
    #[test]
    fn protocol_1_gets_the_mismatch_reply_and_ver_is_not_checked() {
        let p1 = Value::Map(vec![
            (text("func"), text("sim.getSimulationTime")),
            (text("args"), Value::Array(vec![])),
        ]);
        assert_eq!(decode_request(&encode(&p1)).unwrap(), Request::Protocol1);
        let v3 = Value::Map(vec![
            (text("func"), text("f")),
            (text("uuid"), text("u")),
            (text("ver"), int(3)),
        ]);
        assert!(matches!(
            decode_request(&encode(&v3)).unwrap(),
            Request::Call { .. }
        ));
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
        assert!(decode_request(&encode(&int(3))).is_err());
    }

    #[test]
    fn unknown_functions_and_error_escaping() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        let r = state.handle(call("u", "sim.fly", vec![]), now, &mut sim);
        assert_eq!(r, Reply::Err("No such function: sim.fly".into()));
        let r = state.handle(call("u", "sim.setExtensionString", vec![]), now, &mut sim);
        assert_eq!(
            r,
            Reply::Err("No such function: sim.setExtensionString".into())
        );
        let r = state.handle(call("u", "sim.createScript", vec![]), now, &mut sim);
        assert_eq!(
            r,
            Reply::Err("No such function: sim.createScript".into()),
            "4.6 has no createScript"
        );
        let r = state.handle(call("u", "sim.getObject", vec![text("/x")]), now, &mut sim);
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
    fn info_values_are_all_maps_and_follow_the_version() {
        let v = |raw| ProgramVersion { raw, revision: 0 };
        let Value::Map(entries) = sim_info(v(40600)) else {
            panic!()
        };
        assert!(entries.iter().all(|(_, v)| matches!(v, Value::Map(_))));
        assert!(entries.iter().any(|(k, _)| k == &text("step")));
        assert!(entries.iter().any(|(k, v)| k == &text("simulation_stopped")
            && v == &Value::Map(vec![(text("const"), int(0))])));
        assert!(!entries.iter().any(|(k, _)| k == &text("createScript")));
        let Value::Map(entries) = sim_info(v(40700)) else {
            panic!()
        };
        assert!(entries.iter().any(|(k, _)| k == &text("createScript")));
    }

    fn set_stepping(state: &mut RemoteState, sim: &mut FakeSim, uuid: &str, v: Value) -> Reply {
        state.handle(call(uuid, "sim.setStepping", vec![v]), Instant::now(), sim)
    }

    /// addOns/ZMQ remote API server.lua, sim.setStepping: a level, +1 for Lua-true (0 is
    /// true), −1 otherwise, previous level returned.
    #[test]
    fn stepping_is_a_level_counted_by_lua_truthiness() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let replies: Vec<Reply> = [
            Value::Bool(true),
            int(0),
            Value::Bool(false),
            Value::Null,
            Value::Bool(false),
            Value::Bool(false),
        ]
        .into_iter()
        .map(|v| set_stepping(&mut state, &mut sim, "c", v))
        .collect();
        let levels: Vec<Reply> = [0, 1, 2, 1, 0, 0]
            .into_iter()
            .map(|l| Reply::Ret(vec![int(l)]))
            .collect();
        assert_eq!(replies, levels);
    }

    /// addOns/ZMQ remote API server.lua, sim.step and sysCall_actuation.
    #[test]
    fn a_step_releases_one_add_on_actuation() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        set_stepping(&mut state, &mut sim, "c", Value::Bool(true));
        // Pass 0 reaches its add-on point: held until the client steps.
        assert!(state.holding());
        assert_eq!(
            state.handle(call("c", "sim.step", vec![]), now, &mut sim),
            Reply::Wait
        );
        assert!(!state.holding());
        // Same step: keep waiting.
        assert_eq!(
            state.handle(call("c", "_*executed*_", vec![]), now, &mut sim),
            Reply::Wait
        );
        state.end_of_actuation();
        // Next pass's add-on point: the step returns and this pass is held.
        assert!(state.holding());
        assert_eq!(
            state.handle(call("c", "_*executed*_", vec![]), now, &mut sim),
            Reply::Ret(vec![])
        );
        assert!(state.holding());
        set_stepping(&mut state, &mut sim, "c", Value::Bool(false));
        assert!(!state.holding());
    }

    /// addOns/ZMQ remote API server.lua, sim.step: `if not running then break` after one round.
    #[test]
    fn step_while_stopped_answers_one_wait_round() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim {
            advancing: false,
            ..FakeSim::default()
        };
        let now = Instant::now();
        assert_eq!(
            state.handle(call("a", "sim.step", vec![]), now, &mut sim),
            Reply::Wait
        );
        assert_eq!(
            state.handle(call("a", "_*executed*_", vec![]), now, &mut sim),
            Reply::Ret(vec![])
        );
    }

    /// addOns/ZMQ remote API server.lua, the sim.stopSimulation wrapper.
    #[test]
    fn remote_stop_resets_every_clients_stepping() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        set_stepping(&mut state, &mut sim, "a", Value::Bool(true));
        set_stepping(&mut state, &mut sim, "b", Value::Bool(true));
        assert!(state.holding());
        state.handle(call("b", "sim.stopSimulation", vec![]), now, &mut sim);
        assert!(!state.holding());
        assert_eq!(sim.calls, ["stopSimulation"]);
        assert_eq!(
            set_stepping(&mut state, &mut sim, "a", Value::Bool(true)),
            Reply::Ret(vec![int(0)])
        );
    }

    /// addOns/ZMQ remote API server.lua, sysCall_afterSimulation resets currentStep only.
    #[test]
    fn the_target_step_survives_a_run_not_stopped_remotely() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let now = Instant::now();
        set_stepping(&mut state, &mut sim, "c", Value::Bool(true));
        for _ in 0..5 {
            state.handle(call("c", "sim.step", vec![]), now, &mut sim);
            state.end_of_actuation();
            state.handle(call("c", "_*executed*_", vec![]), now, &mut sim);
        }
        // The run ends (e.g. a script stopped it): the level stays 1, the step count restarts
        // while the client's target (5) persists, so the next run is not held until step 5.
        state.after_simulation();
        assert!(!state.holding());
        for _ in 0..5 {
            state.end_of_actuation();
        }
        assert!(state.holding());
        assert_eq!(
            set_stepping(&mut state, &mut sim, "c", Value::Bool(true)),
            Reply::Ret(vec![int(1)])
        );
    }

    #[test]
    fn end_forgets_and_timeouts_expire_clients() {
        let mut state = RemoteState::new();
        let mut sim = FakeSim::default();
        let t0 = Instant::now();
        let first = Request::Call {
            uuid: "x".into(),
            func: "sim.setStepping".into(),
            args: vec![Value::Bool(true)],
            timeout_s: Some(1.0),
        };
        state.handle(first, t0, &mut sim);
        assert!(state.holding());
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
        assert!(!state.holding());
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
