//! `run` talking to CoppeliaSim's remote API: failure modes that need no simulator.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn run_without_coppeliasim_fails_fast_and_names_the_fixes() {
    let (_held, port) = common::refusing_tcp_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let t0 = Instant::now();
    let out = Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .args([
            "run",
            "--no-tui",
            "--no-out",
            "--listen",
            "127.0.0.1:0",
            "--remote",
            &endpoint,
            "--remote-timeout",
            "500ms",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "bounded by the deadline, not hanging"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach CoppeliaSim at {endpoint}")),
        "{err}"
    );
    assert!(err.contains("--no-remote"), "names the way out: {err}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .args([
            "run",
            "--no-remote",
            "--no-tui",
            "--no-out",
            "--listen",
            &addr,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot listen on UDP {addr}: the address is already in use"
        )),
        "{err}"
    );
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn sigterm_ends_the_run_with_a_complete_run_directory() {
    signal_ends_the_run_with_a_complete_run_directory(libc::SIGTERM);
}

/// Ctrl-C in a terminal, or `kill -INT`: the same orderly end as SIGTERM.
#[test]
fn sigint_ends_the_run_with_a_complete_run_directory() {
    signal_ends_the_run_with_a_complete_run_directory(libc::SIGINT);
}

fn signal_ends_the_run_with_a_complete_run_directory(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = spawn_run_with_out(&out);
    // The first flush of events.jsonl (after 1 s) happens inside the run loop, which has
    // installed the signal handlers by then: a signal sent earlier could find the default
    // action (termination) still in place.
    wait_until(
        || std::fs::metadata(out.join("events.jsonl")).is_ok_and(|m| m.len() > 0),
        "events.jsonl was never flushed",
    );
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0);
    wait_until(
        || child.try_wait().unwrap().is_some(),
        "no exit after the signal",
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary.get("final").is_some(),
        "summary.json is complete JSON with the final snapshot"
    );
    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    assert!(
        events.contains("interrupted (Ctrl-C / SIGTERM)"),
        "{events}"
    );
    assert!(out.join("report.html").exists());
}

#[test]
fn a_killed_run_leaves_a_readable_summary_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = spawn_run_with_out(&out);
    // The interim summary is written every 5 s; wait for it, then kill -9.
    wait_until(
        || out.join("summary.json").exists(),
        "no interim summary.json",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["ended_unix_s"].is_null(),
        "an interim summary says the run did not end"
    );
    let report = Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(out.join("report.html").exists());
}

/// `run --no-remote` writing to `out`, silent, idle timeout off.
fn spawn_run_with_out(out: &std::path::Path) -> std::process::Child {
    Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .args([
            "run",
            "--no-remote",
            "--no-tui",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "0",
            // Nothing sends in these tests: the run is empty on purpose.
            "--allow-empty",
            "--out",
        ])
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `cond` every 50 ms for at most 60 s.
fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
