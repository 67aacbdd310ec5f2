//! Conformance: each test encodes one CoppeliaSim rule the stand-in (and the shipped script)
//! follows, and names where it was read (repo@tag:file, function). Repositories are
//! CoppeliaRobotics/coppeliaSimLib, /lua, /zmqRemoteApi and /include on GitHub.

mod standin_support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ciborium::Value;
use coppelia_bridge::remote_api::ProgramVersion;
use coppelia_bridge::scene::parse::parse_scene_for;
use coppelia_bridge::standin::api::{self, Kind, SIM_API};
use coppelia_bridge::standin::{spawn, LogLine, StandinConfig};
use coppelia_bridge::wire::Message;
use standin_support::*;

fn version(raw: i64) -> ProgramVersion {
    ProgramVersion { raw, revision: 0 }
}

/// A scene parsed for `raw`, with the stand-in claiming that version.
fn config_for(raw: i64, xml: &str) -> (StandinConfig, std::sync::mpsc::Receiver<LogLine>) {
    let (mut config, log) = config(parse_scene_for(xml, raw).expect("scene parses"));
    config.version = version(raw);
    (config, log)
}

fn scene_of(objects: &str) -> String {
    format!(
        "<CoppeliaSim><filetype>simpleScene</filetype><xmlSerializationNb>1</xmlSerializationNb>\
         <simulation><simTimeStep>0.05</simTimeStep><switches><pauseAtError>false</pauseAtError></switches></simulation>\
         {objects}</CoppeliaSim>"
    )
}

fn child_script(alias: &str, ext: &str, script: &str) -> String {
    format!(
        "<dummy><common><alias>{alias}</alias><extensionString>{ext}</extensionString></common>\
         <childScript><scriptText><![CDATA[\n{script}\n]]></scriptText></childScript></dummy>"
    )
}

/// A dummy with a 4.7 `<script>` object under it.
fn script_object(alias: &str, ext: &str, proxy: bool, script: &str) -> String {
    format!(
        "<dummy><common><alias>{alias}</alias><extensionString>{ext}</extensionString></common>\
         <script><common><alias>Script</alias></common><switches><parentIsProxy>{proxy}</parentIsProxy></switches>\
         <scriptText><![CDATA[\n{script}\n]]></scriptText></script></dummy>"
    )
}

