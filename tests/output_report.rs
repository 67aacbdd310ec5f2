//! `report.html` from a run directory written by the real writers: self-contained, one
//! `<svg` per plot on one x axis, gaps kept, bands beyond 10 dummies, the shared columns,
//! readable errors for a wrong directory.

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

fn report_of(dir: &Path) -> String {
    std::fs::read_to_string(write_report(dir).unwrap()).unwrap()
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
    assert!(!html.contains(" src="), "nothing loaded from elsewhere");
    assert_eq!(html.matches("<script>").count(), 1, "one inline script");
    assert_eq!(
        html.matches("<svg").count(),
        7,
        "RTF (100 ms and 1 s), sim time, latency, rate, CDF, loss"
    );
    for title in [
        "Real-time factor over 100 ms windows",
        "Real-time factor over 1 s windows",
        "Simulation time against wall time",
        "One-way latency per message",
        "Sending rate",
        "Latency CDF",
        "Lost messages",
    ] {
        assert!(html.contains(title), "missing plot {title}");
    }
    assert!(html.matches("<polyline").count() >= 10, "lines drawn");
    assert!(html.contains("class=\"dots\""), "latency drawn as points");
    assert!(!html.contains("NaN") && !html.contains("inf\""));
    // The window is chosen in the page, without a network: CSS radio buttons.
    assert!(html.contains("id=\"rtfw0\"") && html.contains("id=\"rtfw1\" checked"));
    // Every time plot shares one x range: 0 to the run's end (30 s), so the same ticks.
    for id in ["rtf0", "rtf1", "sim", "lat", "rate", "lost"] {
        let svg = html
            .split("<svg")
            .find(|svg| svg.contains(&format!("id=\"clip-{id}\"")))
            .unwrap();
        assert!(
            svg.contains(">30<") || svg.contains(">30.0<"),
            "{id} ends at 30 s"
        );
    }
}

#[test]
fn tables_use_the_shared_columns_and_mark_off_target_rows_in_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    let html = report_of(&dir);
    for header in [
        "latency p50 (µs)",
        "rate (Hz)",
        "jitter (µs)",
        "loss (%)",
        "worst at (s)",
        "inter-arrival mean (ms)",
        "inter-arrival std dev (ms)",
        "missed steps",
        "reordered",
    ] {
        assert!(html.contains(&format!(">{header}</th>")), "header {header}");
    }
    assert_eq!(
        html.matches("<table class=\"sortable\">").count(),
        4,
        "3 dummy tables + events"
    );
    // Dummy1 is off target: its row says so in text, not only by colour.
    assert!(html.contains("<tr class=\"off\"><td class=\"l mark\" data-v=\"off\">off</td>"));
    assert!(html.contains("legacy-2") && html.contains(">legacy_udp<"));
    assert!(html.contains("read backlog p50 / p99 / max (µs)"));
    assert!(
        html.contains("seq restarted at 0"),
        "earlier sessions listed"
    );
    assert!(
        html.contains("data-report-ready"),
        "the script marks the page ready"
    );
}

#[test]
fn a_stall_is_drawn_as_a_gap_and_a_dip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    // Dummy 0 goes silent for 2 s after its 200th message, then carries on.
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for mut row in sample_rows(&[0], 400) {
        if row.seq.unwrap() >= 200 {
            for t in [&mut row.recv_unix_s, &mut row.read_unix_s] {
                *t += 2.0;
            }
            row.sent_unix_s = row.sent_unix_s.map(|s| s + 2.0);
        }
        w.serialize(&row).unwrap();
    }
    w.flush().unwrap();
    let data = coppelia_bridge::output::report::load_run(&dir).unwrap();
    let d0 = &data.timeline.detailed[&0];
    assert_eq!(d0.sim_time.len(), 2, "the line breaks at the stall");
    assert_eq!(d0.gaps.len(), 1);
    let (from, to) = d0.gaps[0];
    assert!((to - from - 2.05).abs() < 0.01, "{from} .. {to}");
    let low = d0.rtf[1]
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min);
    assert!(low < 0.05, "the 1 s RTF dips to {low}");
    let html = report_of(&dir);
    assert!(html.contains("1 gap in the samples"), "gap listed");
}

#[test]
fn many_dummies_are_drawn_as_a_band_with_the_worst_few_in_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let ids: Vec<u32> = (0..12).collect();
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("target_rtf".to_owned(), serde_json::json!(1.0));
    let meta = RunMeta {
        command_line: vec!["coppelia-bridge".into()],
        version: "0.1.0".into(),
        started_unix_s: RUN_START_UNIX_S,
        settings,
    };
    let mut w = RunWriter::create(&dir, meta).unwrap();
    for row in sample_rows(&ids, 200) {
        w.sample(&row).unwrap();
    }
    let mut last = sample_run_snapshot();
    let template = last.dummies[0].clone();
    last.dummies = ids
        .iter()
        .map(|&id| {
            let mut d = template.clone();
            d.id = id;
            d.name = format!("D{id}");
            d.rtf.worst_1s = Some(1.0 - f64::from(id) / 100.0);
            d
        })
        .collect();
    w.snapshot(&last).unwrap();
    w.finish(&last, &[], RUN_START_UNIX_S + 10.0, None).unwrap();
    let data = coppelia_bridge::output::report::load_run(&dir).unwrap();
    let shown: Vec<u32> = data.timeline.detailed.keys().copied().collect();
    assert!(
        shown.contains(&11) && shown.contains(&10) && shown.contains(&9),
        "lowest worst RTF: {shown:?}"
    );
    assert!(shown.len() <= 5, "{shown:?}");
    let html = report_of(&dir);
    assert!(html.contains("all dummies: lowest–highest") && html.contains("<polygon"));
    assert!(html.contains("12 dummies: the grey band"));
}

#[test]
fn long_runs_are_decimated_per_pixel_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir);
    // 50,000 more messages for dummy 0.
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for row in sample_rows(&[0], 50_000) {
        w.serialize(&row).unwrap();
    }
    w.flush().unwrap();
    let html = report_of(&dir);
    let bound = 2 * coppelia_bridge::output::report::timeline::BUCKETS;
    for line in html.split("<polyline").skip(1) {
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(points.split(' ').count() <= bound);
    }
    for path in html.split("class=\"dots\" d=\"").skip(1) {
        let d = path.split('"').next().unwrap();
        assert!(d.matches("h0").count() <= bound);
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
    assert!(
        html.contains("1 CSV row left out: did not parse"),
        "note shown"
    );
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
