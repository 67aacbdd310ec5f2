//! The stand-in runs scene scripts that send v1 datagrams over the Rust LuaSocket module.

mod standin_support;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use coppelia_bridge::standin::{spawn, Speed};
use coppelia_bridge::wire::{Message, NO_RTT};
use standin_support::*;

/// A sender in the v1 format of docs/PROTOCOL.md (HELLO, STAMP per sensing, BYE).
const SENDER: &str = r#"
local sim = require('sim')
local socket = require('socket')
local udp, id, host, port, alias
local seq, sent, errs = 0, 0, 0
function sysCall_init()
    local h = sim.getObject('.')
    alias = sim.getObjectAlias(h)
    host = sim.getNamedStringParam('test.host') or 'no-host-given'
    port = tonumber(sim.getExtensionString(h, -1, 'port'))
    id = tonumber(alias:match('%d+$'))
    udp = socket.udp()
    udp:settimeout(0)
    udp:sendto(string.pack('<c2BBI4dI2I2s1', 'CB', 1, 1, id, sim.getSimulationTimeStep(), 1, 0, alias), host, port)
end
function sysCall_sensing()
    local t = sim.getSimulationTime()
    local step = math.floor(t / sim.getSimulationTimeStep() + 0.5)
    local msg = string.pack('<c2BBI4I4I4ddI4', 'CB', 1, 2, id, seq, step, t, socket.gettime(), 0xFFFFFFFF)
    local ok = udp:sendto(msg, host, port)
    if ok then sent = sent + 1 else errs = errs + 1 end
    seq = seq + 1
end
function sysCall_cleanup()
    sim.setNamedStringParam('sent.' .. alias, tostring(sent))
    sim.setNamedStringParam('errs.' .. alias, tostring(errs))
    udp:sendto(string.pack('<c2BBI4I4I4I4I4', 'CB', 1, 3, id, seq - 1, sent, errs, 0), host, port)
    udp:close()
end
"#;

fn receiver() -> (UdpSocket, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    (sock, port)
}

fn recv(sock: &UdpSocket) -> Option<Message> {
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).ok()?;
    Some(Message::decode(&buf[..n]).expect("the script sends valid v1"))
}

#[test]
fn scripts_send_hello_stamps_and_bye() {
    let (sock, port) = receiver();
    let ext = format!("port{{{port}}}");
    let scene = scene(
        0.01,
        false,
        &[("Dummy0", &ext, SENDER), ("Dummy1", &ext, SENDER)],
    );
    let (mut config, _log) = config(scene);
    config.speed = Some(Speed::RealTime { rtf: 1.0 });
    config
        .named_params
        .insert("test.host".into(), "127.0.0.1".into());
    config.start = true;
    config.remote = None;
    let standin = spawn(config).unwrap();

    let mut hellos = BTreeMap::new();
    let mut stamps: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    let deadline = Instant::now() + GUARD;
    while stamps.values().map(Vec::len).min().unwrap_or(0) < 20 || stamps.len() < 2 {
        assert!(Instant::now() < deadline, "not enough stamps: {stamps:?}");
        match recv(&sock) {
            Some(Message::Hello(h)) => {
                hellos.insert(h.dummy_id, h);
            }
            Some(Message::Stamp(s)) => stamps.entry(s.dummy_id).or_default().push(s),
            _ => {}
        }
    }
    let summary = standin.shutdown().unwrap();
    let mut byes = BTreeMap::new();
    while let Some(msg) = recv(&sock) {
        match msg {
            Message::Bye(b) => {
                byes.insert(b.dummy_id, b);
            }
            Message::Stamp(s) => stamps.entry(s.dummy_id).or_default().push(s),
            _ => {}
        }
    }

    assert_eq!(hellos.len(), 2);
    assert_eq!(hellos[&0].name, "Dummy0");
    assert_eq!(hellos[&1].dt_s, 0.01);
    for (id, list) in &stamps {
        for (i, s) in list.iter().enumerate() {
            // Loopback with a few hundred datagrams: none lost, in order.
            assert_eq!(s.seq as usize, i, "dummy {id}");
            assert_eq!(s.step, s.seq, "first pass has step 0");
            assert_eq!(s.sim_time_s, f64::from(s.step) * 0.01);
            assert_eq!(s.rtt_us, NO_RTT);
            assert!(s.sent_unix_s > 1.6e9);
        }
        let bye = byes[id];
        assert_eq!(bye.stamps_sent as usize, list.len());
        assert_eq!(bye.last_seq as usize, list.len() - 1);
        assert_eq!(bye.send_errors, 0);
    }
    assert_eq!(summary.runs, 1);
    assert_eq!(summary.script_errors, 0);
    // Every pass ran both scripts' sensing: passes = stamps per dummy.
    assert_eq!(summary.passes as usize, stamps[&0].len());
}

