//! `coppelia-bridge compare`: two run directories written by the real writers, the
//! side-by-side table with differences, `compare.html` with the runs overlaid, and clear
//! errors for a missing or foreign directory.

mod common;

use std::path::Path;

use assert_cmd::Command;
use coppelia_bridge::metrics::RunSnapshot;
use coppelia_bridge::output::fixtures::*;
use coppelia_bridge::output::{RunMeta, RunWriter};

/// A run directory from the fixtures, its final snapshot changed by `edit`.
fn write_run(dir: &Path, edit: impl FnOnce(&mut RunSnapshot)) {
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("target_rtf".to_owned(), serde_json::json!(1.0));
    let meta = RunMeta {
        command_line: vec!["coppelia-bridge".into(), "run".into()],
        version: "0.1.0".into(),
        started_unix_s: RUN_START_UNIX_S,
        settings,
    };
    let mut w = RunWriter::create(dir, meta).unwrap();
    for row in sample_rows(&[0, 1], 300) {
        w.sample(&row).unwrap();
    }
    let mut last = sample_run_snapshot();
    edit(&mut last);
    w.snapshot(&last).unwrap();
    w.finish(&last, &[], RUN_START_UNIX_S + 15.0, None).unwrap();
}

fn bin() -> Command {
    Command::cargo_bin("coppelia-bridge").unwrap()
}

#[test]
fn two_runs_side_by_side_with_differences_and_overlaid_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("before"), tmp.path().join("after"));
    write_run(&a, |_| {});
    write_run(&b, |s| {
        s.dummies[0].rtf.total = Some(0.896);
        s.sim.as_mut().unwrap().rtf.total = Some(0.5);
    });
    let page = tmp.path().join("cmp.html");
    let out = bin()
        .arg("compare")
        .args([a.to_str().unwrap(), b.to_str().unwrap(), "-o"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("before") && lines[0].contains("Δ after"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("run ") && lines[1].contains("RTF total"),
        "{table}"
    );
    assert!(
        lines[1].ends_with("-0.460 (-47.9 %)"),
        "simulation 0.96 → 0.5: {table}"
    );
    let d0 = lines.iter().find(|l| l.starts_with("Dummy0 #0")).unwrap();
    assert!(d0.ends_with("-0.100 (-10.0 %)"), "{d0}");
    assert!(
        table.contains("latency p99 (µs)") && table.contains("loss (%)"),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cmp.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert_eq!(
        html.matches("<svg").count(),
        6,
        "RTF ×2, sim, latency, rate, CDF"
    );
    assert!(html.contains("after: median") && html.contains("before: median"));
    assert!(html.contains("-0.100 (-10.0 %)"));
    assert!(!html.contains("NaN"));
}

#[test]
fn missing_or_foreign_directories_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("run");
    write_run(&good, |_| {});
    let missing = tmp.path().join("nope");
    let out = bin()
        .current_dir(tmp.path())
        .arg("compare")
        .args([&good, &missing])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot compare") && err.contains("nope") && err.contains("no such directory"),
        "{err}"
    );
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "hello").unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .arg("compare")
        .args([&good, &foreign])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a run directory (no summary.json)"),
        "{err}"
    );
    assert!(!tmp.path().join("compare.html").exists(), "nothing written");
    // One directory is a usage error.
    let out = bin().arg("compare").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `compare A B | head -1`: the reader goes away before the table is written. The plots are
/// written all the same and the command ends cleanly (it panicked, after the table and
/// before the plots, when the pipe was closed).
#[test]
fn a_reader_that_stops_early_costs_neither_the_plots_nor_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("before"), tmp.path().join("after"));
    write_run(&a, |_| {});
    write_run(&b, |_| {});
    let page = tmp.path().join("cmp.html");
    let mut cmd = std::process::Command::new(common::bin());
    cmd.arg("compare").args([&a, &b]).arg("-o").arg(&page);
    let out = common::output_with_stdout_closed(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(std::fs::read_to_string(&page).unwrap().contains("<svg"));
}
