//! Helpers shared by the `tests/standin_*.rs` integration tests.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::scene::parse::{parse_scene, Scene};
use coppelia_bridge::standin::{LogLine, LogSink, Speed, StandinConfig};

/// Failure guard for every wait in these tests (never a speed assertion).
pub const GUARD: Duration = Duration::from_secs(30);

/// A simple XML scene with one dummy per (alias, extension, script).
pub fn scene_xml(dt_s: f64, pause_at_error: bool, dummies: &[(&str, &str, &str)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<CoppeliaSim>\n<filetype>simpleScene</filetype>\n<simulation><simTimeStep>{dt_s}</simTimeStep>\
         <switches><realTime>false</realTime><pauseAtError>{pause_at_error}</pauseAtError></switches></simulation>\n"
    );
    for (alias, ext, script) in dummies {
        xml.push_str(&format!(
            "<dummy><common><alias>{alias}</alias><extensionString>{ext}</extensionString></common>\
             <childScript><scriptText><![CDATA[\n{script}\n]]></scriptText></childScript></dummy>\n"
        ));
    }
    xml.push_str("</CoppeliaSim>\n");
    xml
}

pub fn scene(dt_s: f64, pause_at_error: bool, dummies: &[(&str, &str, &str)]) -> Scene {
    parse_scene(&scene_xml(dt_s, pause_at_error, dummies)).expect("test scene parses")
}

/// Config for tests: max speed, remote API on a free port, quiet log into a channel.
pub fn config(scene: Scene) -> (StandinConfig, Receiver<LogLine>) {
    let (tx, rx) = channel();
    let mut config = StandinConfig::new(scene);
    config.speed = Some(Speed::MaxSpeed);
    config.remote = Some(("127.0.0.1".into(), 0));
    config.log = LogSink {
        tx: Some(tx),
        quiet: true,
    };
    (config, rx)
}

/// Waits (bounded) for a log line matching `pred`.
pub fn wait_log(rx: &Receiver<LogLine>, pred: impl Fn(&LogLine) -> bool) -> Option<LogLine> {
    let deadline = Instant::now() + GUARD;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// A minimal protocol-2 REQ client (what the official clients do), for Rust tests.
pub struct Client {
    socket: zmq::Socket,
    _ctx: zmq::Context,
    uuid: String,
    sent: u32,
    /// `_*wait*_` rounds seen so far.
    pub waits: u32,
}

impl Client {
    pub fn connect(endpoint: &str) -> Client {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::REQ).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_rcvtimeo(GUARD.as_millis() as i32).unwrap();
        socket.connect(endpoint).unwrap();
        Client {
            socket,
            _ctx: ctx,
            uuid: uuid::Uuid::new_v4().to_string(),
            sent: 0,
            waits: 0,
        }
    }

    pub fn raw(&mut self, msg: &Value) -> Value {
        let mut bytes = Vec::new();
        ciborium::into_writer(msg, &mut bytes).unwrap();
        self.socket.send(bytes, 0).unwrap();
        let reply = self
            .socket
            .recv_bytes(0)
            .expect("reply within the guard time");
        ciborium::from_reader(&reply[..]).unwrap()
    }

    fn send(&mut self, func: &str, args: Vec<Value>) -> Value {
        let mut map = vec![
            (t("func"), t(func)),
            (t("argsL"), Value::Integer(args.len().into())),
            (t("args"), Value::Array(args)),
            (t("uuid"), t(&self.uuid)),
        ];
        if self.sent == 0 {
            map.push((t("ver"), Value::Integer(2.into())));
            map.push((t("lang"), t("rust-test")));
            map.push((t("timeout"), Value::Integer(600.into())));
        }
        self.sent += 1;
        self.raw(&Value::Map(map))
    }

    /// Calls `func`, answering `_*wait*_` rounds; returns the reply map.
    pub fn call(&mut self, func: &str, args: Vec<Value>) -> Value {
        let mut reply = self.send(func, args);
        for _ in 0..1_000_000 {
            if get(&reply, "func") != Some(&t("_*wait*_")) {
                return reply;
            }
            self.waits += 1;
            reply = self.send("_*executed*_", vec![]);
        }
        panic!("too many _*wait*_ rounds");
    }

    /// Calls `func` and returns `ret`, panicking on `err`.
    pub fn ret(&mut self, func: &str, args: Vec<Value>) -> Vec<Value> {
        let reply = self.call(func, args);
        match get(&reply, "ret") {
            Some(Value::Array(a)) => a.clone(),
            _ => panic!("{func}: unexpected reply {reply:?}"),
        }
    }
}

pub fn t(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(m) = map else { return None };
    m.iter().find(|(k, _)| k == &t(key)).map(|(_, v)| v)
}

pub fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        Value::Integer(i) => i128::from(*i) as f64,
        other => panic!("not a number: {other:?}"),
    }
}

pub fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => i64::try_from(*i).unwrap(),
        other => panic!("not an integer: {other:?}"),
    }
}
