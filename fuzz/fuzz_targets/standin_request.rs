//! A hostile remote API client talking to the stand-in's server: a sequence of requests
//! (raw bytes, or CBOR maps built from the input so the handler's paths are reached), with
//! time passing and the simulation moving between them, through the same steps as
//! `standin::remote_server`: `decode_request`, `RemoteState::handle` against a fake
//! `SimControl`, `encode_reply`. Checks, beyond "no panic":
//! - every reply the server sends is understood by the bridge's own client
//!   (`remote_api::message::decode_reply`) as the same kind, with the same values or text;
//! - only functions the server advertises in `zmqRemoteApi.info('sim')` reach the
//!   simulation, and only the one the client asked for (a client cannot call anything else);
//! - the client table grows by at most one entry per request, never for a request that is
//!   garbage, protocol 1 or `_*end*_`, and matches a model of uuids, `_*end*_` and idle
//!   timeouts (bounded memory: expired clients are really forgotten).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run standin_request` (or `scripts/fuzz.sh`).
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::remote_api::message::{self as client, encode_value};
use coppelia_bridge::remote_api::ProgramVersion;
use coppelia_bridge::standin::api;
use coppelia_bridge::standin::remote::{
    decode_request, encode_reply, sim_info, RemoteState, Reply, Request, SimControl,
    DEFAULT_CLIENT_TIMEOUT,
};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});

/// The version the fake simulation claims: the newest, so the most names are reachable.
const VERSION: ProgramVersion = ProgramVersion {
    raw: api::V4_10,
    revision: 0,
};

/// Functions `zmqRemoteApi.info('sim')` lists, without the `sim.` prefix.
fn advertised() -> &'static BTreeSet<String> {
    static SET: OnceLock<BTreeSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        let Value::Map(entries) = sim_info(VERSION) else {
            panic!("sim_info is not a map")
        };
        entries
            .iter()
            .filter(|(_, v)| matches!(v, Value::Map(m) if client::get(m, "func").is_some()))
            .filter_map(|(k, _)| k.as_text().map(str::to_owned))
            .collect()
    })
}

/// The simulation as the fuzzer moves it; answers calls with values and multi-line errors.
#[derive(Default)]
struct FakeSim {
    advancing: bool,
    /// What the current request asked for (`sim.` stripped), if anything.
    asked: Option<String>,
    calls: usize,
}

impl SimControl for FakeSim {
    fn call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        assert!(
            advertised().contains(name),
            "unadvertised sim.{name} called"
        );
        assert_eq!(self.asked.as_deref(), Some(name), "called other than asked");
        self.calls += 1;
        match name.len() % 3 {
            0 => Ok(args.to_vec()),
            1 => Ok(vec![Value::Float(f64::NAN), Value::Integer(7.into())]),
            _ => Err(format!("{name} failed:\n\tline two")),
        }
    }
    fn advancing(&self) -> bool {
        self.advancing
    }
    fn version(&self) -> ProgramVersion {
        VERSION
    }
}

/// Expected idle timeout of a new client: the rule of `RemoteState::handle` (notes §5),
/// with a timeout too long for a `Duration` meaning "never expires".
fn model_timeout(timeout_s: Option<f64>) -> Option<Duration> {
    match timeout_s.filter(|t| t.is_finite() && *t > 0.0) {
        None => Some(DEFAULT_CLIENT_TIMEOUT),
        Some(t) => Duration::try_from_secs_f64(t).ok(),
    }
}

fn run(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let start = Instant::now();
    let mut now = start;
    let mut state = RemoteState::new();
    let mut sim = FakeSim::default();
    // uuid -> (timeout, last seen); `None` timeout: never expires.
    let mut model: HashMap<String, (Option<Duration>, Instant)> = HashMap::new();
    for _ in 0..64 {
        if u.is_empty() {
            break;
        }
        now = advance(u, now)?;
        move_sim(u, &mut sim, &mut state)?;
        if u.ratio(1, 4)? {
            state.expire(now);
            model.retain(|_, (t, seen)| t.is_none_or(|t| now.duration_since(*seen) <= t));
            assert_eq!(state.client_count(), model.len());
        }
        let bytes = request_bytes(u)?;
        let before = state.client_count();
        sim.asked = None;
        sim.calls = 0;
        let reply = match decode_request(&bytes) {
            Ok(request) => {
                update_model(&request, now, &mut model);
                if let Request::Call { func, .. } = &request {
                    sim.asked = func.strip_prefix("sim.").map(str::to_owned);
                }
                state.handle(request, now, &mut sim)
            }
            // As `remote_server` does: the error goes back to the client.
            Err(message) => Reply::Err(message),
        };
        assert!(sim.calls <= 1);
        assert!(state.client_count() <= before + 1);
        assert_eq!(state.client_count(), model.len());
        let _ = state.holding();
        check_client_understands(&reply);
    }
    Ok(())
}

fn update_model(
    request: &Request,
    now: Instant,
    model: &mut HashMap<String, (Option<Duration>, Instant)>,
) {
    let Request::Call {
        uuid,
        func,
        timeout_s,
        ..
    } = request
    else {
        return;
    };
    if func == "_*end*_" {
        model.remove(uuid);
        return;
    }
    let entry = model
        .entry(uuid.clone())
        .or_insert((model_timeout(*timeout_s), now));
    entry.1 = now;
}

