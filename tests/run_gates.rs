//! Gates for CI through the real binaries: `emit` sends, `run` judges, the exit status and
//! the verdict lines say how it went.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bin, bridge_no_remote};

/// Waits (bounded) for the bridge to exit: its exit code, stdout and stderr lines.
fn wait(mut bridge: common::Bridge) -> (Option<i32>, String, Vec<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = bridge.child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "bridge did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    use std::io::Read;
    bridge
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    // The reader thread ends with the child's stderr; what it read is in the channel.
    let err: Vec<String> = std::iter::from_fn(|| {
        bridge
            .stderr_lines
            .recv_timeout(Duration::from_secs(5))
            .ok()
    })
    .collect();
    (status.code(), out, err)
}

/// `emit` `dummies` at 20 Hz for 2 s (RTF 1, no loss) into `bridge`.
fn emit_into(bridge: &common::Bridge, dummies: &str) {
    let to = bridge.udp_addr();
    common::emit(&to, &["--dummies", dummies, "--duration", "2s"]);
}

/// Two dummies judged by a bridge with `gates` (and `--json-stream`).
fn judged(gates: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let mut args = vec!["--expect-dummies", "2", "--idle-timeout", "1s"];
    args.extend_from_slice(gates);
    let bridge = bridge_no_remote(&args);
    emit_into(&bridge, "2");
    wait(bridge)
}

#[test]
fn a_missed_gate_exits_3_and_names_every_failure() {
    // RTF is about 1: at least 2 cannot be met by either dummy (nor by the run, which has
    // no simulator here). The latency gate must be met whatever the machine's load (1 ms
    // failed once on the loaded CI machine): 10 s is the plausibility bound itself, so no
    // latency that counts can exceed it.
    let (code, stdout, stderr) = judged(&["--min-rtf", "2", "--max-latency-p99", "10s"]);
    assert_eq!(code, Some(3), "{stdout}");
    // With --json-stream the verdict goes to stderr; stdout stays JSON only.
    assert!(stdout.lines().all(|l| l.starts_with('{')), "{stdout}");
    let failures: Vec<&String> = stderr.iter().filter(|l| l.starts_with("gate ")).collect();
    assert_eq!(failures.len(), 2, "one per dummy: {stderr:#?}");
    assert!(failures
        .iter()
        .all(|l| l.starts_with("gate --min-rtf failed: Dummy")));
    assert!(
        stderr
            .iter()
            .any(|l| l == "verdict: FAIL (2 failures of 2 gates)"),
        "{stderr:#?}"
    );
}

#[test]
fn gates_that_are_met_exit_0() {
    let (code, stdout, stderr) = judged(&["--min-rtf", "0.5", "--max-loss", "1"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stderr.iter().any(|l| l == "verdict: pass (2 gates)"),
        "{stderr:#?}"
    );
}

#[test]
fn verdict_lines_on_stdout_without_json_stream() {
    let bridge = common::Bridge::spawn(&[
        "run",
        "--no-remote",
        "--no-out",
        "--no-tui",
        "--listen",
        "127.0.0.1:0",
        "--expect-dummies",
        "1",
        "--idle-timeout",
        "1s",
        "--min-rtf",
        "2",
    ]);
    emit_into(&bridge, "1");
    let (code, out, _) = wait(bridge);
    assert_eq!(code, Some(3));
    assert!(
        out.contains("gate --min-rtf failed: Dummy0 RTF total"),
        "{out}"
    );
    assert!(out.contains("verdict: FAIL (1 failure of 1 gate)"), "{out}");
}

#[test]
fn a_run_where_nobody_sent_fails_unless_allowed() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--no-remote",
            "--no-out",
            "--no-tui",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "500ms",
        ];
        args.extend_from_slice(extra);
        Command::new(bin()).args(&args).output().unwrap()
    };
    let empty = run(&[]);
    assert_eq!(empty.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&empty.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    for cause in [
        "--listen",
        "-Gcoppelia_bridge.port",
        "firewall",
        "legacy",
        "--allow-empty",
    ] {
        assert!(errors[0].contains(cause), "names {cause}: {stderr}");
    }
    assert_eq!(run(&["--allow-empty"]).status.code(), Some(0));
}
