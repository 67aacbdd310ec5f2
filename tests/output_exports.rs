//! Golden files for every export (insta) and the JSON Schema check of real output.

use std::collections::BTreeMap;

use coppelia_bridge::output::events::EventLog;
use coppelia_bridge::output::fixtures::*;
use coppelia_bridge::output::rtf_csv::RtfCsv;
use coppelia_bridge::output::samples_csv::SampleCsv;
use coppelia_bridge::output::{
    render_prometheus, snapshot_json_line, RecordSink, RunMeta, RunWriter, Summary,
};

fn meta() -> RunMeta {
    let mut settings = BTreeMap::new();
    settings.insert("listen".to_owned(), serde_json::json!("127.0.0.1:8888"));
    settings.insert("duration_s".to_owned(), serde_json::json!(30.0));
    RunMeta {
        command_line: vec![
            "coppelia-bridge".into(),
            "run".into(),
            "--duration".into(),
            "30s".into(),
        ],
        version: "0.1.0".into(),
        started_unix_s: RUN_START_UNIX_S,
        settings,
    }
}

fn schema() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/summary.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The schema of one `$defs` entry, keeping the definitions it refers to.
fn sub_schema(name: &str) -> serde_json::Value {
    let full = schema();
    serde_json::json!({
        "$schema": full["$schema"],
        "$ref": format!("#/$defs/{name}"),
        "$defs": full["$defs"],
    })
}

fn assert_valid(schema: &serde_json::Value, instance: &serde_json::Value) {
    let validator = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}

/// The fixture run against two gates it fails on one dummy.
fn fixture_verdict() -> coppelia_bridge::run::Verdict {
    let gates = coppelia_bridge::run::Gates {
        min_rtf: Some(0.9),
        max_loss_pct: Some(5.0),
        max_latency_p99: None,
    };
    coppelia_bridge::run::verdict(&sample_run_snapshot(), &gates)
}

#[test]
fn summary_written_by_the_run_writer_matches_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let w = RunWriter::create(tmp.path(), meta()).unwrap();
    let dir = w
        .finish(
            &sample_run_snapshot(),
            &sample_sessions(),
            RUN_START_UNIX_S + 30.0,
            Some(&fixture_verdict()),
        )
        .unwrap();
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_valid(&schema(), &value);
}

#[test]
fn periodic_summary_of_a_run_still_going_matches_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let w = RunWriter::create(tmp.path(), meta()).unwrap();
    let mut snap = sample_run_snapshot();
    snap.sim = None;
    snap.kernel_drops = None;
    let path = w.write_summary(&snap, &[], None, None).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(value["ended_utc"].is_null());
    assert_valid(&schema(), &value);
}

#[test]
fn the_schema_rejects_drift() {
    let summary = Summary::new(&meta(), &sample_run_snapshot(), &[], None, None);
    let mut value = serde_json::to_value(&summary).unwrap();
    value["final"]["dummies"][0]["rtf"]["last_1s"] = serde_json::json!("fast");
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(!validator.is_valid(&value), "a string RTF must be rejected");
    value["final"]["dummies"][0]["rtf"]["last_1s"] = serde_json::json!(1.0);
    value["final"]["surprise"] = serde_json::json!(1);
    assert!(
        !validator.is_valid(&value),
        "unknown members must be documented first"
    );
}

#[test]
fn json_stream_lines_match_the_run_snapshot_schema() {
    let schema = sub_schema("RunSnapshot");
    for s in sample_snapshot_series(3) {
        let value: serde_json::Value = serde_json::from_str(&snapshot_json_line(&s)).unwrap();
        assert_valid(&schema, &value);
    }
}

#[test]
fn golden_summary_json() {
    let summary = Summary::new(
        &meta(),
        &sample_run_snapshot(),
        &sample_sessions(),
        Some(RUN_START_UNIX_S + 30.0),
        Some(&fixture_verdict()),
    );
    let text = String::from_utf8(summary.to_json().unwrap()).unwrap();
    insta::assert_snapshot!("summary_json", text);
}

#[test]
fn golden_samples_csv() {
    let mut sink = SampleCsv::new(Vec::new());
    for row in sample_rows(&[0, 2], 3) {
        sink.write_record(&row).unwrap();
    }
    insta::assert_snapshot!(
        "samples_csv",
        String::from_utf8(sink.into_inner().unwrap()).unwrap()
    );
}

#[test]
fn golden_rtf_csv() {
    let mut sink = RtfCsv::new(Vec::new());
    for s in sample_snapshot_series(2) {
        sink.write_record(&s).unwrap();
    }
    insta::assert_snapshot!(
        "rtf_csv",
        String::from_utf8(sink.into_inner().unwrap()).unwrap()
    );
}

#[test]
fn golden_events_jsonl() {
    let mut log = EventLog::new(Vec::new());
    for e in sample_events() {
        log.write_record(&e).unwrap();
    }
    insta::assert_snapshot!("events_jsonl", String::from_utf8(log.into_inner()).unwrap());
}

#[test]
fn golden_json_stream_line() {
    insta::assert_snapshot!(
        "json_stream_line",
        snapshot_json_line(&sample_run_snapshot())
    );
}

#[test]
fn golden_prometheus_exposition() {
    insta::assert_snapshot!(
        "prometheus",
        render_prometheus(
            &sample_run_snapshot(),
            &coppelia_bridge::output::prometheus::ExportLabels::new(
                "lab-1",
                "coppelia_bridge_4dummies"
            )
        )
    );
}

/// `--export-markdown`, `--export-csv` and the printed table: one column definition, so the
/// same cells (the CSV at full precision).
#[test]
fn golden_final_table_exports() {
    use coppelia_bridge::commands::run::ExportFormat;
    let s = sample_run_snapshot();
    let dummies: Vec<&coppelia_bridge::metrics::DummySnapshot> = s.dummies.iter().collect();
    insta::assert_snapshot!("final_table_md", ExportFormat::Markdown.render(&dummies));
    insta::assert_snapshot!("final_table_csv", ExportFormat::Csv.render(&dummies));
    insta::assert_snapshot!(
        "final_table_text",
        coppelia_bridge::commands::run::summary_table(&s)
    );
}

/// `compare`'s table: the fixture against a slower, lossier copy without its legacy dummy.
#[test]
fn golden_compare_table() {
    use coppelia_bridge::output::compare::{compare, text_table};
    let base = sample_run_snapshot();
    let mut slower = base.clone();
    slower.sim.as_mut().unwrap().rtf.total = Some(0.5);
    slower.dummies[0].rtf.total = Some(0.896);
    let loss = slower.dummies[1].loss.as_mut().unwrap();
    loss.lost = 10;
    loss.loss_pct = 100.0 * 10.0 / loss.expected as f64;
    slower.dummies.remove(2);
    insta::assert_snapshot!(
        "compare_table",
        text_table(&compare(&[
            ("base".to_owned(), &base),
            ("slower".to_owned(), &slower)
        ]))
    );
}
