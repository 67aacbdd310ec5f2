//! A sweep's table: `sweep.csv`, `sweep.json` (schema `docs/sweep.schema.json`) and
//! `sweep.html` (the table and one plot per figure against the swept parameter). Columns are
//! defined in `docs/OUTPUT.md` ("Sweep"); the rows are built by [`crate::sweep`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::output::report::html::CSS;
use crate::output::report::svg::{self, escape, Plot, Series};
use crate::output::{write_atomic, OutputError};
use crate::sweep::{series, RowStatus, SweepRow, XAxis, SWEEP_SCHEMA_VERSION};

/// File names in the sweep directory.
pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_HTML: &str = "sweep.html";

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepDoc {
    pub schema_version: u32,
    /// When the sweep started, RFC 3339 UTC.
    pub started_utc: String,
    /// The sweep's settings (duration, speed, target: stand-in or a remote endpoint).
    pub settings: BTreeMap<String, serde_json::Value>,
    pub rows: Vec<SweepRow>,
}

impl SweepDoc {
    pub fn new(started_utc: String, settings: BTreeMap<String, serde_json::Value>) -> Self {
        Self {
            schema_version: SWEEP_SCHEMA_VERSION,
            started_utc,
            settings,
            rows: Vec::new(),
        }
    }
}

/// CSV header, units in the names (docs/OUTPUT.md "Sweep").
pub const CSV_HEADER: [&str; 18] = [
    "index",
    "dummies",
    "dt_s",
    "transport",
    "status",
    "error",
    "run_dir",
    "dummies_seen",
    "wall_s",
    "messages",
    "rtf_total",
    "rtf_worst_1s",
    "passes_per_s",
    "latency_p50_us",
    "latency_p99_us",
    "loss_pct",
    "bridge_cpu_s",
    "cpu_us_per_message",
];

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_record(r: &SweepRow) -> [String; 18] {
    let c = &r.combination;
    [
        c.index.to_string(),
        c.dummies.to_string(),
        c.dt_s.to_string(),
        crate::sweep::transport_str(c.transport).to_owned(),
        status_str(r.status).to_owned(),
        r.error.clone().unwrap_or_default(),
        r.run_dir.clone(),
        cell(r.dummies_seen),
        cell(r.wall_s),
        cell(r.messages),
        cell(r.rtf_total),
        cell(r.rtf_worst_1s),
        cell(r.passes_per_s),
        cell(r.latency_p50_us),
        cell(r.latency_p99_us),
        cell(r.loss_pct),
        cell(r.bridge_cpu_s),
        cell(r.cpu_us_per_message),
    ]
}

fn status_str(s: RowStatus) -> &'static str {
    match s {
        RowStatus::Ok => "ok",
        RowStatus::Failed => "failed",
    }
}

/// The rows as CSV (header first; an unavailable figure is an empty cell, never 0).
pub fn write_csv(rows: &[SweepRow], out: impl std::io::Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for r in rows {
        w.write_record(csv_record(r))?;
    }
    w.flush()
}

/// Writes `sweep.csv`, `sweep.json` and `sweep.html` into `dir` (each atomically, so a
/// sweep interrupted between runs leaves a complete table of the runs so far).
pub fn write_sweep_files(dir: &Path, doc: &SweepDoc) -> Result<(), OutputError> {
    let mut csv = Vec::new();
    write_csv(&doc.rows, &mut csv).map_err(|e| OutputError::Io {
        op: "encode",
        path: dir.join(SWEEP_CSV),
        source: e,
    })?;
    write_atomic(&dir.join(SWEEP_CSV), &csv)?;
    let json = serde_json::to_vec_pretty(doc).map_err(|source| OutputError::Json {
        what: "the sweep table",
        source,
    })?;
    write_atomic(&dir.join(SWEEP_JSON), &json)?;
    write_atomic(&dir.join(SWEEP_HTML), render_html(doc).as_bytes())
}

/// `sweep.html`: settings, the table (failed runs with their error), and the plots.
pub fn render_html(doc: &SweepDoc) -> String {
    let mut page = String::with_capacity(32 * 1024);
    let title = format!("coppelia-bridge sweep — {}", doc.started_utc);
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body>\n<h1>{t}</h1>",
        t = escape(&title)
    );
    settings_line(&mut page, doc);
    table(&mut page, &doc.rows);
    plots(&mut page, &doc.rows, target_rtf(doc));
    page.push_str("</body></html>\n");
    page
}

fn target_rtf(doc: &SweepDoc) -> f64 {
    doc.settings
        .get("target_rtf")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(1.0)
}

fn settings_line(page: &mut String, doc: &SweepDoc) {
    let items: Vec<String> = doc
        .settings
        .iter()
        .map(|(k, v)| format!("{} <code>{}</code>", escape(k), escape(&v.to_string())))
        .collect();
    let failed = doc
        .rows
        .iter()
        .filter(|r| r.status == RowStatus::Failed)
        .count();
    let _ = writeln!(
        page,
        "<p class=\"muted\">{} runs, {failed} failed · {}</p>",
        doc.rows.len(),
        items.join(" · ")
    );
}