fn messages(log: &std::sync::mpsc::Receiver<LogLine>, prefix: &str) -> Vec<String> {
    let line = wait_log(log, |l| l.message.starts_with(prefix)).expect("log line");
    vec![line.message]
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn err_of(reply: &Value) -> Option<String> {
    get(reply, "err").map(text_of)
}

/// The one table (standin::api::SIM_API), walked for every supported version: every function
/// it lists is served to scripts / remote clients, every constant has its value, and names
/// the version lacks are nil in Lua and `No such function` remotely
/// (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, handleRequest).
#[test]
fn every_table_entry_is_served_and_nothing_else() {
    for raw in [40300, 40501, 40600, 40700, 40800, 41000] {
        let v = version(raw);
        let mut checks = String::new();
        for e in SIM_API {
            let present = e.in_version(raw);
            match e.kind {
                Kind::Func { lua: true, .. } => checks.push_str(&format!(
                    "check('{0}', type(sim.{0}) == '{1}')\n",
                    e.name,
                    if present { "function" } else { "nil" }
                )),
                Kind::Const(value) if present => {
                    checks.push_str(&format!("check('{0}', sim.{0} == {value})\n", e.name))
                }
                _ => {}
            }
        }
        checks.push_str("check('setExtensionString', sim.setExtensionString == nil)\n");
        let script = format!(
            "local bad = {{}}\nlocal function check(name, ok) if not ok then bad[#bad + 1] = name end end\n\
             {checks}function sysCall_init() sim.addLog(450, 'bad: ' .. table.concat(bad, ' ')) end"
        );
        let (mut config, log) = config_for(raw, &scene_of(&child_script("D", "", &script)));
        config.start = true;
        if raw < 40600 {
            config.remote = None;
        }
        let standin = spawn(config).unwrap();
        assert_eq!(messages(&log, "bad:"), ["bad: "], "version {raw}");
        if let Some(port) = standin.port() {
            let mut client = Client::connect(&format!("tcp://127.0.0.1:{port}"));
            for e in SIM_API
                .iter()
                .filter(|e| matches!(e.kind, Kind::Func { remote: true, .. }))
            {
                let reply = client.call(&format!("sim.{}", e.name), vec![]);
                let missing = err_of(&reply)
                    .is_some_and(|m| m == format!("No such function: sim.{}", e.name));
                assert_eq!(
                    missing,
                    !e.in_version(raw),
                    "sim.{} in {raw}: {reply:?}",
                    e.name
                );
            }
            let reply = client.call("sim.setExtensionString", vec![]);
            assert_eq!(
                err_of(&reply).as_deref(),
                Some("No such function: sim.setExtensionString")
            );
            let info = client.ret("zmqRemoteApi.info", vec![t("sim")]);
            let Value::Map(entries) = &info[0] else {
                panic!()
            };
            let served: Vec<String> = entries.iter().map(|(k, _)| text_of(k)).collect();
            let expected: Vec<String> = api::entries(v)
                .filter(|e| !matches!(e.kind, Kind::Func { remote: false, .. }))
                .map(|e| e.name.to_owned())
                .collect();
            assert_eq!(served.len(), expected.len(), "info('sim') of {raw}");
            assert!(
                expected.iter().all(|n| served.contains(n)),
                "info('sim') of {raw}"
            );
        }
        standin.shutdown().unwrap();
    }
}

const OBJECT_PROBE: &str = "function sysCall_init()
    local me = sim.getObject('.')
    local up = sim.getObject('..', {noError = true})
    sim.addLog(450, string.format('probe %s %d %s %d', sim.getObjectAlias(me), sim.getObjectType(me),
        up >= 0 and sim.getObjectAlias(up) or '-', sim.getObject('/D1/Script', {noError = true})))
end";

/// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp, simGetObject_internal: in a script
/// object '.' is the script itself (type 17) and '..' the dummy; with "parent is proxy" '.' is
/// the dummy; in a legacy child script '.' is the object it is attached to.
#[test]
fn get_object_dot_in_script_objects_and_child_scripts() {
    let cases = [
        (
            script_object("D1", "", false, OBJECT_PROBE),
            "probe Script 17 D1 2",
        ),
        (
            script_object("D1", "", true, OBJECT_PROBE),
            "probe D1 4 - 2",
        ),
        (child_script("D1", "", OBJECT_PROBE), "probe D1 4 - -1"),
    ];
    for (objects, expected) in cases {
        let (mut config, log) = config_for(40700, &scene_of(&objects));
        config.start = true;
        let standin = spawn(config).unwrap();
        assert_eq!(messages(&log, "probe"), [expected], "{objects}");
        standin.shutdown().unwrap();
    }
}

/// Receives HELLOs until `n` dummies said hello (bounded).
fn hellos(rx: &UdpSocket, n: usize) -> Vec<(u32, String)> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + GUARD;
    let mut buf = [0u8; 2048];
    while seen.len() < n && Instant::now() < deadline {
        let Ok(len) = rx.recv(&mut buf) else { continue };
        if let Ok(Message::Hello(h)) = Message::decode(&buf[..len]) {
            seen.push((h.dummy_id, h.name));
        }
    }
    seen.sort();
    seen
}

fn udp() -> (UdpSocket, u16) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = rx.local_addr().unwrap().port();
    (rx, port)
}

/// The shipped script on 4.7+ script objects (with and without "parent is proxy") and as a
/// legacy child script measures the dummy: ids from the dummies' extension strings, HELLO
/// names the dummies' aliases (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp,
/// simGetObject_internal; include@coppeliasim-v4.8.0-rev0:simConst.h, sim_sceneobject_script).
#[test]
fn shipped_script_measures_the_dummy_on_every_attachment() {
    let script = coppelia_bridge::lua::SCRIPT;
    for raw in [40700, 41000] {
        let (rx, port) = udp();
        let ext = |id: u32| format!("id{{{id}}} host{{127.0.0.1}} port{{{port}}}");
        let objects = [
            script_object("Dummy0", &ext(10), false, script),
            script_object("Dummy1", &ext(11), true, script),
            child_script("Dummy2", &ext(12), script),
        ]
        .concat();
        let (mut config, log) = config_for(raw, &scene_of(&objects));
        config.start = true;
        let standin = spawn(config).unwrap();
        let seen = hellos(&rx, 3);
        let summary = standin.shutdown().unwrap();
        assert_eq!(
            seen,
            [
                (10, "Dummy0".into()),
                (11, "Dummy1".into()),
                (12, "Dummy2".into())
            ],
            "version {raw}; log: {:?}",
            log.try_iter().collect::<Vec<_>>()
        );
        assert_eq!(summary.script_errors, 0);
    }
}

/// zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, sim.step: while
/// stopped or paused the client is still told to wait (one round) before `{ret}`.
#[test]
fn step_while_stopped_answers_a_wait_round() {
    let (config, _log) = config_for(40600, &scene_of(""));
    let standin = spawn(config).unwrap();
    let mut client = Client::connect(&format!("tcp://127.0.0.1:{}", standin.port().unwrap()));
    assert!(client.ret("sim.step", vec![]).is_empty());
    assert_eq!(client.waits, 1);
    standin.shutdown().unwrap();
}

/// zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, sim.setStepping:
/// a per-client level, +1 for Lua-true values (0 included), −1 otherwise, previous returned.
#[test]
fn set_stepping_is_a_level_per_client() {
    let (config, _log) = config_for(40600, &scene_of(""));
    let standin = spawn(config).unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", standin.port().unwrap());
    let mut a = Client::connect(&endpoint);
    let mut b = Client::connect(&endpoint);
    let level = |c: &mut Client, v: Value| as_i64(&c.ret("sim.setStepping", vec![v])[0]);
    assert_eq!(level(&mut a, Value::Bool(true)), 0);
    assert_eq!(level(&mut a, Value::Integer(0.into())), 1);
    assert_eq!(level(&mut b, Value::Bool(true)), 0, "levels are per client");
    assert_eq!(level(&mut a, Value::Bool(false)), 2);
    assert_eq!(level(&mut a, Value::Null), 1);
    assert_eq!(level(&mut a, Value::Bool(false)), 0);
    standin.shutdown().unwrap();
}

/// lua@coppeliasim-v4.7.0-rev2:sim.lua, sim.yield: outside a coroutine `sim.step()` returns
/// silently (`coroutine.running()` says main thread).
#[test]
fn sim_step_outside_a_coroutine_returns_silently() {
    let script =
        "function sysCall_init() sim.step() sim.switchThread() sim.addLog(450, 'after step') end";
    let (mut config, log) = config_for(40600, &scene_of(&child_script("D", "", script)));
    config.start = true;
    let standin = spawn(config).unwrap();
    assert_eq!(messages(&log, "after step"), ["after step"]);
    assert_eq!(standin.shutdown().unwrap().script_errors, 0);
}

/// coppeliaSimLib@coppeliasim-v4.5.1-rev4:scriptObject.cpp, _hookFunction_lua and
/// shouldAutoYield: any coroutine of a script (here a self-made one, the 4.3-4.5 pattern) is
/// pre-empted after about 2 ms while the forbid level is 0.
#[test]
fn a_busy_self_made_coroutine_is_pre_empted_in_4_5() {
    let script = "local co, rounds = nil, 0
function sysCall_init()
    co = coroutine.create(function() while true do rounds = rounds + 1 end end)
end
function sysCall_actuation()
    coroutine.resume(co)
    if sim.getSimulationTime() >= 0.1 then sim.addLog(450, 'resumed ' .. coroutine.status(co)) end
end";
    let (mut config, log) = config_for(40501, &scene_of(&child_script("D", "", script)));
    config.remote = None;
    config.start = true;
    let standin = spawn(config).unwrap();
    assert_eq!(messages(&log, "resumed"), ["resumed suspended"]);
    standin.shutdown().unwrap();
}

/// Log origins of script errors (coppeliaSimLib@coppeliasim-v4.6.0-rev18 and
/// @coppeliasim-v4.7.0-rev0:scriptObject.cpp, getShortDescriptiveName): the object's path with
/// a leading `/`, `@childScript` up to 4.6, `@simulationScript` from 4.7, nothing for a script
/// object.
#[test]
fn script_error_origins_have_a_leading_slash() {
    let bad = "function sysCall_init() error('boom') end";
    for (raw, objects, origin) in [
        (
            40600,
            child_script("Dummy0", "", bad),
            "/Dummy0@childScript",
        ),
        (
            40700,
            child_script("Dummy0", "", bad),
            "/Dummy0@simulationScript",
        ),
        (40700, script_object("Dummy0", "", false, bad), "/Script"),
    ] {
        let (mut config, log) = config_for(raw, &scene_of(&objects));
        config.start = true;
        let standin = spawn(config).unwrap();
        let line = wait_log(&log, |l| l.verbosity == 420).expect("script error logged");
        assert_eq!(line.origin, origin, "{raw}");
        assert!(line.message.contains("boom"));
        standin.shutdown().unwrap();
    }
}

/// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, advanceSimulationByOneStep and
/// pauseOnErrorRequested: with pauseAtError the failing pass completes, one "last before pause"
/// pass runs, then the simulation pauses.
#[test]
fn pause_at_error_runs_the_failing_pass_and_one_more() {
    let script = "function sysCall_sensing()
    sim.addLog(450, string.format('sensing %.2f', sim.getSimulationTime()))
    if sim.getSimulationTime() >= 0.2 then error('fail at 0.2') end
end";
    let xml = scene_of(&child_script("Bad", "", script)).replace(
        "<pauseAtError>false</pauseAtError>",
        "<pauseAtError>true</pauseAtError>",
    );
    let (mut config, log) = config_for(40600, &xml);
    config.start = true;
    let standin = spawn(config).unwrap();
    let mut client = Client::connect(&format!("tcp://127.0.0.1:{}", standin.port().unwrap()));
    let deadline = Instant::now() + GUARD;
    while as_i64(&client.ret("sim.getSimulationState", vec![])[0]) != 8 {
        assert!(Instant::now() < deadline, "never paused");
    }
    // Passes at t = 0.2 (failing, the script dies) and 0.25 (last before pause) ran.
    assert!((as_f64(&client.ret("sim.getSimulationTime", vec![])[0]) - 0.3).abs() < 1e-9);
    assert!(wait_log(&log, |l| l.verbosity == 420).is_some());
    standin.shutdown().unwrap();
}

