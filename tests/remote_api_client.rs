//! The client against a real ZeroMQ REP socket on loopback (the in-process fake server).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use coppelia_bridge::remote_api::fake::{empty_map, FakeAction, FakeServer, Seen};
use coppelia_bridge::remote_api::message::{
    encode_err, encode_func, encode_ret, encode_value, FUNC_END, FUNC_EXECUTED, FUNC_WAIT,
};
use coppelia_bridge::remote_api::{Client, ClientConfig, RemoteError, SimState};

/// Failure guard only: every reply in these tests arrives at once.
const GUARD: Duration = Duration::from_secs(10);

fn config(timeout: Duration) -> ClientConfig {
    ClientConfig {
        timeout,
        ..ClientConfig::default()
    }
}

fn func_of(seen: &Seen) -> &str {
    seen.as_ref().map(|r| r.func.as_str()).unwrap_or("")
}

/// Answers the calls a probe makes with fixed values.
fn sim_like(seen: &Seen) -> FakeAction {
    let ret = |v: Value| FakeAction::Reply(encode_ret(vec![v]));
    match func_of(seen) {
        "sim.getSimulationTime" => ret(Value::Float(1.5)),
        "sim.getSimulationTimeStep" => ret(Value::Float(0.05)),
        "sim.getSimulationState" => ret(Value::Integer(17.into())),
        "sim.getBoolParam" => ret(Value::Bool(true)),
        "sim.getInt32Param" => {
            let first = seen.as_ref().and_then(|r| r.args.first());
            let is_version = first == Some(&Value::Integer(1.into()));
            ret(Value::Integer(if is_version { 40600 } else { 18 }.into()))
        }
        FUNC_END => FakeAction::Reply(empty_map()),
        "sim.getObjectAlias" => ret(Value::Text("Dummy0".into())),
        other => FakeAction::Reply(encode_err(&format!("No such function: {other}"))),
    }
}

#[test]
fn typed_calls_against_a_rep_socket() {
    let server = FakeServer::start(sim_like).unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    assert_eq!(c.get_simulation_time().unwrap(), 1.5);
    assert_eq!(c.get_simulation_time_step().unwrap(), 0.05);
    assert_eq!(c.get_simulation_state().unwrap(), SimState::Running);
    assert!(c.real_time_mode().unwrap());
    assert_eq!(c.program_version().unwrap().to_string(), "4.6.0");
    assert_eq!(c.get_object_alias(5, -1).unwrap(), "Dummy0");
    let reqs = server.requests();
    assert_eq!(reqs[0].as_ref().unwrap().ver, Some(2));
    assert!(reqs[1..].iter().all(|r| r.as_ref().unwrap().ver.is_none()));
}

#[test]
fn unknown_function_error_is_surfaced_verbatim() {
    let server = FakeServer::start(sim_like).unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    let err = c.call("sim.noSuchThing", vec![]).unwrap_err();
    match &err {
        RemoteError::ServerError { message, .. } => {
            assert_eq!(message, "No such function: sim.noSuchThing")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(server.endpoint()));
}

#[test]
fn multiline_error_arrives_with_real_newlines() {
    let server = FakeServer::start(|_| {
        FakeAction::Reply(encode_value(&Value::Map(vec![(
            Value::Text("err".into()),
            Value::Text("[string \"x\"]:1: boom_=NL=__=TB=_at line 1".into()),
        )])))
    })
    .unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    let RemoteError::ServerError { message, .. } = c.call("f", vec![]).unwrap_err() else {
        panic!("not a server error");
    };
    assert_eq!(message, "[string \"x\"]:1: boom\n\tat line 1");
}

#[test]
fn step_answers_wait_rounds_until_ret() {
    let rounds = Arc::new(AtomicUsize::new(0));
    let r = rounds.clone();
    let server = FakeServer::start(move |seen| match func_of(seen) {
        "sim.step" | FUNC_EXECUTED if r.fetch_add(1, Ordering::SeqCst) < 4 => {
            FakeAction::Reply(encode_func(FUNC_WAIT, vec![]))
        }
        _ => FakeAction::Reply(encode_ret(vec![])),
    })
    .unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    c.step().unwrap();
    assert_eq!(
        server.funcs(),
        [
            "sim.step",
            FUNC_EXECUTED,
            FUNC_EXECUTED,
            FUNC_EXECUTED,
            FUNC_EXECUTED
        ]
    );
}

#[test]
fn repeat_makes_the_client_resend() {
    let first = Arc::new(AtomicUsize::new(0));
    let f = first.clone();
    let server = FakeServer::start(move |_| {
        if f.fetch_add(1, Ordering::SeqCst) == 0 {
            FakeAction::Reply(encode_func("_*repeat*_", vec![]))
        } else {
            FakeAction::Reply(encode_ret(vec![Value::Integer(42.into())]))
        }
    })
    .unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    assert_eq!(c.get_object("/Dummy").unwrap(), 42);
    let reqs = server.requests();
    assert_eq!(server.funcs(), ["sim.getObject", "sim.getObject"]);
    assert_eq!(
        reqs[0].as_ref().unwrap().args,
        reqs[1].as_ref().unwrap().args
    );
}

#[test]
fn silent_server_hits_the_deadline_then_the_recreated_socket_works() {
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    // First request: answered only after the client gave up (the late reply goes to the
    // closed socket and is dropped). Later requests: answered at once.
    let server = FakeServer::start(move |_| {
        let reply = encode_ret(vec![Value::Float(2.0)]);
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            FakeAction::Delay(Duration::from_millis(1500), reply)
        } else {
            FakeAction::Reply(reply)
        }
    })
    .unwrap();
    let mut c = Client::connect(server.endpoint(), config(Duration::from_millis(200))).unwrap();
    let err = c.get_simulation_time().unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("within 200 ms"), "{err}");
    // Let the fake finish its late reply so that it is free for the next request; then the
    // next call does not depend on timing.
    assert!(server.wait_replies(1, GUARD));
    c.set_timeout(GUARD);
    assert_eq!(c.get_simulation_time().unwrap(), 2.0);
    // The new socket is a new connection: the hello is sent again, with the same uuid.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].as_ref().unwrap().ver, Some(2));
    assert_eq!(
        reqs[0].as_ref().unwrap().uuid,
        reqs[1].as_ref().unwrap().uuid
    );
}

