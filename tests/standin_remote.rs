//! The stand-in's remote API (protocol 2) driven by a Rust REQ client that behaves like the
//! official clients: stepping handshake, pass counts, stop passes, errors.

mod standin_support;

use std::time::Instant;

use ciborium::Value;
use coppelia_bridge::standin::spawn;
use standin_support::*;

/// Counts callbacks into named parameters the client can read.
const COUNTER: &str = r#"
local sim = require('sim')
local counts = {actuation = 0, sensing = 0, thread = 0, cleanup = 0}
local function bump(k)
    counts[k] = counts[k] + 1
    sim.setNamedStringParam(k, tostring(counts[k]))
end
function sysCall_init() sim.setStepping(true) end
function sysCall_thread()
    while true do
        bump('thread')
        sim.step()
    end
end
function sysCall_actuation() bump('actuation') end
function sysCall_sensing() bump('sensing') end
function sysCall_cleanup() bump('cleanup') end
"#;

fn count(client: &mut Client, key: &str) -> i64 {
    match &client.ret("sim.getNamedStringParam", vec![t(key)])[0] {
        Value::Text(s) => s.parse().unwrap(),
        Value::Null => 0,
        other => panic!("{other:?}"),
    }
}

fn wait_state(client: &mut Client, state: i64) {
    let deadline = Instant::now() + GUARD;
    while as_i64(&client.ret("sim.getSimulationState", vec![])[0]) != state {
        assert!(Instant::now() < deadline, "state {state} not reached");
    }
}

#[test]
fn n_remote_steps_run_exactly_n_passes() {
    let (config, _log) = config(scene(0.05, false, &[("Dummy0", "", COUNTER)]));
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());

    assert_eq!(
        c.ret("sim.setStepping", vec![Value::Bool(true)]),
        [Value::Integer(0.into())]
    );
    assert_eq!(c.ret("sim.startSimulation", vec![]), Vec::<Value>::new());
    for _ in 0..25 {
        assert_eq!(c.ret("sim.step", vec![]), Vec::<Value>::new());
    }
    assert!(c.waits >= 25, "each step is answered with _*wait*_ first");
    // Held at the add-on point of pass 25: 25 full passes ran, pass 25's actuation too.
    assert_eq!(count(&mut c, "sensing"), 25);
    assert_eq!(count(&mut c, "actuation"), 26);
    assert_eq!(count(&mut c, "thread"), 26);
    assert_eq!(
        as_f64(&c.ret("sim.getSimulationTime", vec![])[0]),
        25.0 * 0.05
    );
    assert_eq!(as_i64(&c.ret("sim.getSimulationState", vec![])[0]), 17);
    // Held: time does not move while the client waits.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(count(&mut c, "sensing"), 25);

    // A remote stop resets stepping: the held pass 25 completes, then two more passes run
    // ("about to stop", "last before stop" with cleanup).
    c.ret("sim.stopSimulation", vec![]);
    wait_state(&mut c, 0);
    assert_eq!(count(&mut c, "sensing"), 28);
    assert_eq!(count(&mut c, "cleanup"), 1);
    assert_eq!(
        as_f64(&c.ret("sim.getSimulationTime", vec![])[0]),
        28.0 * 0.05
    );
    assert_eq!(
        c.ret("sim.setStepping", vec![Value::Bool(true)]),
        [Value::Integer(0.into())]
    );
    drop(c);
    let summary = standin.shutdown().unwrap();
    assert_eq!(summary.passes, 28);
}

#[test]
fn scripts_reload_for_each_run() {
    let (config, _log) = config(scene(0.05, false, &[("Dummy0", "", COUNTER)]));
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    for run in 0..2 {
        c.ret("sim.setStepping", vec![Value::Bool(true)]);
        c.ret("sim.startSimulation", vec![]);
        for _ in 0..3 {
            c.ret("sim.step", vec![]);
        }
        // Fresh Lua state: counters restart at each run.
        assert_eq!(count(&mut c, "sensing"), 3, "run {run}");
        assert_eq!(
            as_f64(&c.ret("sim.getSimulationTime", vec![])[0]),
            0.15000000000000002
        );
        c.ret("sim.stopSimulation", vec![]);
        wait_state(&mut c, 0);
    }
    drop(c);
    assert_eq!(standin.shutdown().unwrap().runs, 2);
}

#[test]
fn errors_unknown_functions_and_old_clients() {
    let (config, _log) = config(scene(0.05, false, &[("Dummy0", "", "")]));
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    // 4.6 (the default claim) has no sim.createScript (standin::api::SIM_API).
    let reply = c.call("sim.createScript", vec![Value::Integer(1.into()), t("")]);
    assert_eq!(
        get(&reply, "err"),
        Some(&t("No such function: sim.createScript"))
    );
    let reply = c.call("sim.getObject", vec![t("/Nope")]);
    assert!(get(&reply, "err").is_some());
    assert_eq!(
        c.ret("sim.getObject", vec![t("/Dummy0")]),
        [Value::Integer(1.into())]
    );
    assert_eq!(
        c.ret("sim.getObjectAlias", vec![Value::Integer(1.into())]),
        [t("Dummy0")]
    );
    assert_eq!(
        c.ret("sim.getInt32Param", vec![Value::Integer(1.into())]),
        [Value::Integer(40600.into())]
    );
    assert_eq!(
        c.ret("sim.getFloatParam", vec![Value::Integer(1.into())]),
        [Value::Float(0.05)]
    );
    assert_eq!(
        c.ret("sim.getBoolParam", vec![Value::Integer(34.into())]),
        [Value::Bool(true)]
    );
    assert_eq!(
        c.ret("sim.getSimulationState", vec![]),
        [Value::Integer(0.into())]
    );
    let end = c.call("_*end*_", vec![]);
    assert_eq!(end, Value::Map(vec![]));

    let mut old = Client::connect(standin.endpoint().unwrap());
    let p1 = Value::Map(vec![
        (t("func"), t("sim.getSimulationTime")),
        (t("args"), Value::Array(vec![])),
    ]);
    let reply = old.raw(&p1);
    assert_eq!(get(&reply, "success"), Some(&Value::Bool(false)));
    let Some(Value::Text(e)) = get(&reply, "error") else {
        panic!("{reply:?}")
    };
    assert!(e.contains("version does not match"));
    drop((c, old));
    standin.shutdown().unwrap();
}

#[test]
fn load_scene_replaces_the_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.simscene.xml");
    std::fs::write(
        &path,
        scene_xml(0.02, false, &[("A1", "", COUNTER), ("B2", "", "")]),
    )
    .unwrap();
    let (config, _log) = config(scene(0.05, false, &[]));
    let standin = spawn(config).unwrap();
    let mut c = Client::connect(standin.endpoint().unwrap());
    c.ret("sim.loadScene", vec![t(path.to_str().unwrap())]);
    assert_eq!(
        c.ret("sim.getObject", vec![t("/B2")]),
        [Value::Integer(2.into())]
    );
    assert_eq!(
        c.ret("sim.getSimulationTimeStep", vec![]),
        [Value::Float(0.02)]
    );
    c.ret("sim.setStepping", vec![Value::Bool(true)]);
    c.ret("sim.startSimulation", vec![]);
    c.ret("sim.step", vec![]);
    assert_eq!(count(&mut c, "sensing"), 1);
    let reply = c.call("sim.loadScene", vec![t(path.to_str().unwrap())]);
    assert!(
        get(&reply, "err").is_some(),
        "loadScene while running is refused"
    );
    drop(c);
    standin.shutdown().unwrap();
}