/// Time passes: nothing, milliseconds, or minutes (past the default 600 s timeout).
fn advance(u: &mut Unstructured<'_>, now: Instant) -> ArbResult<Instant> {
    let step = match u.int_in_range(0u8..=3)? {
        0 => Duration::ZERO,
        1 => Duration::from_millis(u.int_in_range(0..=5_000)?),
        _ => Duration::from_secs(u.int_in_range(0..=1_000)?),
    };
    Ok(now.checked_add(step).unwrap_or(now))
}

/// The simulation starts, stops, pauses or completes passes between requests.
fn move_sim(u: &mut Unstructured<'_>, sim: &mut FakeSim, state: &mut RemoteState) -> ArbResult<()> {
    match u.int_in_range(0u8..=3)? {
        0 => {}
        1 => {
            if sim.advancing {
                state.after_simulation();
            }
            sim.advancing = false;
        }
        2 => sim.advancing = true,
        _ => {
            if sim.advancing && !state.holding() {
                state.end_of_actuation();
            }
        }
    }
    Ok(())
}

/// One request: raw input bytes, or a request map built from the input.
fn request_bytes(u: &mut Unstructured<'_>) -> ArbResult<Vec<u8>> {
    if u.ratio(1, 4)? {
        let len = u.int_in_range(0..=256)?;
        return Ok(u.bytes(len.min(u.len()))?.to_vec());
    }
    let mut map = Vec::new();
    if u.ratio(7, 8)? {
        map.push((text("uuid"), text(u.choose(&["a", "b", "c", ""])?)));
    }
    map.push((text("func"), func_value(u)?));
    if u.ratio(7, 8)? {
        let n = u.int_in_range(0..=3)?;
        let args = (0..n).map(|_| value(u)).collect::<ArbResult<_>>()?;
        map.push((text("args"), Value::Array(args)));
    } else {
        map.push((text("args"), value(u)?));
    }
    for key in ["ver", "timeout", "argsL", "lang"] {
        if u.ratio(1, 3)? {
            map.push((text(key), value(u)?));
        }
    }
    Ok(encode_value(&Value::Map(map)))
}

fn func_value(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    const SPECIAL: &[&str] = &[
        "_*end*_",
        "_*executed*_",
        "sim.step",
        "sim.setStepping",
        "sim.stopSimulation",
        "zmqRemoteApi.require",
        "zmqRemoteApi.info",
        "sim.",
        "sim.sim.step",
    ];
    Ok(match u.int_in_range(0u8..=3)? {
        0 => text(u.choose(SPECIAL)?),
        1 => {
            let names: Vec<&String> = advertised().iter().collect();
            text(&format!("sim.{}", u.choose(&names)?))
        }
        2 => text(u.arbitrary::<&str>()?),
        _ => value(u)?,
    })
}

/// A small CBOR value of any kind, including the awkward ones (NaN, huge, negative, nested).
fn value(u: &mut Unstructured<'_>) -> ArbResult<Value> {
    Ok(match u.int_in_range(0u8..=8)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Integer(u.arbitrary::<i64>()?.into()),
        3 => Value::Integer(u.arbitrary::<u64>()?.into()),
        4 => Value::Float(u.arbitrary()?),
        5 => Value::Float(*u.choose(&[f64::NAN, f64::INFINITY, -1.0, 1e300, 2.0, 0.0])?),
        6 => text(u.choose(&["sim", "simIK", ""])?),
        7 => Value::Bytes(u.arbitrary()?),
        _ => {
            let n = u.int_in_range(0..=2)?;
            Value::Array(
                (0..n)
                    .map(|_| Ok(Value::Integer(u.arbitrary::<u8>()?.into())))
                    .collect::<ArbResult<_>>()?,
            )
        }
    })
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The bridge's client must read every reply as what the server meant.
fn check_client_understands(reply: &Reply) {
    let bytes = encode_reply(reply);
    let got = client::decode_reply(&bytes).expect("the client cannot read a stand-in reply");
    match (reply, got) {
        (Reply::Ret(sent), client::Reply::Ret(read)) => {
            // Bignum tags do not survive a re-encoding in ciborium (see remote_api_reply).
            if !sent.iter().any(has_bignum) {
                assert_eq!(
                    encode_value(&Value::Array(read)),
                    encode_value(&Value::Array(sent.clone()))
                );
            }
        }
        (Reply::Err(sent), client::Reply::Err(read)) => {
            // See remote_api_reply: texts containing `_=` are ambiguous in the add-on's escaping.
            if !sent.contains("_=") {
                assert_eq!(&read, sent);
            }
        }
        (Reply::Wait, client::Reply::Func { name, args }) => {
            assert_eq!(name, client::FUNC_WAIT);
            assert!(args.is_empty());
        }
        (Reply::Empty, client::Reply::Empty) => {}
        (Reply::VersionMismatch(sent), client::Reply::Protocol1 { success, error }) => {
            assert!(!success);
            assert_eq!(error.as_deref(), Some(sent.as_str()));
        }
        (sent, read) => panic!("server sent {sent:?}, client read {read:?}"),
    }
}

/// Whether a value holds a bignum tag (RFC 8949 §3.4.3: tags 2 and 3); see the same function
/// in remote_api_reply for why such values are not compared after a re-encoding.
fn has_bignum(v: &Value) -> bool {
    match v {
        Value::Tag(2 | 3, _) => true,
        Value::Tag(_, inner) => has_bignum(inner),
        Value::Array(items) => items.iter().any(has_bignum),
        Value::Map(entries) => entries.iter().any(|(k, x)| has_bignum(k) || has_bignum(x)),
        _ => false,
    }
}
