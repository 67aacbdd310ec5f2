//! The shipped child script (`lua/coppelia_bridge.lua`, embedded as
//! `coppelia_bridge::lua::SCRIPT`) running in the stand-in, sending v1 over UDP.
//! Skipped with a printed reason while the script is still the skeleton's placeholder.

mod standin_support;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use coppelia_bridge::standin::{spawn, Speed};
use coppelia_bridge::wire::Message;
use standin_support::*;

fn script_or_skip() -> Option<&'static str> {
    let script = coppelia_bridge::lua::SCRIPT;
    if script.contains("sysCall_sensing") {
        Some(script)
    } else {
        eprintln!("skipped: lua/coppelia_bridge.lua is still a placeholder");
        None
    }
}

#[test]
fn shipped_script_sends_hello_stamps_and_bye() {
    let Some(script) = script_or_skip() else {
        return;
    };
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = rx.local_addr().unwrap().port();
    let ext0 = format!("id{{0}} host{{127.0.0.1}} port{{{port}}}");
    let ext1 = format!("id{{1}} host{{127.0.0.1}} port{{{port}}}");
    let (mut config, log) = config(scene(
        0.01,
        false,
        &[("Dummy0", &ext0, script), ("Dummy1", &ext1, script)],
    ));
    config.speed = Some(Speed::RealTime { rtf: 1.0 });
    config.start = true;
    let standin = spawn(config).unwrap();

    let mut hellos = BTreeMap::new();
    let mut seqs: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let deadline = Instant::now() + GUARD;
    let mut buf = [0u8; 2048];
    while seqs.len() < 2 || seqs.values().any(|s| s.len() < 20) {
        assert!(
            Instant::now() < deadline,
            "stamps missing: {seqs:?}; log: {:?}",
            log.try_iter().collect::<Vec<_>>()
        );
        let Ok(n) = rx.recv(&mut buf) else { continue };
        match Message::decode(&buf[..n]) {
            Ok(Message::Hello(h)) => {
                hellos.insert(h.dummy_id, h);
            }
            Ok(Message::Stamp(s)) => seqs.entry(s.dummy_id).or_default().push(s.seq),
            _ => {}
        }
    }
    let summary = standin.shutdown().unwrap();
    let mut byes = BTreeMap::new();
    while let Ok(n) = rx.recv(&mut buf) {
        if let Ok(Message::Bye(b)) = Message::decode(&buf[..n]) {
            byes.insert(b.dummy_id, b);
        }
    }
    assert_eq!(
        summary.script_errors,
        0,
        "log: {:?}",
        log.try_iter().collect::<Vec<_>>()
    );
    assert_eq!(hellos.keys().copied().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(hellos[&0].name, "Dummy0");
    for (id, list) in &seqs {
        assert!(
            list.windows(2).all(|w| w[1] == w[0] + 1),
            "dummy {id}: {list:?}"
        );
        assert_eq!(byes[id].send_errors, 0);
        assert!(byes[id].stamps_sent as usize >= list.len());
    }
}

#[test]
fn shipped_script_over_tcp_sends_framed_messages() {
    use coppelia_bridge::wire::{FrameDecoder, DEFAULT_MAX_FRAME};
    use std::io::Read;
    use std::net::TcpListener;

    let Some(script) = script_or_skip() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ext = format!("id{{4}} host{{127.0.0.1}} port{{{port}}} transport{{tcp}}");
    let (mut config, _log) = config(scene(0.01, false, &[("Dummy4", &ext, script)]));
    config.speed = Some(Speed::RealTime { rtf: 1.0 });
    config.start = true;
    let standin = spawn(config).unwrap();

    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut kinds = Vec::new();
    let deadline = Instant::now() + GUARD;
    let mut buf = [0u8; 4096];
    while kinds.iter().filter(|k| **k == "stamp").count() < 10 {
        assert!(Instant::now() < deadline, "frames missing: {kinds:?}");
        let Ok(n) = conn.read(&mut buf) else { continue };
        decoder.extend(&buf[..n]);
        while let Ok(Some(frame)) = decoder.next_frame() {
            kinds.push(match Message::decode(&frame) {
                Ok(Message::Hello(_)) => "hello",
                Ok(Message::Stamp(_)) => "stamp",
                Ok(Message::Bye(_)) => "bye",
                _ => "other",
            });
        }
    }
    assert_eq!(kinds[0], "hello");
    standin.shutdown().unwrap();
}
