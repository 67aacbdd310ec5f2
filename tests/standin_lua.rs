//! The `sim` API, threads and the script-error path as child scripts see them.

mod standin_support;

use std::time::Instant;

use ciborium::Value;
use coppelia_bridge::standin::spawn;
use standin_support::*;

fn param(c: &mut Client, key: &str) -> Option<String> {
    match &c.ret("sim.getNamedStringParam", vec![t(key)])[0] {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}

/// Waits (bounded) until the named parameter is set.
fn wait_param(c: &mut Client, key: &str) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(v) = param(c, key) {
            return v;
        }
        assert!(Instant::now() < deadline, "{key} never set");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

const IDENTITY: &str = r#"
local s = require('sim')
function sysCall_init()
    local h = s.getObject('.')
    local report = {
        s == sim and 'same-table' or 'other-table',
        s.getObjectAlias(h),
        s.getExtensionString(h, -1, 'port') or 'nil',
        tostring(s.getExtensionString(h, -1, 'missing')),
        s.getNamedStringParam('bridge.host') or 'nil',
        tostring(s.getNamedStringParam('absent')),
        math.type(s.getObject('/Child')),
        tostring(s.getObject('/Nope', {noError = true})),
        s.getInt32Param(s.intparam_program_version),
        s.getSimulationState(),
        s.getSimulationTime(),
        s.getSimulationTimeStep(),
        s.verbosity_scripterrors,
        s.handle_self,
        math.type(s.getSystemTime()),
    }
    for i, v in ipairs(report) do report[i] = tostring(v) end
    s.setNamedStringParam('report', table.concat(report, ' '))
    local ok, err = pcall(s.step)
    s.setNamedStringParam('step-outside-thread', tostring(ok) .. ' ' .. tostring(err))
end
"#;

#[test]
fn sim_api_answers_as_coppeliasim() {
    let xml = scene_xml(
        0.05,
        false,
        &[
            ("Dummy7", "port{8899} host{127.0.0.1}", IDENTITY),
            ("Child", "", ""),
        ],
    );
    let (mut config, _log) = config(coppelia_bridge::scene::parse::parse_scene(&xml).unwrap());
    config
        .named_params
        .insert("bridge.host".into(), "10.1.2.3".into());
    config.start = true;
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    let report = wait_param(&mut c, "report");
    assert_eq!(
        report,
        "same-table Dummy7 8899 nil 10.1.2.3 nil integer -1 40600 16 0.0 0.05 420 -4 float"
    );
    // Outside a coroutine sim.step returns silently
    // (lua@coppeliasim-v4.7.0-rev2:sim.lua, sim.yield).
    let step = wait_param(&mut c, "step-outside-thread");
    assert_eq!(step, "true nil");
    drop(c);
    standin.shutdown().unwrap();
}

#[test]
fn a_busy_thread_is_pre_empted_unless_stepping() {
    // Never calls sim.step: CoppeliaSim pre-empts it after ~2 ms in non-stepping mode.
    let busy = r#"
local n = 0
function sysCall_thread() while true do n = n + 1 end end
function sysCall_sensing() sim.setNamedStringParam('passes', tostring(sim.getSimulationTime())) end
"#;
    let (mut config, _log) = config(scene(0.05, false, &[("Busy", "", busy)]));
    config.start = true;
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    let deadline = Instant::now() + GUARD;
    while param(&mut c, "passes")
        .and_then(|p| p.parse::<f64>().ok())
        .unwrap_or(0.0)
        < 0.5
    {
        assert!(
            Instant::now() < deadline,
            "the busy thread blocked the simulation"
        );
    }
    drop(c);
    standin.shutdown().unwrap();
}

#[test]
fn old_style_coroutines_and_thread_yields() {
    // 4.3-4.5 pattern: a coroutine made in sysCall_init, resumed in sysCall_actuation.
    let old = r#"
local co
function sysCall_init()
    co = coroutine.create(function()
        local k = 0
        while true do k = k + 1 sim.setNamedStringParam('old', tostring(k)) sim.switchThread() end
    end)
end
function sysCall_actuation() coroutine.resume(co) end
"#;
    let new = r#"
function sysCall_thread()
    sim.setStepping(true)
    local k = 0
    while true do k = k + 1 sim.setNamedStringParam('new', tostring(k)) sim.step() end
end
"#;
    let (config, _log) = config(scene(0.05, false, &[("Old1", "", old), ("New2", "", new)]));
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    c.ret("sim.setStepping", vec![Value::Bool(true)]);
    c.ret("sim.startSimulation", vec![]);
    for _ in 0..4 {
        c.ret("sim.step", vec![]);
    }
    // Held in pass 4: both coroutines ran once in each of passes 0..=4.
    assert_eq!(param(&mut c, "old").as_deref(), Some("5"));
    assert_eq!(param(&mut c, "new").as_deref(), Some("5"));
    drop(c);
    standin.shutdown().unwrap();
}

#[test]
fn a_script_that_does_not_compile_is_logged_and_dead() {
    let (mut config, log) = config(scene(
        0.05,
        false,
        &[("Bad0", "", "function ("), ("Good1", "", "x = 1")],
    ));
    config.start = true;
    let standin = spawn(config).unwrap();
    let line = wait_log(&log, |l| l.origin == "/Bad0@childScript").expect("compile error logged");
    assert_eq!(line.verbosity, 420);
    assert!(
        line.message.contains("/Bad0@childScript"),
        "{}",
        line.message
    );
    // pauseAtError is off in this scene: the simulation keeps running.
    let mut c = Client::connect(standin.endpoint().unwrap());
    let t0 = as_f64(&c.ret("sim.getSimulationTime", vec![])[0]);
    let deadline = Instant::now() + GUARD;
    while as_f64(&c.ret("sim.getSimulationTime", vec![])[0]) <= t0 {
        assert!(Instant::now() < deadline, "simulation stopped advancing");
    }
    drop(c);
    assert_eq!(standin.shutdown().unwrap().script_errors, 1);
}
