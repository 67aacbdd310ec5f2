//! `run` talking to CoppeliaSim's remote API: failure modes that need no simulator.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn run_without_coppeliasim_fails_fast_and_names_the_fixes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
