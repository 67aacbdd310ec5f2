//! The official Python client (PyPI `coppeliasim-zmqremoteapi-client`) drives the stand-in
//! unchanged. Needs `.venv` from `scripts/setup-python.sh`; without it the test is skipped
//! with a printed reason, except under CI=true, where it creates the venv and must run.

mod standin_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use coppelia_bridge::standin::spawn;
use standin_support::*;

fn venv_python(root: &Path) -> Option<PathBuf> {
    let python = root.join(".venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import coppeliasim_zmqremoteapi_client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

fn python_or_skip(root: &Path) -> Option<PathBuf> {
    if let Some(p) = venv_python(root) {
        return Some(p);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if !ci {
        eprintln!("skipped: .venv with coppeliasim-zmqremoteapi-client missing; run scripts/setup-python.sh");
        return None;
    }
    let status = Command::new("bash")
        .arg(root.join("scripts/setup-python.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/setup-python.sh failed under CI");
    Some(venv_python(root).expect("setup-python.sh made an importable client"))
}

/// Runs a Python script to its end (killed and failed after `guard`).
fn run_python(
    python: &Path,
    script: &Path,
    args: &[String],
    guard: std::time::Duration,
) -> std::process::Output {
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + guard;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{} did not finish within {guard:?}", script.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn official_python_client_steps_the_stand_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = python_or_skip(root) else {
        return;
    };
    let (config, _log) = config(scene(
        0.05,
        false,
        &[("Dummy0", "", "function sysCall_sensing() end")],
    ));
    let standin = spawn(config).unwrap();
    let port = standin.port().unwrap();

    let out = run_python(
        &python,
        &root.join("tests/python/interop.py"),
        &[port.to_string(), "0.05".into()],
        GUARD * 4,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "interop.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("interop ok"), "{stdout}");
    let summary = standin.shutdown().unwrap();
    assert_eq!(summary.runs, 2);
}

/// The official client's view of zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API
/// server.lua: `setStepping(True)` twice then `setStepping(False)` returns 0, 1, 2; a function
/// CoppeliaSim lacks (`sim.setExtensionString`) raises its `No such function` error.
#[test]
fn official_client_sees_stepping_levels_and_missing_functions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(python) = python_or_skip(root) else {
        return;
    };
    let (config, _log) = config(scene(0.05, false, &[]));
    let standin = spawn(config).unwrap();
    let port = standin.port().unwrap();
    let out = run_python(
        &python,
        &root.join("tests/python/conformance.py"),
        &[port.to_string()],
        GUARD,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("conformance ok"), "{stdout}");
    standin.shutdown().unwrap();
}
