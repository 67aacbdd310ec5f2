//! What the binary prints when its output is redirected: no colour codes unless asked, one
//! line per fatal error, the help text's units and names.

mod common;

use std::process::Command;

fn run(extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        "--no-remote",
        "--no-out",
        "--no-tui",
        "--listen",
        "127.0.0.1:0",
        "--duration",
        "300ms",
        "--allow-empty",
    ];
    args.extend_from_slice(extra);
    Command::new(common::bin())
        .args(&args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

#[test]
fn redirected_stderr_has_no_colour_codes_unless_asked() {
    let plain = run(&[]);
    assert!(plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("listening for UDP datagrams"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no ANSI codes: {stderr:?}");
    let forced = run(&["--color", "always"]);
    assert!(String::from_utf8_lossy(&forced.stderr).contains('\x1b'));
}

#[test]
fn a_fatal_error_is_printed_once() {
    let out = Command::new(common::bin())
        .args([
            "run",
            "--no-tui",
            "--no-out",
            "--listen",
            "127.0.0.1:0",
            "--remote",
            "tcp://127.0.0.1:9",
            "--remote-timeout",
            "300ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mentions = stderr.matches("cannot reach CoppeliaSim").count();
    assert_eq!(mentions, 1, "{stderr}");
}

#[test]
fn flags_take_units_and_host_names_and_say_what_they_want() {
    let out = run(&["--recv-buffer", "lots"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("e.g. 256MiB"), "{stderr}");
    let out = Command::new(common::bin())
        .args([
            "run",
            "--no-remote",
            "--no-out",
            "--no-tui",
            "--listen",
            "localhost:0",
            "--duration",
            "0.3",
            "--recv-buffer",
            "8MiB",
            "--allow-empty",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = Command::new(common::bin())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--target-rtf") && !help.contains("--rtf-target"));
    assert!(help.contains("--min-rtf") && help.contains("--max-latency-p99"));
}
