//! Issue 11 §3, the remote API cells: a "CoppeliaSim" (the in-process fake REP server) whose
//! replies are huge, malformed or never come. The client never crashes, never waits past its
//! deadline, never holds more than the reply size cap, and stays usable afterwards.

use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::remote_api::fake::{FakeAction, FakeServer};
use coppelia_bridge::remote_api::message::{encode_ret, encode_value};
use coppelia_bridge::remote_api::{
    Client, ClientConfig, RemoteError, ZmqTransport, MAX_REPLY_BYTES,
};

/// Deadline of each call: short, since most of these replies never arrive.
const DEADLINE: Duration = Duration::from_millis(500);
/// Failure guard on top of the deadline (a loaded machine may be slow to wake up).
const SLACK: Duration = Duration::from_secs(10);

fn client(endpoint: &str) -> Client<ZmqTransport> {
    Client::connect(
        endpoint,
        ClientConfig {
            timeout: DEADLINE,
            ..ClientConfig::default()
        },
    )
    .unwrap()
}

/// Replies with `first` to the first request, then a normal simulation time.
fn then_normal(
    first: FakeAction,
) -> impl FnMut(&coppelia_bridge::remote_api::fake::Seen) -> FakeAction {
    let mut first = Some(first);
    move |_| {
        first
            .take()
            .unwrap_or_else(|| FakeAction::Reply(encode_ret(vec![Value::Float(2.5)])))
    }
}

/// Cell "remote API reply huge": a well-formed reply larger than the cap is dropped by
/// ZeroMQ (`ZMQ_MAXMSGSIZE`) before it is held in memory: the call sees no reply, fails
/// within its deadline as unreachable, and the next call on a fresh socket works.
#[test]
fn a_huge_reply_is_refused_at_the_size_cap_and_the_client_recovers() {
    let huge = encode_ret(vec![Value::Bytes(vec![0u8; MAX_REPLY_BYTES + 1024])]);
    let server = FakeServer::start(then_normal(FakeAction::Reply(huge))).unwrap();
    let mut c = client(server.endpoint());
    let t = Instant::now();
    let err = c.get_simulation_time().unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(t.elapsed() < DEADLINE + SLACK);
    assert_eq!(c.get_simulation_time().unwrap(), 2.5, "usable afterwards");
}

/// Cell "remote API reply large but under the cap": accepted and typed-checked (a byte
/// string where a float is expected is an unexpected return, not a crash).
#[test]
fn a_large_reply_under_the_cap_is_a_typed_error() {
    let large = encode_ret(vec![Value::Bytes(vec![7u8; 1 << 20])]);
    let server = FakeServer::start(then_normal(FakeAction::Reply(large))).unwrap();
    let mut c = client(server.endpoint());
    let err = c.get_simulation_time().unwrap_err();
    assert!(
        matches!(err, RemoteError::UnexpectedReturn { .. }),
        "{err:?}"
    );
    assert_eq!(c.get_simulation_time().unwrap(), 2.5);
}

/// Cell "remote API reply malformed": garbage, truncated CBOR, CBOR of the wrong shape, a
/// nesting bomb: each a `MalformedReply` naming the endpoint, none a panic.
#[test]
fn malformed_replies_are_errors_naming_the_endpoint() {
    let mut nested = vec![0x81u8; 100_000]; // [[[[...
    nested.push(0x00);
    let truncated = {
        let mut r = encode_ret(vec![Value::Float(1.0)]);
        r.truncate(r.len() - 3);
        r
    };
    let wrong_shape = encode_value(&Value::Array(vec![Value::Integer(1.into())]));
    let control_chars = encode_value(&Value::Map(vec![(
        Value::Text("\u{1b}[2J\nfake log line".into()),
        Value::Integer(1.into()),
    )]));
    for (what, bytes) in [
        ("garbage", vec![0xffu8, 0x00, 0x13, 0x37]),
        ("empty", vec![]),
        ("truncated CBOR", truncated),
        ("an array, not a map", wrong_shape),
        ("a nesting bomb", nested),
        ("control characters in a key", control_chars),
    ] {
        let server = FakeServer::start(then_normal(FakeAction::Reply(bytes))).unwrap();
        let mut c = client(server.endpoint());
        let err = c.get_simulation_time().unwrap_err();
        assert!(
            matches!(err, RemoteError::MalformedReply { .. }),
            "{what}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(server.endpoint()), "{what}: {text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\n'),
            "{what}: server bytes never reach the log raw: {text:?}"
        );
        assert_eq!(
            c.get_simulation_time().unwrap(),
            2.5,
            "{what}: usable afterwards"
        );
    }
}

/// Cell "remote API reply never comes": the call fails as unreachable after its deadline (not
/// before, not much after), the REQ socket is replaced, and the next call works.
#[test]
fn a_reply_that_never_comes_fails_at_the_deadline() {
    let never = FakeAction::Delay(Duration::from_secs(30), encode_ret(vec![]));
    let server = FakeServer::start(then_normal(never)).unwrap();
    let mut c = client(server.endpoint());
    let t = Instant::now();
    let err = c.get_simulation_time().unwrap_err();
    let took = t.elapsed();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(took >= DEADLINE, "waited the deadline: {took:?}");
    assert!(took < DEADLINE + SLACK, "{took:?}");
    drop(server); // the fake is stuck in its delay; a new one answers normally
    let server = FakeServer::start(then_normal(FakeAction::Reply(encode_ret(vec![
        Value::Float(2.5),
    ]))))
    .unwrap();
    let mut c = client(server.endpoint());
    assert_eq!(c.get_simulation_time().unwrap(), 2.5);
}
