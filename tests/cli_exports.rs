//! `--export-markdown FILE` and `--export-csv FILE` on a real `demo` run: the final table's
//! columns with the same cells as the printed table, written atomically; a file in a
//! missing directory is refused before anything is measured.

mod common;

use std::process::Command;

#[test]
fn demo_exports_the_final_table_as_markdown_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (md, csv) = (tmp.path().join("table.md"), tmp.path().join("table.csv"));
    std::fs::write(&md, "old content").unwrap();
    let out = Command::new(common::bin())
        .args([
            "demo",
            "--no-tui",
            "--no-out",
            "--print-interval",
            "1h",
            "--dummies",
            "2",
            "--duration",
            "1s",
        ])
        .arg("--export-markdown")
        .arg(&md)
        .arg("--export-csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let md = std::fs::read_to_string(&md).unwrap();
    let rows: Vec<&str> = md.lines().collect();
    assert_eq!(rows.len(), 2 + 2, "header, alignment, 2 dummies: {md}");
    assert!(
        rows[0].starts_with("| target | dummy | id | transport | messages | rate (Hz) |"),
        "{md}"
    );
    assert!(rows[1].starts_with("| :-- | :-- | --: |"), "{md}");
    // The same cells as the printed table (one definition, same decimals).
    for (printed_row, md_row) in printed.lines().skip(1).zip(&rows[2..]) {
        let p: Vec<&str> = printed_row.split_whitespace().collect();
        let m: Vec<&str> = md_row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(p, m, "printed vs Markdown");
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "off_target,dummy,id,transport,messages,rate_hz,rtf_1s,rtf_10s,rtf_total,rtf_worst_1s,\
         rtf_worst_1s_at_s,latency_p50_us,latency_p99_us,latency_max_us,jitter_us,loss_pct,\
         duplicates,reordered,state"
    );
    assert_eq!(lines.count(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "table.md" && n != "table.csv")
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");
}

#[test]
fn an_export_into_a_missing_directory_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = Command::new(common::bin())
        .args([
            "run",
            "--no-remote",
            "--no-out",
            "--no-tui",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "30s",
        ])
        .arg("--export-csv")
        .arg(tmp.path().join("missing/table.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "not after 30 s"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write --export-csv") && err.contains("directory does not exist"),
        "{err}"
    );
}