#[test]
fn drop_rate_discards_sends_but_reports_success() {
    let (sock, port) = receiver();
    let ext = format!("port{{{port}}}");
    let scene = scene(0.005, false, &[("Dummy3", &ext, SENDER)]);
    let (mut config, _log) = config(scene);
    config.speed = Some(Speed::RealTime { rtf: 1.0 });
    config
        .named_params
        .insert("test.host".into(), "127.0.0.1".into());
    config.start = true;
    config.faults.drop_rate = 0.5;
    config.faults.seed = 7;
    let standin = spawn(config).unwrap();
    let mut client = Client::connect(standin.endpoint().unwrap());

    let mut received = Vec::new();
    let deadline = Instant::now() + GUARD;
    while received.len() < 30 {
        assert!(
            Instant::now() < deadline,
            "too few stamps arrived: {}",
            received.len()
        );
        if let Some(Message::Stamp(s)) = recv(&sock) {
            received.push(s.seq);
        }
    }
    client.ret("sim.stopSimulation", vec![]);
    let deadline = Instant::now() + GUARD;
    while as_i64(&client.ret("sim.getSimulationState", vec![])[0]) != 0 {
        assert!(Instant::now() < deadline, "simulation did not stop");
    }
    while let Some(msg) = recv(&sock) {
        if let Message::Stamp(s) = msg {
            received.push(s.seq);
        }
    }
    let sent: usize = text_param(&mut client, "sent.Dummy3").parse().unwrap();
    let errs: usize = text_param(&mut client, "errs.Dummy3").parse().unwrap();
    assert_eq!(errs, 0, "dropped sends still report success");
    assert!(
        received.len() < sent,
        "received {} of {sent}",
        received.len()
    );
    assert!(received.windows(2).all(|w| w[0] < w[1]));
    assert!(received.iter().all(|&s| (s as usize) < sent));
    drop(client);
    standin.shutdown().unwrap();
}

