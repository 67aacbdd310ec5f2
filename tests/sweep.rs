//! `sweep` end to end: tiny sweeps against the in-process stand-in, against the stand-in
//! through `--remote` (scenes generated and loaded through the remote API, as with a real
//! CoppeliaSim), and against an endpoint where nothing answers (failed rows, no abort).

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use coppelia_bridge::commands::sweep::{sweep, SweepArgs};
use coppelia_bridge::output::sweep::{SweepDoc, CSV_HEADER};
use coppelia_bridge::sweep::{expand, RowStatus, SweepSpec};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sweep: SweepArgs,
}

fn args(argv: &[&str]) -> SweepArgs {
    Cli::try_parse_from(std::iter::once("sweep").chain(argv.iter().copied()))
        .unwrap()
        .sweep
}

fn run_sweep(a: &SweepArgs, dir: &Path) -> SweepDoc {
    let combos = expand(&SweepSpec {
        dummies: a.dummies.clone(),
        dt_s: a.dt.clone(),
        transports: a.transport.clone(),
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(180),
            sweep(a, &combos, dir, coppelia_bridge::time::unix_now_ns()),
        )
        .await
        .expect("sweep finished in time")
        .unwrap()
    })
}

/// The files a sweep writes agree with each other and with the documented schema.
fn check_files(dir: &Path, doc: &SweepDoc) {
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), CSV_HEADER.join(","));
    assert_eq!(lines.count(), doc.rows.len());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sweep.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "sweep.json against the schema: {errors:?}"
    );
    let back: SweepDoc = serde_json::from_value(json).unwrap();
    assert_eq!(&back, doc);
    let html = std::fs::read_to_string(dir.join("sweep.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5);
}

#[test]
fn a_tiny_sweep_against_the_standin_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = args(&[
        "--dummies",
        "1,2",
        "--duration",
        "1s",
        "--max-speed",
        "--pause",
        "0s",
    ]);
    let doc = run_sweep(&a, dir.path());
    check_files(dir.path(), &doc);
    assert_eq!(doc.rows.len(), 2);
    for (row, n) in doc.rows.iter().zip([1usize, 2]) {
        assert_eq!(row.status, RowStatus::Ok, "{row:?}");
        assert_eq!(row.dummies_seen, Some(n));
        assert!(row.messages.unwrap() > 0, "{row:?}");
        // Unpaced: far faster than real time.
        assert!(row.rtf_total.unwrap() > 1.0, "{row:?}");
        assert!(row.passes_per_s.unwrap() > 20.0, "{row:?}");
        assert!(row.latency_p50_us.unwrap() > 0.0, "{row:?}");
        let cpu = row.cpu_us_per_message.expect("CPU per message measured");
        assert!(cpu > 0.0 && cpu < 100_000.0, "{row:?}");
        let run = dir.path().join(&row.run_dir);
        for file in ["summary.json", "samples.csv", "report.html"] {
            assert!(run.join(file).is_file(), "{} has no {file}", run.display());
        }
    }
}

#[test]
fn remote_mode_generates_and_loads_each_scene_through_the_remote_api() {
    use coppelia_bridge::scene::parse::parse_scene;
    use coppelia_bridge::scene::{generate_scene, SceneOptions};
    use coppelia_bridge::standin::{spawn, StandinConfig};
    // A stopped stand-in with some other scene, like a CoppeliaSim just started.
    let placeholder = generate_scene(&SceneOptions {
        dummies: 1,
        port: 9,
        ..SceneOptions::default()
    });
    let mut config = StandinConfig::new(parse_scene(&placeholder).unwrap());
    config.remote = Some(("127.0.0.1".into(), 0));
    let standin = spawn(config).unwrap();
    let endpoint = standin.endpoint().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let a = args(&[
        "--remote",
        &endpoint,
        "--dummies",
        "2",
        "--transport",
        "udp,tcp",
        "--dt",
        "0.02",
        "--duration",
        "1s",
        "--pause",
        "0s",
    ]);
    let doc = run_sweep(&a, dir.path());
    standin.shutdown().unwrap();
    check_files(dir.path(), &doc);
    assert_eq!(doc.rows.len(), 2);
    for row in &doc.rows {
        assert_eq!(row.status, RowStatus::Ok, "{row:?}");
        assert_eq!(row.dummies_seen, Some(2), "{row:?}");
        let scene = dir.path().join(&row.run_dir).join("scene.simscene.xml");
        assert!(scene.is_file(), "{}", scene.display());
        // The loaded scene's dt (0.02 s) is what the dummies announced: 50 Hz.
        let rate = row.messages.unwrap() as f64 / row.wall_s.unwrap();
        assert!(rate > 40.0, "{row:?}");
    }
}

#[test]
fn failing_runs_become_rows_with_their_error_and_the_sweep_goes_on() {
    // Nothing listens on port 1: every run fails to reach "CoppeliaSim".
    let dir = tempfile::tempdir().unwrap();
    let a = args(&[
        "--remote",
        "tcp://127.0.0.1:1",
        "--dummies",
        "1,3",
        "--duration",
        "1s",
        "--pause",
        "0s",
    ]);
    let doc = run_sweep(&a, dir.path());
    check_files(dir.path(), &doc);
    assert_eq!(
        doc.rows.len(),
        2,
        "the sweep went on after the first failure"
    );
    for row in &doc.rows {
        assert_eq!(row.status, RowStatus::Failed);
        let error = row.error.as_deref().unwrap();
        assert!(error.contains("tcp://127.0.0.1:1"), "{error}");
        assert_eq!(row.rtf_total, None);
    }
    let html = std::fs::read_to_string(dir.path().join("sweep.html")).unwrap();
    assert!(html.contains("2 runs, 2 failed"), "{html}");
}
