//! `coppelia-bridge emit` as a user runs it: failed sends fail the command.

mod common;

use std::process::Command;

fn emit(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .arg("emit")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn tcp_to_a_closed_port_fails_with_one_clear_line() {
    let (_held, port) = common::refusing_tcp_port();
    let to = format!("127.0.0.1:{port}");
    let out = emit(&["--to", &to, "--tcp", "--dummies", "2", "--duration", "1s"]);
    assert!(
        !out.status.success(),
        "emit must fail when every send fails"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    assert!(errors[0].contains("every send failed (TCP to"), "{stderr}");
    assert!(errors[0].contains("--tcp-listen"), "{stderr}");
}

#[test]
fn udp_with_nothing_listening_fails_too() {
    let (_held, port) = common::refusing_udp_port();
    let to = format!("localhost:{port}");
    let out = emit(&["--to", &to, "--dummies", "2", "--duration", "1s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sends failed (UDP to 127.0.0.1:"),
        "{stderr}"
    );
}