fn table(page: &mut String, rows: &[SweepRow]) {
    page.push_str("<h2>Runs</h2>\n<div class=\"scroll\"><table><tr>");
    let heads = [
        "#",
        "dummies",
        "dt s",
        "transport",
        "status",
        "RTF total",
        "RTF worst 1 s",
        "passes/s",
        "latency p50 µs",
        "latency p99 µs",
        "loss %",
        "bridge CPU s",
        "CPU µs/msg",
        "messages",
        "run directory / error",
    ];
    for h in heads {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for r in rows {
        row_html(page, r);
    }
    page.push_str("</table></div>\n");
}

fn row_html(page: &mut String, r: &SweepRow) {
    let c = &r.combination;
    let f = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "-".to_owned())
    };
    let class = if r.status == RowStatus::Failed {
        " class=\"off\""
    } else {
        ""
    };
    let last = match &r.error {
        Some(e) => format!("<span class=\"note\">{}</span>", escape(e)),
        None => format!(
            "<a href=\"{d}/report.html\">{d}</a>",
            d = escape(&r.run_dir)
        ),
    };
    let _ = writeln!(
        page,
        "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{last}</td></tr>",
        c.index,
        c.dummies,
        c.dt_s,
        crate::sweep::transport_str(c.transport),
        status_str(r.status),
        f(r.rtf_total, 3),
        f(r.rtf_worst_1s, 3),
        f(r.passes_per_s, 1),
        f(r.latency_p50_us, 0),
        f(r.latency_p99_us, 0),
        f(r.loss_pct, 2),
        f(r.bridge_cpu_s, 3),
        f(r.cpu_us_per_message, 2),
        r.messages.map(|m| m.to_string()).unwrap_or_else(|| "-".to_owned()),
    );
}

/// One figure of a row, `None` when unavailable.
type Figure = fn(&SweepRow) -> Option<f64>;

/// One plot: `figures` are (suffix, figure) pairs drawn as separate lines per series.
fn plot(
    rows: &[SweepRow],
    x: XAxis,
    title: &str,
    y_label: &str,
    figures: &[(&str, Figure)],
) -> Plot {
    let mut lines = Vec::new();
    for (suffix, figure) in figures {
        for (name, points) in series(rows, x, figure) {
            let name = if suffix.is_empty() {
                name
            } else {
                format!("{name} · {suffix}")
            };
            let color = svg::PALETTE[lines.len() % svg::PALETTE.len()];
            lines.push(Series::line(name, color, points));
        }
    }
    let xs: Vec<f64> = rows.iter().map(|r| x.value(&r.combination)).collect();
    let (lo, hi) = xs.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    Plot {
        title: title.to_owned(),
        x_label: x.label().to_owned(),
        y_label: y_label.to_owned(),
        series: lines,
        // Dummies usually go by decades (1, 10, 100, 1000).
        log_x: lo > 0.0 && hi / lo >= 50.0,
        y_from_zero: true,
        ..Plot::default()
    }
}

fn plots(page: &mut String, rows: &[SweepRow], target: f64) {
    let x = XAxis::of(rows);
    page.push_str("<h2>Plots</h2>\n");
    let mut rtf = plot(
        rows,
        x,
        "Real-time factor",
        "RTF",
        &[
            ("total", |r| r.rtf_total),
            ("worst 1 s", |r| r.rtf_worst_1s),
        ],
    );
    rtf.hlines = vec![(target, format!("target {target}"))];
    let plots = [
        rtf,
        plot(
            rows,
            x,
            "Achieved simulation passes per wall second",
            "passes / s",
            &[("", |r| r.passes_per_s)],
        ),
        plot(
            rows,
            x,
            "One-way latency",
            "µs",
            &[("p50", |r| r.latency_p50_us), ("p99", |r| r.latency_p99_us)],
        ),
        plot(rows, x, "Loss", "% of messages", &[("", |r| r.loss_pct)]),
        plot(
            rows,
            x,
            "Bridge CPU per message",
            "µs CPU / message",
            &[("", |r| r.cpu_us_per_message)],
        ),
    ];
    for (i, p) in plots.iter().enumerate() {
        page.push_str(&svg::render(p, &format!("sweep{i}")));
        page.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;
    use crate::scene::Transport;
    use crate::sweep::{failed_row, row_from_run, Combination, RunFigures};

    fn doc() -> SweepDoc {
        let snap = sample_run_snapshot();
        let c = |index, dummies| Combination {
            index,
            dummies,
            dt_s: 0.05,
            transport: Transport::Udp,
        };
        let mut doc = SweepDoc::new("2026-11-30T06:00:00Z".into(), BTreeMap::new());
        doc.rows.push(row_from_run(
            c(1, 1),
            RunFigures {
                snapshot: &snap,
                bridge_cpu_s: Some(0.25),
            },
        ));
        doc.rows
            .push(failed_row(c(2, 1000), "no dummy sent anything, \"quoted\""));
        doc
    }

    #[test]
    fn csv_has_the_documented_header_and_empty_cells_for_unavailable_figures() {
        let mut out = Vec::new();
        write_csv(&doc().rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), CSV_HEADER.join(","));
        let ok = lines.next().unwrap();
        assert!(
            ok.starts_with("1,1,0.05,udp,ok,,001-udp-dt0.05-d1,"),
            "{ok}"
        );
        let failed = lines.next().unwrap();
        assert!(
            failed
                .starts_with("2,1000,0.05,udp,failed,\"no dummy sent anything, \"\"quoted\"\"\","),
            "{failed}"
        );
        assert!(failed.ends_with(",,,,,,,,,,,"), "{failed}");
    }

    #[test]
    fn html_lists_failures_with_their_error_and_draws_every_plot() {
        let page = render_html(&doc());
        assert!(
            page.contains("no dummy sent anything, &quot;quoted&quot;"),
            "error shown"
        );
        assert!(page.contains("001-udp-dt0.05-d1/report.html"));
        assert_eq!(page.matches("<svg").count(), 5);
        assert!(page.contains("Bridge CPU per message"));
    }
}
