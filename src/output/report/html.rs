//! Assembles `report.html`: run metadata, summary tables with units, SVG plots, events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::metrics::{DummySnapshot, LatencyStats, SimSnapshot};
use crate::output::events::EventKind;
use crate::output::format::{self, opt, opt_count, opt_us};
use crate::output::rtf_csv::{state_name, Scope};

use super::svg::{self, escape, Plot, Series};
use super::RunData;

/// At most this many points per line (brief: keep pages light for long runs).
const MAX_POINTS: usize = 2000;
/// Events listed in the table; the rest are counted.
const MAX_EVENT_ROWS: usize = 500;

pub(crate) const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1160px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}\
th{background:#f3f5f7}td.l,th.l{text-align:left}tr.off td{background:#fff1e6}.scroll{overflow-x:auto}\
.muted{color:#777}.note{color:#8a5a00}code{font-size:12px}\
svg.plot{display:block;margin:6px 0 14px;font-size:11px}svg .title{font-size:14px;font-weight:600}\
svg .area{fill:#fff;stroke:#999}svg .grid{stroke:#eee}svg .ytick{text-anchor:end;fill:#444}svg .xtick{text-anchor:middle;fill:#444}\
svg .xlabel{text-anchor:middle;fill:#333}svg .ylabel{text-anchor:middle;fill:#333}svg .legend{fill:#333}\
svg .ref{stroke:#555;stroke-dasharray:5 4}svg .reflabel{text-anchor:end;fill:#555}svg .mark{stroke:#e15759;stroke-opacity:.5}\
svg .nodata{text-anchor:middle;fill:#999;font-size:14px}";

/// The whole page.
pub fn render_page(data: &RunData) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let title = format!("coppelia-bridge report — {}", data.summary.started_utc);
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        escape(&title)
    );
    let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
    run_section(&mut page, data);
    dummy_table(&mut page, &data.summary.final_snapshot.dummies);
    if let Some(sim) = &data.summary.final_snapshot.sim {
        sim_table(&mut page, sim);
    }
    plots(&mut page, data);
    events_section(&mut page, data);
    sessions_section(&mut page, data);
    settings_section(&mut page, data);
    page.push_str("</body></html>\n");
    page
}

fn run_section(page: &mut String, data: &RunData) {
    let s = &data.summary;
    let snap = &s.final_snapshot;
    let ended = s
        .ended_utc
        .clone()
        .unwrap_or_else(|| "(still running or killed)".to_owned());
    let recv_clock = serde_json::to_value(snap.recv_clock)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let rows = [
        ("started (UTC)", s.started_utc.clone()),
        ("ended (UTC)", ended),
        ("elapsed", format::duration_s(snap.elapsed_s)),
        ("bridge version", s.version.clone()),
        ("command line", s.command_line.join(" ")),
        ("receive clock", recv_clock),
        ("kernel drops", opt_count(snap.kernel_drops)),
        ("dummies", snap.dummies.len().to_string()),
    ];
    page.push_str("<h2>Run</h2><table>");
    for (k, v) in rows {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{k}</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(&v)
        );
    }
    page.push_str("</table>\n");
    if data.skipped_rows > 0 {
        let _ = writeln!(page, "<p class=\"note\">{} CSV rows did not parse and were left out (truncated by an interrupted run?).</p>", data.skipped_rows);
    }
}

const DUMMY_HEADERS: [&str; 22] = [
    "dummy",
    "id",
    "transport",
    "session",
    "state",
    "messages",
    "rate (Hz)",
    "expected (Hz)",
    "RTF 1 s",
    "RTF 10 s",
    "RTF total",
    "worst RTF 1 s",
    "latency p50 (µs)",
    "p90 (µs)",
    "p99 (µs)",
    "p99.9 (µs)",
    "max (µs)",
    "jitter (µs)",
    "lost",
    "loss (%)",
    "duplicates",
    "clock warnings",
];

/// Columns of the first dummy table (identity, rate, RTF); the second repeats the name
/// and shows the rest, so neither needs horizontal scrolling.
const FIRST_TABLE_COLUMNS: usize = 12;

fn dummy_table(page: &mut String, dummies: &[DummySnapshot]) {
    page.push_str("<h2>Dummies (final)</h2><p class=\"muted\">Rows in orange were off the target RTF at the end. <code>-</code> = unavailable (e.g. legacy senders have no sender clock or seq).</p>\n");
    let rows: Vec<(bool, Vec<String>)> = dummies
        .iter()
        .map(|d| (d.off_target, dummy_cells(d)))
        .collect();
    let all: Vec<usize> = (0..DUMMY_HEADERS.len()).collect();
    let (first, rest) = all.split_at(FIRST_TABLE_COLUMNS);
    let second: Vec<usize> = std::iter::once(0).chain(rest.iter().copied()).collect();
    for columns in [first, &second[..]] {
        table_of_columns(page, columns, &rows);
    }
}

fn table_of_columns(page: &mut String, columns: &[usize], rows: &[(bool, Vec<String>)]) {
    // Text columns (name, transport, state) are left-aligned.
    let class = |i: usize| {
        if matches!(i, 0 | 2 | 4) {
            " class=\"l\""
        } else {
            ""
        }
    };
    page.push_str("<div class=\"scroll\"><table><tr>");
    for &i in columns {
        let _ = write!(page, "<th{}>{}</th>", class(i), DUMMY_HEADERS[i]);
    }
    page.push_str("</tr>\n");
    for (off_target, cells) in rows {
        page.push_str(if *off_target {
            "<tr class=\"off\">"
        } else {
            "<tr>"
        });
        for &i in columns {
            let _ = write!(page, "<td{}>{}</td>", class(i), escape(&cells[i]));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table></div>\n");
}

fn dummy_cells(d: &DummySnapshot) -> Vec<String> {
    let lat = |f: fn(&LatencyStats) -> f64| opt_us(d.latency.as_ref().map(f));
    let transport = serde_json::to_value(d.transport)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    vec![
        d.name.clone(),
        d.id.to_string(),
        transport,
        d.session.to_string(),
        state_name(d),
        d.messages.to_string(),
        opt(d.rate.wall_hz, 2),
        opt(d.rate.expected_hz, 2),
        opt(d.rtf.last_1s, 3),
        opt(d.rtf.last_10s, 3),
        opt(d.rtf.total, 3),
        opt(d.rtf.worst_1s, 3),
        lat(|l| l.p50_us),
        lat(|l| l.p90_us),
        lat(|l| l.p99_us),
        lat(|l| l.p999_us),
        lat(|l| l.max_us),
        opt(d.jitter_rfc3550_us, 1),
        opt_count(d.loss.as_ref().map(|l| l.lost)),
        opt(d.loss.as_ref().map(|l| l.loss_pct), 3),
        opt_count(d.loss.as_ref().map(|l| l.duplicates)),
        d.clock_warnings.to_string(),
    ]
}

fn sim_table(page: &mut String, sim: &SimSnapshot) {
    let rtt = sim.remote_rtt.as_ref();
    let rows = [
        ("state", sim.state.clone()),
        ("version", sim.version.clone().unwrap_or_else(|| "-".into())),
        ("simulation time (s)", opt(sim.sim_time_s, 3)),
        (
            "RTF 1 s / 10 s / total",
            format!(
                "{} / {} / {}",
                opt(sim.rtf.last_1s, 3),
                opt(sim.rtf.last_10s, 3),
                opt(sim.rtf.total, 3)
            ),
        ),
        (
            "worst RTF 1 s (at s)",
            format!(
                "{} ({})",
                opt(sim.rtf.worst_1s, 3),
                opt(sim.rtf.worst_1s_at_s, 1)
            ),
        ),
        (
            "remote API round trip p50 / p99 / max (µs)",
            format!(
                "{} / {} / {}",
                opt_us(rtt.map(|l| l.p50_us)),
                opt_us(rtt.map(|l| l.p99_us)),
                opt_us(rtt.map(|l| l.max_us))
            ),
        ),
        ("unreachable (s)", format!("{:.1}", sim.disconnected_s)),
    ];
    page.push_str("<h2>Simulation (remote API)</h2><table>");
    for (k, v) in rows {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{k}</th><td>{}</td></tr>",
            escape(&v)
        );
    }
    page.push_str("</table>\n");
}

fn names(data: &RunData) -> BTreeMap<u32, String> {
    let mut names: BTreeMap<u32, String> = data
        .summary
        .sessions
        .iter()
        .map(|s| (s.dummy_id, s.final_snapshot.name.clone()))
        .collect();
    names.extend(
        data.summary
            .final_snapshot
            .dummies
            .iter()
            .map(|d| (d.id, d.name.clone())),
    );
    names.extend(
        data.rtf
            .iter()
            .filter_map(|r| Some((r.dummy_id?, r.dummy_name.clone()?))),
    );
    names
}

fn name_of(names: &BTreeMap<u32, String>, id: u32) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("dummy {id}"))
}

/// One series per dummy from `rtf.csv`, plus the sim row if `with_sim`.
fn rtf_series(
    data: &RunData,
    value: fn(&crate::output::rtf_csv::RtfRow) -> Option<f64>,
    with_sim: bool,
) -> Vec<Series> {
    let names = names(data);
    let mut by_key: BTreeMap<Option<u32>, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &data.rtf {
        let key = match r.scope {
            Scope::Sim if with_sim => None,
            Scope::Sim => continue,
            Scope::Dummy => r.dummy_id,
        };
        if let Some(v) = value(r) {
            by_key.entry(key).or_default().push((r.elapsed_s, v));
        }
    }
    by_key
        .into_iter()
        .map(|(key, pts)| Series {
            name: key.map_or_else(
                || "simulation (remote API)".to_owned(),
                |id| name_of(&names, id),
            ),
            points: svg::decimate(&pts, MAX_POINTS),
        })
        .collect()
}

fn plots(page: &mut String, data: &RunData) {
    page.push_str("<h2>Plots</h2>\n");
    let target = data
        .summary
        .settings
        .get("target_rtf")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(1.0);
    let time = "wall time since start (s)".to_owned();
    let rtf = Plot {
        title: "Real-time factor (1 s window)".into(),
        x_label: time.clone(),
        y_label: "RTF".into(),
        series: rtf_series(data, |r| r.rtf_1s, true),
        hlines: vec![(target, format!("target {target}"))],
        y_from_zero: true,
        ..Plot::default()
    };
    let rate = Plot {
        title: "Sending rate (1 s window)".into(),
        x_label: time.clone(),
        y_label: "messages / s (Hz)".into(),
        series: rtf_series(data, |r| r.rate_hz_1s, false),
        y_from_zero: true,
        ..Plot::default()
    };
    let loss_marks: Vec<f64> = data
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Loss)
        .map(|e| e.elapsed_s)
        .collect();
    let lost = Plot {
        title: "Lost messages, cumulative (red marks: loss events)".into(),
        x_label: time.clone(),
        y_label: "messages lost".into(),
        series: rtf_series(data, |r| r.lost.map(|l| l as f64), false),
        vmarks: loss_marks,
        y_from_zero: true,
        ..Plot::default()
    };
    let (latency, cdf) = latency_plots(data, time);
    for plot in [rtf, rate, latency, cdf, lost] {
        page.push_str(&svg::render(&plot));
        page.push('\n');
    }
}

fn latency_plots(data: &RunData, time: String) -> (Plot, Plot) {
    let names = names(data);
    let mut over_time = Vec::new();
    let mut cdfs = Vec::new();
    for (id, pts) in &data.latency {
        if pts.is_empty() {
            continue;
        }
        let values: Vec<f64> = pts.iter().map(|p| p.1).collect();
        cdfs.push(Series {
            name: name_of(&names, *id),
            points: svg::cdf(&values, MAX_POINTS),
        });
        over_time.push(Series {
            name: name_of(&names, *id),
            points: svg::decimate(pts, MAX_POINTS),
        });
    }
    let over_time = Plot {
        title: "One-way latency per message (receive − sender wall clock)".into(),
        x_label: time,
        y_label: "latency (µs)".into(),
        series: over_time,
        y_from_zero: true,
        ..Plot::default()
    };
    let cdf = Plot {
        title: "Latency CDF (fraction of messages with latency ≤ x)".into(),
        x_label: "latency (µs, log scale)".into(),
        y_label: "fraction".into(),
        series: cdfs,
        log_x: true,
        y_from_zero: true,
        ..Plot::default()
    };
    (over_time, cdf)
}

fn events_section(page: &mut String, data: &RunData) {
    page.push_str("<h2>Events</h2>");
    if data.events.is_empty() {
        page.push_str("<p class=\"muted\">No events recorded.</p>\n");
        return;
    }
    page.push_str("<table><tr><th>time (s)</th><th class=\"l\">kind</th><th>dummy</th><th class=\"l\">message</th></tr>\n");
    for e in data.events.iter().take(MAX_EVENT_ROWS) {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let dummy = e.dummy.map_or_else(|| "-".to_owned(), |d| d.to_string());
        let _ = writeln!(
            page,
            "<tr><td>{:.3}</td><td class=\"l\">{}</td><td>{dummy}</td><td class=\"l\">{}</td></tr>",
            e.elapsed_s,
            escape(&kind),
            escape(&e.message)
        );
    }
    page.push_str("</table>\n");
    if data.events.len() > MAX_EVENT_ROWS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} more in events.jsonl.</p>",
            data.events.len() - MAX_EVENT_ROWS
        );
    }
}