/// coppeliaSimLib@coppeliasim-v4.7.0-rev2:ser.cpp, CSer::_readXmlHeader: a scene without
/// `<filetype>` is invalid, so `sim.loadScene` fails.
#[test]
fn a_scene_without_filetype_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_filetype.simscene.xml");
    std::fs::write(&path, "<CoppeliaSim><dummy/></CoppeliaSim>").unwrap();
    let (config, _log) = config_for(40600, &scene_of(""));
    let standin = spawn(config).unwrap();
    let mut client = Client::connect(&format!("tcp://127.0.0.1:{}", standin.port().unwrap()));
    let reply = client.call("sim.loadScene", vec![t(path.to_str().unwrap())]);
    assert!(
        err_of(&reply).is_some_and(|e| e.contains("<filetype>")),
        "{reply:?}"
    );
    standin.shutdown().unwrap();
}

/// `scene --build-remote` against the stand-in, end to end, for 4.6 (sim.addScript) and 4.7
/// (sim.createScript): only functions that version has are called (the stand-in answers
/// `No such function` to anything else), the result is read back, and the saved scene runs
/// the shipped script with the ids, host and port the builder embedded.
#[test]
fn scene_build_remote_runs_against_the_stand_in_end_to_end() {
    for (raw, flag) in [(40600, "4.6.0"), (40700, "4.7.0")] {
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("built.simscene.xml");
        let (config, _log) = config_for(raw, &scene_of(""));
        let standin = spawn(config).unwrap();
        let (rx, udp_port) = udp();
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
            .args(["scene", "--build-remote", "--dummies", "2", "--port"])
            .arg(udp_port.to_string())
            .arg("--remote")
            .arg(format!("tcp://127.0.0.1:{}", standin.port().unwrap()))
            .arg("--save")
            .arg(&saved)
            .output()
            .unwrap();
        standin.shutdown().unwrap();
        assert!(
            out.status.success(),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let xml = std::fs::read_to_string(&saved).unwrap();
        let scene = parse_scene_for(&xml, raw).unwrap();
        assert_eq!(scene.script_order().len(), 2, "{flag}: {xml}");
        let (mut config, _log) = config_for(raw, &xml);
        config.start = true;
        let standin = spawn(config).unwrap();
        let seen = hellos(&rx, 2);
        standin.shutdown().unwrap();
        assert_eq!(seen, [(0, "Dummy0".into()), (1, "Dummy1".into())], "{flag}");
    }
}

/// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, advanceSimulationByOneStep clamps the
/// real-time reference to simulation time + dt: after a 1 s stall at most one pass runs at once
/// (then one per dt), where a catch-up would run the 20 missed passes back to back. Only an
/// upper bound on passes is asserted: a loaded machine runs fewer, never more.
#[test]
fn real_time_does_not_run_the_missed_passes_after_a_stall() {
    let script = "function sysCall_sensing()
    sim.addLog(450, string.format('pass %.3f', require('socket').gettime()))
end";
    let (mut config, log) = config_for(40600, &scene_of(&child_script("D", "", script)));
    config.speed = Some(coppelia_bridge::standin::Speed::RealTime { rtf: 1.0 });
    config.remote = None;
    config.start = true;
    config.faults.stall = Some(coppelia_bridge::standin::Stall {
        at_s: 0.2,
        duration: Duration::from_secs(1),
    });
    let standin = spawn(config).unwrap();
    let mut walls = Vec::new();
    while walls.len() < 12 {
        let line = wait_log(&log, |l| l.message.starts_with("pass ")).expect("pass logged");
        walls.push(line.message[5..].parse::<f64>().unwrap());
    }
    standin.shutdown().unwrap();
    // Pass 4 (t = 0.2) follows the stall; count the passes within 40 ms of it.
    let after_stall = walls[4];
    assert!(after_stall - walls[3] >= 1.0, "{walls:?}");
    let burst = walls[4..]
        .iter()
        .filter(|w| **w - after_stall < 0.04)
        .count();
    assert!(
        burst <= 2,
        "{burst} passes within 40 ms after the stall: {walls:?}"
    );
}
