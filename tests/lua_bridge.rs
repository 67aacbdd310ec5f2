//! The shipped Lua script under Debian's lua5.3 + LuaSocket (driven by lua/test/harness.lua)
//! against the real bridge binary: every pass becomes exactly one counted STAMP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_close, final_snapshot, lua_ready, Bridge};
use coppelia_bridge::metrics::{DummyState, Transport};

fn run_harness(port: &str, extra: &[&str]) {
    let status = Command::new("lua5.3")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["lua/test/harness.lua", "--port", port])
        .args(extra)
        .status()
        .expect("spawn lua5.3");
    assert!(status.success(), "harness failed: {status}");
}

fn bridge(extra: &[&str]) -> Bridge {
    let mut args = vec!["--idle-timeout", "1s", "--duration", "60s"];
    args.extend_from_slice(extra);
    common::bridge_no_remote(&args)
}

#[test]
fn lua_script_in_real_time_measured_by_the_bridge() {
    if !lua_ready() {
        return;
    }
    let b = bridge(&["--expect-dummies", "4"]);
    let addr = b.udp_addr();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    // 40 passes of dt = 50 ms paced at 50 ms of wall time: real time.
    run_harness(
        &port,
        &["--dummies", "4", "--passes", "40", "--pace", "0.05"],
    );
    let (status, stdout) = b.finish(Duration::from_secs(30));
    assert!(status.success());
    let snap = final_snapshot(&stdout);
    assert_eq!(snap.dummies.len(), 4);
    for d in &snap.dummies {
        assert_eq!(d.transport, Transport::Udp);
        assert_eq!(d.messages, 40, "{}: one STAMP per pass", d.name);
        assert_eq!(d.loss.as_ref().unwrap().lost, 0);
        assert_eq!(d.loss.as_ref().unwrap().missed_steps, 0);
        assert_eq!(d.state, DummyState::Ended, "BYE from sysCall_cleanup");
        assert_eq!(d.dt_s, Some(0.05));
        assert_close("last sim time", d.last_sim_time_s, 39.0 * 0.05, 1e-9);
        // The harness sleeps 50 ms after each pass on top of the pass itself: RTF ≤ 1.
        let rtf = d.rtf.total.unwrap();
        assert!(rtf > 0.5 && rtf <= 1.01, "RTF {rtf}");
    }
}

#[test]
fn legacy_lua_script_measured_by_the_bridge() {
    if !lua_ready() {
        return;
    }
    let b = bridge(&["--expect-dummies", "2"]);
    let port = b.udp_addr().rsplit(':').next().unwrap().to_owned();
    run_harness(
        &port,
        &[
            "--dummies",
            "2",
            "--passes",
            "25",
            "--pace",
            "0.01",
            "--legacy",
        ],
    );
    let (status, stdout) = b.finish(Duration::from_secs(30));
    assert!(status.success());
    let snap = final_snapshot(&stdout);
    assert_eq!(snap.dummies.len(), 2);
    for d in &snap.dummies {
        assert_eq!(d.transport, Transport::LegacyUdp);
        assert_eq!(d.messages, 25);
        assert!(d.latency.is_none() && d.loss.is_none());
    }
}