fn sessions_section(page: &mut String, data: &RunData) {
    let snap = &data.summary.final_snapshot;
    if !data.summary.sessions.is_empty() {
        page.push_str("<h2>Earlier sessions</h2><table><tr><th class=\"l\">dummy</th><th>session</th><th class=\"l\">ended because</th><th>messages</th><th>RTF total</th><th>lost</th></tr>\n");
        for s in &data.summary.sessions {
            let f = &s.final_snapshot;
            let _ = writeln!(page, "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", escape(&f.name), s.session, escape(&s.reason), f.messages, opt(f.rtf.total, 3), opt_count(f.loss.as_ref().map(|l| l.lost)));
        }
        page.push_str("</table>\n");
    }
    if !snap.rejected.is_empty() {
        page.push_str("<h2>Rejected datagrams</h2><table><tr><th class=\"l\">source</th><th>total</th><th class=\"l\">reasons</th></tr>\n");
        for r in &snap.rejected {
            let reasons: Vec<String> = r
                .by_reason
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(
                page,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                escape(&r.source),
                r.total,
                escape(&reasons.join(", "))
            );
        }
        page.push_str("</table>\n");
    }
}

fn settings_section(page: &mut String, data: &RunData) {
    if data.summary.settings.is_empty() {
        return;
    }
    page.push_str("<h2>Settings</h2><table>");
    for (k, v) in &data.summary.settings {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{}</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(k),
            escape(&v.to_string())
        );
    }
    page.push_str("</table>\n");
}
