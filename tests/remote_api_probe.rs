//! `coppelia-bridge probe` against the in-process fake server, and against nobody.

mod common;

use std::time::Duration;

use assert_cmd::Command;
use ciborium::Value;
use coppelia_bridge::remote_api::fake::{empty_map, FakeAction, FakeServer, Seen};
use coppelia_bridge::remote_api::message::{encode_err, encode_ret};
use predicates::prelude::*;

/// Failure guard for the child process only.
const GUARD: Duration = Duration::from_secs(30);

fn sim_like(seen: &Seen) -> FakeAction {
    let ret = |v: Value| FakeAction::Reply(encode_ret(vec![v]));
    let Some(req) = seen else {
        return FakeAction::Reply(encode_err("bad request"));
    };
    match req.func.as_str() {
        "sim.getSimulationTime" => ret(Value::Float(12.5)),
        "sim.getSimulationTimeStep" => ret(Value::Float(0.05)),
        "sim.getSimulationState" => ret(Value::Integer(8.into())),
        "sim.getBoolParam" => ret(Value::Bool(true)),
        "sim.getInt32Param" if req.args == [Value::Integer(1.into())] => {
            ret(Value::Integer(40600.into()))
        }
        "sim.getInt32Param" => ret(Value::Integer(18.into())),
        "_*end*_" => FakeAction::Reply(empty_map()),
        other => FakeAction::Reply(encode_err(&format!("No such function: {other}"))),
    }
}

fn bridge() -> Command {
    let mut cmd = Command::cargo_bin("coppelia-bridge").unwrap();
    cmd.env_remove("COPPELIA_BRIDGE_REMOTE").timeout(GUARD);
    cmd
}

#[test]
fn json_report_against_the_fake_server() {
    let server = FakeServer::start(sim_like).unwrap();
    let out = bridge()
        .args([
            "probe",
            "--remote",
            server.endpoint(),
            "--calls",
            "50",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["endpoint"], server.endpoint());
    assert_eq!(v["reachable"], true);
    assert_eq!(v["version"], "4.6.0");
    assert_eq!(v["version_raw"], 40600);
    assert_eq!(v["revision"], 18);
    assert_eq!(v["simulation_state"], "paused");
    assert_eq!(v["simulation_state_raw"], 8);
    assert_eq!(v["dt_s"], 0.05);
    assert_eq!(v["real_time"], true);
    let rtt = &v["call_rtt_us"];
    assert_eq!(rtt["count"], 50);
    let p = |k: &str| rtt[k].as_f64().unwrap();
    assert!(p("min_us") >= 1.0);
    assert!(p("min_us") <= p("p50_us") && p("p50_us") <= p("p90_us"));
    assert!(p("p90_us") <= p("p99_us") && p("p99_us") <= p("max_us"));
    // 4 queries + 50 measured calls + the goodbye.
    let funcs = server.funcs();
    let measured = funcs
        .iter()
        .filter(|f| *f == "sim.getSimulationTime")
        .count();
    assert_eq!(measured, 50);
    assert_eq!(funcs.last().map(String::as_str), Some("_*end*_"));
}

#[test]
fn text_report_against_the_fake_server_using_the_env_variable() {
    let server = FakeServer::start(sim_like).unwrap();
    bridge()
        .env("COPPELIA_BRIDGE_REMOTE", server.endpoint())
        .args(["probe", "--calls", "5"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "CoppeliaSim remote API at {}: reachable",
            server.endpoint()
        )))
        .stdout(predicate::str::contains("4.6.0 (revision 18)"))
        .stdout(predicate::str::contains("paused (8)"))
        .stdout(predicate::str::contains("sim.getSimulationTime x 5"));
}

#[test]
fn nobody_listening_fails_cleanly_within_the_deadline() {
    let (_held, port) = common::refusing_tcp_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    bridge()
        .args(["probe", "--remote", &endpoint, "--remote-timeout", "300ms"])
        .assert()
        .failure()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "cannot reach CoppeliaSim at {endpoint} within 300 ms"
        )))
        .stderr(predicate::str::contains("zmqRemoteApi.rpcPort"))
        .stderr(predicate::str::contains("--no-remote"));
}

#[test]
fn json_failure_is_parseable_and_still_non_zero() {
    let (_held, port) = common::refusing_tcp_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let out = bridge()
        .args([
            "probe",
            "--json",
            "--remote",
            &endpoint,
            "--remote-timeout",
            "200ms",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["endpoint"], endpoint.as_str());
    assert_eq!(v["reachable"], false);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach CoppeliaSim"));
}

#[test]
fn a_server_error_is_shown_verbatim() {
    let server = FakeServer::start(|_| FakeAction::Reply(encode_err("boom\nsecond line"))).unwrap();
    bridge()
        .args(["probe", "--remote", server.endpoint(), "--calls", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "sim.getInt32Param: boom\nsecond line",
        ));
}

#[test]
fn a_malformed_endpoint_is_explained() {
    bridge()
        .args(["probe", "--remote", "localhost:23000"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid remote API endpoint"))
        .stderr(predicate::str::contains("tcp://127.0.0.1:23000"));
}
