//! `report.html` from a run directory written by the real writers: self-contained, one
//! `<svg` per plot, readable errors for a wrong directory.

use std::path::Path;

use assert_cmd::Command;
use coppelia_bridge::output::fixtures::*;
use coppelia_bridge::output::{diff_events, write_report, RunMeta, RunWriter};

/// Writes a run directory the way the app does: samples, one snapshot per second with
/// the events derived from it, then the final summary.
fn write_run(dir: &Path) {
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("listen".to_owned(), serde_json::json!("127.0.0.1:8888"));
    settings.insert("target_rtf".to_owned(), serde_json::json!(1.0));
    let meta = RunMeta {
        command_line: vec![
            "coppelia-bridge".into(),
            "run".into(),
            "--duration".into(),
            "30s".into(),
        ],
        version: "0.1.0".into(),
        started_unix_s: RUN_START_UNIX_S,
        settings,
    };
    let mut w = RunWriter::create(dir, meta).unwrap();
    for row in sample_rows(&[0, 1, 2], 600) {
        w.sample(&row).unwrap();
    }
    let series = sample_snapshot_series(30);
    let mut prev = None;
    for s in &series {
        for e in diff_events(prev, s) {
            w.event(&e).unwrap();
        }
        w.snapshot(s).unwrap();
        prev = Some(s);
    }
    w.finish(
        series.last().unwrap(),
        &sample_sessions(),
        RUN_START_UNIX_S + 30.0,
        None,
    )
    .unwrap();
}

#[test]
fn report_is_self_contained_with_one_svg_per_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    let path = write_report(&dir).unwrap();
    assert_eq!(path, dir.join("report.html"));
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network references"
    );
    assert!(!html.contains("<script"), "no script");
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "RTF, rate, latency, CDF, loss"
    );
    for title in [
        "Real-time factor",
        "Sending rate",
        "One-way latency",
        "Latency CDF",
        "Lost messages",
    ] {
        assert!(html.contains(title), "missing plot {title}");
    }
    assert!(
        html.matches("<polyline").count() >= 4 + 3 + 2 + 2 + 2,
        "lines drawn"
    );
    assert!(!html.contains("NaN"));
    // Units in the summary table; legacy values unavailable, off-target row marked.
    assert!(html.contains("latency p50 (µs)") && html.contains("rate (Hz)"));
    assert!(html.contains("<tr class=\"off\">"));
    assert!(html.contains("legacy-2"));
    assert!(
        html.contains("seq restarted at 0"),
        "earlier sessions listed"
    );
}

#[test]
fn long_runs_are_downsampled_to_at_most_2000_points_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    // 50,000 more messages for dummy 0.
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for row in sample_rows(&[0], 50_000) {
        w.serialize(&row).unwrap();
    }
    w.flush().unwrap();
    let html = std::fs::read_to_string(write_report(&dir).unwrap()).unwrap();
    for line in html.split("<polyline").skip(1) {
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(points.split(' ').count() <= 2000);
    }
}

#[test]
fn a_truncated_last_row_is_skipped_and_mentioned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    let mut text = std::fs::read_to_string(dir.join("rtf.csv")).unwrap();
    text.push_str("31.0,1767323076.0,dummy,0,Dum");
    std::fs::write(dir.join("rtf.csv"), text).unwrap();
    let html = std::fs::read_to_string(write_report(&dir).unwrap()).unwrap();
    assert!(html.contains("1 CSV rows did not parse"), "note shown");
}

#[test]
fn a_directory_without_summary_is_refused_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let err = write_report(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not a run directory"), "{err}");
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
}

#[test]
fn cli_report_prints_the_path_and_fails_cleanly_on_a_wrong_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    Command::cargo_bin("coppelia-bridge")
        .unwrap()
        .args(["report", dir.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicates::str::contains("report.html"));
    Command::cargo_bin("coppelia-bridge")
        .unwrap()
        .args(["report", tmp.path().join("nope").to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicates::str::contains("not a run directory"));
}
