//! The committed scene matches the generator, and `coppelia-bridge scene` writes it.

use std::path::Path;

use assert_cmd::Command;
use coppelia_bridge::scene::{generate_scene, SceneOptions, Transport};
use predicates::str::contains;

const COMMITTED: &str = "scenes/coppelia_bridge_4dummies.simscene.xml";
const REGENERATE: &str =
    "cargo run -- scene --dummies 4 --out scenes/coppelia_bridge_4dummies.simscene.xml";

fn bridge() -> Command {
    Command::cargo_bin("coppelia-bridge").unwrap()
}

#[test]
fn committed_scene_is_the_generators_output() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate it with `{REGENERATE}`",
            path.display()
        )
    });
    let expected = generate_scene(&SceneOptions::default());
    assert!(
        committed == expected,
        "{COMMITTED} is out of date with the generator or lua/coppelia_bridge.lua: regenerate it with `{REGENERATE}`"
    );
}

#[test]
fn scene_command_writes_the_generated_scene() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two.simscene.xml");
    bridge()
        .args([
            "scene",
            "--dummies",
            "2",
            "--host",
            "10.1.2.3",
            "--port",
            "9000",
        ])
        .args([
            "--transport",
            "tcp",
            "--echo",
            "--dt",
            "0.01",
            "--real-time",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("2 dummies"));
    let written = std::fs::read_to_string(&out).unwrap();
    let expected = generate_scene(&SceneOptions {
        dummies: 2,
        host: "10.1.2.3".into(),
        port: 9000,
        transport: Transport::Tcp,
        echo: true,
        legacy: false,
        dt_s: 0.01,
        real_time: true,
        script: coppelia_bridge::lua::SCRIPT.into(),
    });
    assert_eq!(written, expected);
    assert!(written.contains("id{1} host{10.1.2.3} port{9000} transport{tcp} echo{1}"));
    // Atomic write: no temporary file left beside the scene.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["two.simscene.xml"]);
}

#[test]
fn scene_command_replaces_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.simscene.xml");
    std::fs::write(&out, "old").unwrap();
    bridge()
        .args(["scene", "--legacy", "--out"])
        .arg(&out)
        .assert()
        .success();
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("id{3} host{127.0.0.1} port{8888} legacy{1}"));
}

#[test]
fn bad_flags_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.xml");
    bridge()
        .args(["scene", "--dt=-1", "--out"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(contains("\"-1\" is not a time step"));
    bridge()
        .args(["scene", "--host", "a{b}", "--out"])
        .arg(&out)
        .assert()
        .failure()
        .stderr(contains("--host"));
    bridge()
        .args(["scene", "--out"])
        .arg(dir.path().join("missing/dir/x.xml"))
        .assert()
        .failure()
        .stderr(contains("does the directory exist"));
    bridge()
        .arg("scene")
        .assert()
        .failure()
        .stderr(contains("--out"));
    assert!(!out.exists());
}

#[test]
fn build_remote_prints_its_plan() {
    bridge()
        .args([
            "scene",
            "--build-remote",
            "--save",
            "/tmp/s.ttt",
            "--print-plan",
            "--dummies",
            "1",
        ])
        .assert()
        .success()
        .stdout(contains("sim.createDummy(0.05)"))
        .stdout(contains("sim.createScript(1, <text,"))
        .stdout(contains("sim.saveScene(\"/tmp/s.ttt\")"));
    bridge()
        .args(["scene", "--build-remote", "--save", "s.ttt", "--print-plan"])
        .args(["--add-script-text-param", "2"])
        .assert()
        .success()
        .stdout(contains("sim.associateScriptWithObject(<handle from call"));
}
