//! The stand-in runs the provided scene's scripts like Debian's Lua 5.3 + LuaSocket do under
//! the pass-order harness: the datagrams are equal field by field (wall-clock stamps aside).

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use coppelia_bridge::remote_api::{Client, ClientConfig};
use coppelia_bridge::scene::parse::parse_scene;
use coppelia_bridge::standin::{spawn, Speed, StandinConfig};
use coppelia_bridge::wire::{Message, Stamp};

const PASSES: u32 = 40;

/// Every message per dummy, in arrival order, read until the socket stays quiet.
fn drain(rx: &UdpSocket) -> BTreeMap<u32, Vec<Message>> {
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut out: BTreeMap<u32, Vec<Message>> = BTreeMap::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = rx.recv(&mut buf) {
        let m = Message::decode(&buf[..n]).expect("v1 message");
        out.entry(m.dummy_id()).or_default().push(m);
    }
    out
}

/// Replaces what legitimately differs between two runs: wall-clock send times.
fn without_wall_clock(msgs: &[Message]) -> Vec<Message> {
    msgs.iter()
        .map(|m| match m {
            Message::Stamp(s) => Message::Stamp(Stamp {
                sent_unix_s: 0.0,
                ..*s
            }),
            other => other.clone(),
        })
        .collect()
}

fn harness_run() -> BTreeMap<u32, Vec<Message>> {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port().to_string();
    let status = Command::new("lua5.3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "lua/test/harness.lua",
            "--port",
            &port,
            "--dummies",
            "4",
            "--passes",
            &PASSES.to_string(),
            "--dt",
            "0.05",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    drain(&rx)
}

/// The committed scene in the stand-in, stepped by a remote client: PASSES − 3 steps, then
/// stopSimulation: the pass held at the remote-API gate finishes, then the two stop passes
/// run (the final one with cleanup), notes §2 and docs/STANDIN.md.
fn standin_run() -> BTreeMap<u32, Vec<Message>> {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenes/coppelia_bridge_4dummies.simscene.xml"
    ))
    .unwrap();
    let mut config = StandinConfig::new(parse_scene(&xml).unwrap());
    config.remote = Some(("127.0.0.1".into(), 0));
    config.speed = Some(Speed::MaxSpeed);
    config.named_params.insert(
        "coppelia_bridge.port".into(),
        rx.local_addr().unwrap().port().to_string(),
    );
    let standin = spawn(config).unwrap();
    let mut client = Client::connect(standin.endpoint().unwrap(), ClientConfig::default()).unwrap();
    client.set_stepping(true).unwrap();
    client.start_simulation().unwrap();
    for _ in 0..PASSES - 3 {
        client.step().unwrap();
    }
    client.stop_simulation().unwrap();
    let msgs = drain(&rx);
    let _ = client.close();
    standin.shutdown().unwrap();
    msgs
}

#[test]
fn stand_in_datagrams_equal_the_lua_harness_field_by_field() {
    if !common::lua_ready() {
        return;
    }
    let reference = harness_run();
    let got = standin_run();
    assert_eq!(reference.keys().collect::<Vec<_>>(), vec![&0, &1, &2, &3]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    for (id, want) in &reference {
        let have = &got[id];
        assert_eq!(
            want.len(),
            PASSES as usize + 2,
            "HELLO, {PASSES} STAMPs, BYE under the harness"
        );
        assert_eq!(
            without_wall_clock(have),
            without_wall_clock(want),
            "dummy {id}"
        );
        for m in have {
            if let Message::Stamp(s) = m {
                assert!(
                    s.sent_unix_s > 1.6e9,
                    "sent_unix_s is Unix time from socket.gettime()"
                );
            }
        }
    }
}