#[test]
fn nobody_listening_is_unreachable_within_the_deadline() {
    let (_held, port) = common::refusing_tcp_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut c = Client::connect(&endpoint, config(Duration::from_millis(300))).unwrap();
    let err = c.get_simulation_time().unwrap_err();
    let text = err.to_string();
    assert!(err.is_unreachable());
    assert!(text.contains(&endpoint), "{text}");
    assert!(text.contains("--no-remote"), "{text}");
}

#[test]
fn a_server_that_comes_back_is_used_again() {
    let server = FakeServer::start(sim_like).unwrap();
    let endpoint = server.endpoint().to_owned();
    let mut c = Client::connect(&endpoint, config(Duration::from_millis(300))).unwrap();
    assert_eq!(c.get_simulation_time().unwrap(), 1.5);
    server.stop();
    assert!(c.get_simulation_time().unwrap_err().is_unreachable());
    let back = FakeServer::start_at(&endpoint, sim_like).unwrap();
    c.set_timeout(GUARD);
    assert_eq!(c.get_simulation_time().unwrap(), 1.5);
    let first = back.requests().into_iter().flatten().next().unwrap();
    assert_eq!(first.ver, Some(2), "the new server gets a hello");
    drop(c);
    assert_eq!(back.funcs().last().map(String::as_str), Some(FUNC_END));
}

#[test]
fn protocol1_server_is_reported_as_such() {
    let server = FakeServer::start(|_| {
        FakeAction::Reply(encode_value(&Value::Map(vec![
            (Value::Text("success".into()), Value::Bool(false)),
            (
                Value::Text("error".into()),
                Value::Text(
                    "The client ZeroMQ remote API version does not match CoppeliaSim's version"
                        .into(),
                ),
            ),
        ])))
    })
    .unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    let err = c.get_simulation_time().unwrap_err();
    assert!(matches!(err, RemoteError::Protocol1 { .. }), "{err:?}");
    assert!(err.to_string().contains("use CoppeliaSim 4.6 or newer"));
}

#[test]
fn garbage_bytes_are_a_malformed_reply() {
    let server =
        FakeServer::start(|_| FakeAction::Reply(b"HTTP/1.1 400 Bad Request\r\n".to_vec())).unwrap();
    let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
    let err = c.get_simulation_time().unwrap_err();
    assert!(matches!(err, RemoteError::MalformedReply { .. }), "{err:?}");
    assert!(err.to_string().contains("another program"), "{err}");
    // The REQ socket got its reply, so it stays usable.
    let err2 = c.get_simulation_time().unwrap_err();
    assert!(matches!(err2, RemoteError::MalformedReply { .. }));
}

#[test]
fn drop_sends_end() {
    let server = FakeServer::start(sim_like).unwrap();
    {
        let mut c = Client::connect(server.endpoint(), config(GUARD)).unwrap();
        c.get_simulation_time().unwrap();
    }
    assert_eq!(server.funcs(), ["sim.getSimulationTime", FUNC_END]);
}

#[test]
fn bad_endpoint_is_rejected_with_an_example() {
    let err = Client::connect("127.0.0.1:23000", config(GUARD)).unwrap_err();
    assert!(matches!(err, RemoteError::BadEndpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("tcp://127.0.0.1:23000"));
}