fn text_param(client: &mut Client, key: &str) -> String {
    match &client.ret("sim.getNamedStringParam", vec![t(key)])[0] {
        ciborium::Value::Text(s) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn crash_fault_logs_cleans_up_and_pauses() {
    let (sock, port) = receiver();
    let ext = format!("port{{{port}}}");
    let scene = scene(0.05, true, &[("Dummy5", &ext, SENDER)]);
    let (mut config, log) = config(scene);
    config
        .named_params
        .insert("test.host".into(), "127.0.0.1".into());
    config.start = true;
    config.faults.crash_at_s = Some(0.5);
    let standin = spawn(config).unwrap();

    let line = wait_log(&log, |l| l.origin == "/Dummy5@childScript").expect("script error logged");
    assert_eq!(line.verbosity, 420);
    assert!(
        line.message.contains("fault injected by --crash-script-at"),
        "{}",
        line.message
    );
    assert!(
        line.message.contains("Dummy5@childScript"),
        "{}",
        line.message
    );

    // Cleanup ran: the BYE arrives, after the stamps of t = 0 .. 0.45.
    let mut stamps = 0;
    let bye = loop {
        match recv(&sock) {
            Some(Message::Bye(b)) => break b,
            Some(Message::Stamp(_)) => stamps += 1,
            Some(_) => {}
            None => panic!("no BYE after the script error"),
        }
    };
    assert_eq!(stamps, 10);
    assert_eq!(bye.stamps_sent, 10);

    // pauseAtError: the simulation pauses and time freezes.
    let mut client = Client::connect(standin.endpoint().unwrap());
    let deadline = Instant::now() + GUARD;
    while as_i64(&client.ret("sim.getSimulationState", vec![])[0]) != 8 {
        assert!(Instant::now() < deadline, "simulation did not pause");
    }
    let t1 = as_f64(&client.ret("sim.getSimulationTime", vec![])[0]);
    std::thread::sleep(Duration::from_millis(100));
    let t2 = as_f64(&client.ret("sim.getSimulationTime", vec![])[0]);
    assert_eq!(t1, t2);
    // The failing pass (k = 10, t = 0.5) completed, then "last before pause" (k = 11).
    assert_eq!(t1, 12.0 * 0.05);
    drop(client);
    let summary = standin.shutdown().unwrap();
    assert_eq!(summary.script_errors, 1);
}

/// Collects STAMPs of one dummy until `n` arrived.
fn collect_stamps(sock: &UdpSocket, n: usize) -> Vec<coppelia_bridge::wire::Stamp> {
    let mut out = Vec::new();
    let deadline = Instant::now() + GUARD;
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} stamps", out.len());
        if let Some(Message::Stamp(s)) = recv(sock) {
            out.push(s);
        }
    }
    out
}

#[test]
fn stall_fault_delays_one_pass_by_at_least_its_duration() {
    let (sock, port) = receiver();
    let ext = format!("port{{{port}}}");
    let (mut config, _log) = config(scene(0.05, false, &[("Dummy0", &ext, SENDER)]));
    config
        .named_params
        .insert("test.host".into(), "127.0.0.1".into());
    config.start = true;
    config.speed = Some(Speed::MaxSpeed);
    config.faults.stall = Some(coppelia_bridge::standin::Stall {
        at_s: 0.1,
        duration: Duration::from_millis(300),
    });
    let standin = spawn(config).unwrap();
    let stamps = collect_stamps(&sock, 4);
    standin.shutdown().unwrap();
    // The stall happens before pass 2 (t = 0.1): a lower bound only, never a speed limit.
    assert_eq!(stamps[2].sim_time_s, 0.1);
    assert!(
        stamps[2].sent_unix_s - stamps[1].sent_unix_s >= 0.3,
        "{stamps:?}"
    );
}

#[test]
fn rtf_paces_simulation_time_against_wall_time() {
    let (sock, port) = receiver();
    let ext = format!("port{{{port}}}");
    let (mut config, _log) = config(scene(0.05, false, &[("Dummy0", &ext, SENDER)]));
    config
        .named_params
        .insert("test.host".into(), "127.0.0.1".into());
    config.start = true;
    config.speed = Some(Speed::RealTime { rtf: 4.0 });
    let standin = spawn(config).unwrap();
    let stamps = collect_stamps(&sock, 9);
    standin.shutdown().unwrap();
    // 8 passes = 0.4 s of simulation at RTF 4. After a late pass CoppeliaSim lets one pass
    // follow at once (the reference is clamped to simulation time + dt:
    // coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, advanceSimulationByOneStep), so
    // the lower bound is 7 passes' worth, 87.5 ms.
    let wall = stamps[8].sent_unix_s - stamps[0].sent_unix_s;
    assert_eq!(stamps[8].sim_time_s, 0.4);
    assert!(wall >= 0.087, "wall {wall}");
}
