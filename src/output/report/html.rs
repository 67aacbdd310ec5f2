//! Assembles `report.html`: a one-line verdict, the plots (one shared x axis), then the
//! sortable per-dummy tables, the simulation and run tables, events and settings. Values
//! come computed (`timeline`, the summary); this file only lays them out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::metrics::{DummySnapshot, LatencyStats, SimSnapshot};
use crate::output::columns::{columns, Align, REPORT_TABLES};
use crate::output::events::EventKind;
use crate::output::format::{self, count, opt, opt_count, opt_us};
use crate::output::rtf_csv::Scope;

use super::svg::{self, escape, Mark, Plot, Series, BAND_COLOR, PALETTE};
use super::timeline::{Band, RTF_WINDOWS_S};
use super::RunData;

/// At most this many points per line of `rtf.csv` series (1 s snapshots).
const MAX_POINTS: usize = 2000;
/// Events listed in the table; the rest are counted.
const MAX_EVENT_ROWS: usize = 500;
/// Tables with more rows than this start collapsed, so the page stays short.
const OPEN_ROWS: usize = 20;
/// Gaps listed under the plots.
const MAX_GAP_ROWS: usize = 50;
/// RTF plots end at this multiple of the target (catch-up bursts are clipped, and say so).
const RTF_CAP_TIMES_TARGET: f64 = 2.5;

pub(crate) const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1160px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:16px 0 4px}\
.lede{font-size:14px;margin:4px 0 10px}.lede b.off{color:#b23c17}nav a{margin-right:12px;font-size:13px}\
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}\
th{background:#f3f5f7}td.l,th.l{text-align:left}tr.off td{background:#fff1e6}tr.off td.mark{color:#b23c17;font-weight:600}.scroll{overflow-x:auto}\
table.sortable th{cursor:pointer}table.sortable th[aria-sort=ascending]::after{content:' \\25B4'}table.sortable th[aria-sort=descending]::after{content:' \\25BE'}\
.sw{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:2px;vertical-align:-1px}\
.muted{color:#777}.note{color:#8a5a00}code{font-size:12px}details>summary{cursor:pointer;margin:6px 0}\
.rtfsel>div{display:none}#rtfw0:checked~.w0,#rtfw1:checked~.w1{display:block}.rtfsel label{margin:0 12px 0 3px;font-size:13px}\
svg.plot{display:block;margin:6px 0 14px;font-size:11px}svg .title{font-size:14px;font-weight:600}\
svg .area{fill:#fff;stroke:#999}svg .grid{stroke:#eee}svg .ytick{text-anchor:end;fill:#444}svg .xtick{text-anchor:middle;fill:#444}\
svg .xlabel{text-anchor:middle;fill:#333}svg .ylabel{text-anchor:middle;fill:#333}svg .legend{fill:#333}\
svg .ref{stroke:#555;stroke-dasharray:5 4}svg .reflabel{text-anchor:end;fill:#555}svg .mark{stroke:#e15759;stroke-opacity:.5}\
svg .nodata{text-anchor:middle;fill:#999;font-size:14px}";

/// Sorts tables by a click on a header (numbers by `data-v`, unavailable last), and marks
/// the document once it ran (`data-report-ready`), so a headless browser can check the
/// page loads without a script error. No network, no library.
pub(super) const SCRIPT: &str = r#"(function(){
var d=document,root=d.documentElement;
window.addEventListener('error',function(e){root.setAttribute('data-report-error',String(e.message));});
function key(c,num){var v=c.getAttribute('data-v');if(v===null||v==='')return null;return num?parseFloat(v):v;}
var tables=d.querySelectorAll('table.sortable');
Array.prototype.forEach.call(tables,function(t){
 var ths=t.tHead.rows[0].cells;
 Array.prototype.forEach.call(ths,function(th,i){
  th.addEventListener('click',function(){
   var num=th.getAttribute('data-type')==='num';
   var asc=th.getAttribute('aria-sort')!=='ascending';
   var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
   rows.sort(function(a,b){
    var x=key(a.cells[i],num),y=key(b.cells[i],num);
    if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
    var r=x<y?-1:x>y?1:0;return asc?r:-r;});
   rows.forEach(function(r){body.appendChild(r);});
   Array.prototype.forEach.call(ths,function(h){h.removeAttribute('aria-sort');});
   th.setAttribute('aria-sort',asc?'ascending':'descending');
  });
 });
});
root.setAttribute('data-sortable-tables',String(tables.length));
root.setAttribute('data-report-ready','1');
})();"#;

/// Colours by dummy id: every dummy drawn one by one keeps its colour in every plot and
/// in the tables' swatches.
type Colors = BTreeMap<u32, &'static str>;

/// The whole page.
pub fn render_page(data: &RunData) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let title = format!("coppelia-bridge report — {}", data.summary.started_utc);
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{CSS}</style></head><body>",
        escape(&title)
    );
    let _ = writeln!(page, "<h1>{}</h1>", escape(&title));
    let colors: Colors = data
        .timeline
        .detailed
        .keys()
        .enumerate()
        .map(|(i, &id)| (id, PALETTE[i % PALETTE.len()]))
        .collect();
    lede(&mut page, data);
    page.push_str("<nav><a href=\"#plots\">Plots</a><a href=\"#dummies\">Dummies</a><a href=\"#run\">Run and simulation</a><a href=\"#events\">Events</a><a href=\"#settings\">Settings</a></nav>\n");
    plots(&mut page, data, &colors);
    dummy_tables(&mut page, &data.summary.final_snapshot.dummies, &colors);
    run_section(&mut page, data);
    if let Some(sim) = &data.summary.final_snapshot.sim {
        sim_table(&mut page, sim);
    }
    events_section(&mut page, data);
    sessions_section(&mut page, data);
    settings_section(&mut page, data);
    let _ = writeln!(page, "<script>{SCRIPT}</script>");
    page.push_str("</body></html>\n");
    page
}

/// One line to read first: length, dummies, how many are off target, the worst RTF.
fn lede(page: &mut String, data: &RunData) {
    let snap = &data.summary.final_snapshot;
    let off = snap.dummies.iter().filter(|d| d.off_target).count();
    let worst = snap
        .dummies
        .iter()
        .filter_map(|d| Some((d.rtf.worst_1s?, d)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let mut text = format!(
        "{} · {} · {} received",
        format::duration_s(snap.elapsed_s),
        count(snap.dummies.len() as u64, "dummy"),
        count(data.timeline.rows, "message"),
    );
    let off_text = if off > 0 {
        format!(" · <b class=\"off\">{off} off target at the end</b>")
    } else {
        " · all on target at the end".to_owned()
    };
    if let Some((rtf, d)) = worst {
        let _ = write!(
            text,
            " · worst 1 s RTF {rtf:.3} ({} at {} s)",
            d.name,
            opt(d.rtf.worst_1s_at_s, 1)
        );
    }
    let _ = writeln!(page, "<p class=\"lede\">{}{off_text}</p>", escape(&text));
    let unsure: Vec<&str> = snap
        .dummies
        .iter()
        .filter(|d| d.clock.is_some_and(|c| c.latency_uncertain))
        .map(|d| d.name.as_str())
        .collect();
    if !unsure.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"note\">Latency unsure for {}: the clock offset estimated from ECHO exchanges (|offset| + bound, columns <i>clock offset</i> and <i>offset ±</i>) is at least half the latency median, so the clock could make up half of the one-way latencies or more. Synchronise the clocks (chrony/PTP).</p>",
            escape(&unsure.join(", "))
        );
    }
    if data.skipped_rows > 0 {
        let _ = writeln!(
            page,
            "<p class=\"note\">{} left out: did not parse (truncated by an interrupted run?).</p>",
            count(data.skipped_rows as u64, "CSV row")
        );
    }
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
    names
}

fn name_of(names: &BTreeMap<u32, String>, id: u32) -> String {
    names
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("dummy {id}"))
}

fn target_rtf(data: &RunData) -> f64 {
    data.summary
        .settings
        .get("target_rtf")
        .and_then(serde_json::Value::as_f64)
        .filter(|t| *t > 0.0)
        .unwrap_or(1.0)
}

/// The plots, all time plots on one x range: 0 to the end of the run.
fn plots(page: &mut String, data: &RunData, colors: &Colors) {
    let t = &data.timeline;
    let x_end = t.x_max.max(data.summary.final_snapshot.elapsed_s);
    let base = Plot {
        x_label: "wall time since the run start (s)".into(),
        x_range: Some((0.0, x_end.max(1e-3))),
        y_from_zero: true,
        ..Plot::default()
    };
    let names = names(data);
    let target = target_rtf(data);
    page.push_str("<h2 id=\"plots\">Plots</h2>\n");
    if t.bands.is_some() {
        let _ = writeln!(page, "<p class=\"muted\">{} dummies: the grey band spans the lowest to the highest dummy (each dummy's mean per time bucket), the grey line is their median; the worst few dummies are drawn in colour.</p>", names.len());
    }
    // RTF, with the window chosen in the page (CSS radio buttons: works without script).
    page.push_str("<div class=\"rtfsel\">RTF window:");
    for (i, w) in RTF_WINDOWS_S.iter().enumerate() {
        let checked = if i == RTF_WINDOWS_S.len() - 1 {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            page,
            "<input type=\"radio\" name=\"rtfw\" id=\"rtfw{i}\"{checked}><label for=\"rtfw{i}\">{}</label>",
            window_label(*w)
        );
    }
    for (i, w) in RTF_WINDOWS_S.iter().enumerate() {
        let plot = rtf_plot(data, &base, colors, &names, i, *w, target);
        let _ = write!(
            page,
            "<div class=\"w{i}\">{}</div>",
            svg::render(&plot, &format!("rtf{i}"))
        );
    }
    page.push_str("</div>\n");
    let sim = Plot {
        title: "Simulation time against wall time (a stall is a gap or a flat stretch)".into(),
        y_label: "simulation time (s)".into(),
        series: series_of(
            data,
            colors,
            &names,
            |s| Mark::Line(s.sim_time.clone()),
            |b| &b.sim_time,
        ),
        ..base.clone()
    };
    let latency = Plot {
        title: "One-way latency per message (receive − sender wall clock)".into(),
        y_label: "latency (µs)".into(),
        series: series_of(
            data,
            colors,
            &names,
            |s| Mark::Dots(s.latency.clone()),
            |b| &b.latency,
        ),
        ..base.clone()
    };
    let rate = Plot {
        title: "Sending rate (messages per 1 s window)".into(),
        y_label: "messages / s (Hz)".into(),
        series: series_of(
            data,
            colors,
            &names,
            |s| Mark::Line(s.rate_hz.clone()),
            |b| &b.rate_hz,
        ),
        ..base.clone()
    };
    let lost = lost_plot(data, &base, colors, &names);
    let cdf = cdf_plot(data, colors, &names);
    for (plot, id) in [
        (sim, "sim"),
        (latency, "lat"),
        (rate, "rate"),
        (cdf, "cdf"),
        (lost, "lost"),
    ] {
        page.push_str(&svg::render(&plot, id));
        page.push('\n');
    }
    gaps_list(page, data, &names);
}

pub(super) fn window_label(w_s: f64) -> String {
    if w_s < 1.0 {
        format!("{:.0} ms", w_s * 1000.0)
    } else {
        format!("{w_s} s")
    }
}

fn rtf_plot(
    data: &RunData,
    base: &Plot,
    colors: &Colors,
    names: &BTreeMap<u32, String>,
    i: usize,
    w: f64,
    target: f64,
) -> Plot {
    let mut series = series_of(
        data,
        colors,
        names,
        |s| Mark::Line(s.rtf[i].clone()),
        |b| &b.rtf[i],
    );
    if (w - 1.0).abs() < 1e-9 {
        // The simulation-wide RTF is polled through the remote API: only its 1 s
        // snapshots exist (rtf.csv).
        let pts: Vec<(f64, f64)> = data
            .rtf
            .iter()
            .filter(|r| r.scope == Scope::Sim)
            .filter_map(|r| Some((r.elapsed_s, r.rtf_1s?)))
            .collect();
        if !pts.is_empty() {
            let mut s = Series::line(
                "simulation (remote API, 1 s snapshots)",
                BAND_COLOR,
                svg::decimate(&pts, MAX_POINTS),
            );
            s.dashed = true;
            series.push(s);
        }
    }
    let cap = RTF_CAP_TIMES_TARGET * target;
    Plot {
        title: format!(
            "Real-time factor over {} windows from the stamps (axis ends at {cap}; higher values are clipped)",
            window_label(w)
        ),
        y_label: "RTF".into(),
        series,
        hlines: vec![(target, format!("target {target}"))],
        y_cap: Some(cap),
        ..base.clone()
    }
}

/// One series per detailed dummy, after the band (with its median line) when there is
/// one.
fn series_of(
    data: &RunData,
    colors: &Colors,
    names: &BTreeMap<u32, String>,
    mark: impl Fn(&super::timeline::DummySeries) -> Mark,
    band: impl Fn(&super::timeline::Bands) -> &Band,
) -> Vec<Series> {
    let mut out = Vec::new();
    if let Some(b) = &data.timeline.bands {
        out.extend(band_series(band(b)));
    }
    for (id, s) in &data.timeline.detailed {
        out.push(Series {
            name: name_of(names, *id),
            color: colors.get(id).copied().unwrap_or(PALETTE[0]).to_owned(),
            mark: mark(s),
            dashed: false,
        });
    }
    out
}

/// The band (min–max) and its median line, broken where no dummy has a value for a while.
fn band_series(band: &Band) -> [Series; 2] {
    let super::timeline::BandSegments { area, median } = band.segments();
    [
        Series {
            name: "all dummies: lowest–highest".into(),
            color: BAND_COLOR.into(),
            mark: Mark::Band(area),
            dashed: false,
        },
        Series::segments("all dummies: median", BAND_COLOR, median),
    ]
}

fn lost_plot(data: &RunData, base: &Plot, colors: &Colors, names: &BTreeMap<u32, String>) -> Plot {
    let mut by_id: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &data.rtf {
        if let (Scope::Dummy, Some(id), Some(lost)) = (r.scope, r.dummy_id, r.lost) {
            if colors.contains_key(&id) {
                by_id
                    .entry(id)
                    .or_default()
                    .push((r.elapsed_s, lost as f64));
            }
        }
    }
    let series = by_id
        .into_iter()
        .map(|(id, pts)| {
            Series::line(
                name_of(names, id),
                colors[&id],
                svg::decimate(&pts, MAX_POINTS),
            )
        })
        .collect();
    Plot {
        title: "Lost messages, cumulative per session (1 s snapshots; red marks: loss events)"
            .into(),
        y_label: "messages lost".into(),
        series,
        vmarks: data
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Loss)
            .map(|e| e.elapsed_s)
            .collect(),
        ..base.clone()
    }
}

fn cdf_plot(data: &RunData, colors: &Colors, names: &BTreeMap<u32, String>) -> Plot {
    let mut series = Vec::new();
    if let Some(b) = &data.timeline.bands {
        series.push(Series::line(
            "all dummies",
            BAND_COLOR,
            b.latency_cdf.clone(),
        ));
    }
    for (id, s) in &data.timeline.detailed {
        if !s.latency_cdf.is_empty() {
            series.push(Series::line(
                name_of(names, *id),
                colors[id],
                s.latency_cdf.clone(),
            ));
        }
    }
    Plot {
        title: "Latency CDF (fraction of messages with latency ≤ x)".into(),
        x_label: "latency (µs, log scale)".into(),
        y_label: "fraction".into(),
        series,
        log_x: true,
        y_from_zero: true,
        ..Plot::default()
    }
}

fn gaps_list(page: &mut String, data: &RunData, names: &BTreeMap<u32, String>) {
    let mut gaps: Vec<(u32, f64, f64)> = data
        .timeline
        .detailed
        .iter()
        .flat_map(|(id, s)| s.gaps.iter().map(move |g| (*id, g.0, g.1)))
        .collect();
    if gaps.is_empty() {
        page.push_str("<p class=\"muted\">No gaps in the samples (see METRICS.md \"Report time series\" for what counts as one).</p>\n");
        return;
    }
    gaps.sort_by(|a, b| (b.2 - b.1).total_cmp(&(a.2 - a.1)));
    let _ = write!(
        page,
        "<details{}><summary>{} in the samples (longest first): no line is drawn across them</summary><table><thead><tr><th class=\"l\">dummy</th><th>from (s)</th><th>to (s)</th><th>length (s)</th></tr></thead><tbody>",
        if gaps.len() <= 5 { " open" } else { "" },
        count(gaps.len() as u64, "gap")
    );
    for (id, from, to) in gaps.iter().take(MAX_GAP_ROWS) {
        let _ = write!(
            page,
            "<tr><td class=\"l\">{}</td><td>{from:.3}</td><td>{to:.3}</td><td>{:.3}</td></tr>",
            escape(&name_of(names, *id)),
            to - from
        );
    }
    page.push_str("</tbody></table></details>\n");
}

/// The per-dummy tables: the shared column definitions, sortable, rows off target marked
/// `off` in their first cell (and tinted).
fn dummy_tables(page: &mut String, dummies: &[DummySnapshot], colors: &Colors) {
    page.push_str("<h2 id=\"dummies\">Dummies (final)</h2><p class=\"muted\">Click a header to sort. <b>off</b> in the first column: the dummy's 1 s RTF was off the target at the end. <code>-</code> = unavailable (e.g. legacy senders have no sender clock or seq).</p>\n");
    let open = dummies.len() <= OPEN_ROWS;
    for (title, ids) in REPORT_TABLES {
        let _ = write!(
            page,
            "<details{}><summary><b>{title}</b> ({})</summary>",
            if open { " open" } else { "" },
            count(dummies.len() as u64, "row")
        );
        table_of_columns(page, ids, dummies, colors);
        page.push_str("</details>\n");
    }
}

fn table_of_columns(
    page: &mut String,
    ids: &[crate::output::columns::ColumnId],
    dummies: &[DummySnapshot],
    colors: &Colors,
) {
    let cols = columns(ids);
    let class = |a: Align| match a {
        Align::Left => " class=\"l\"",
        Align::Right => "",
    };
    page.push_str("<div class=\"scroll\"><table class=\"sortable\"><thead><tr>");
    for c in &cols {
        let kind = if c.align() == Align::Right {
            "num"
        } else {
            "text"
        };
        let _ = write!(
            page,
            "<th{} data-type=\"{kind}\" title=\"{}\">{}</th>",
            class(c.align()),
            escape(c.help),
            escape(&c.title())
        );
    }
    page.push_str("</tr></thead><tbody>\n");
    for d in dummies {
        page.push_str(if d.off_target {
            "<tr class=\"off\">"
        } else {
            "<tr>"
        });
        for c in &cols {
            let v = c.value(d);
            let sort = v.number().map_or_else(|| c.raw(d), |n| n.to_string());
            let mut cell = escape(&c.cell(d));
            if c.id == crate::output::columns::ColumnId::Name {
                if let Some(color) = colors.get(&d.id) {
                    cell = format!("<span class=\"sw\" style=\"background:{color}\"></span>{cell}");
                }
            }
            let extra = if c.id == crate::output::columns::ColumnId::Target {
                " mark"
            } else {
                ""
            };
            let cls = match (c.align(), extra) {
                (Align::Left, "") => " class=\"l\"".to_owned(),
                (Align::Left, e) => format!(" class=\"l{e}\""),
                (Align::Right, "") => String::new(),
                (Align::Right, e) => format!(" class=\"{}\"", e.trim()),
            };
            let _ = write!(page, "<td{cls} data-v=\"{}\">{cell}</td>", escape(&sort));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody></table></div>\n");
}

fn run_section(page: &mut String, data: &RunData) {
    let s = &data.summary;
    let snap = &s.final_snapshot;
    let ended = s
        .ended_utc
        .clone()
        .unwrap_or_else(|| "(still running or killed)".to_owned());
    let backlog = |f: fn(&LatencyStats) -> f64| opt_us(snap.backlog.as_ref().map(f));
    let rows = [
        ("started (UTC)", s.started_utc.clone()),
        ("ended (UTC)", ended),
        ("elapsed", format::duration_s(snap.elapsed_s)),
        ("bridge version", s.version.clone()),
        ("command line", s.command_line.join(" ")),
        ("receive clock", snap.recv_clock.as_str().to_owned()),
        ("kernel drops", opt_count(snap.kernel_drops)),
        (
            "read backlog p50 / p99 / max (µs)",
            format!(
                "{} / {} / {}",
                backlog(|b| b.p50_us),
                backlog(|b| b.p99_us),
                backlog(|b| b.max_us)
            ),
        ),
        ("dummies", snap.dummies.len().to_string()),
        (
            "messages in the samples file",
            data.timeline.rows.to_string(),
        ),
    ];
    page.push_str("<h2 id=\"run\">Run and simulation</h2><table>");
    for (k, v) in rows {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{k}</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(&v)
        );
    }
    page.push_str("</table>\n<p class=\"muted\">Read backlog: how long kernel-stamped messages waited for the bridge to read them (its own delay, kept out of every latency).</p>\n");
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
    page.push_str("<h3>Simulation (remote API)</h3><table>");
    for (k, v) in rows {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{k}</th><td>{}</td></tr>",
            escape(&v)
        );
    }
    page.push_str("</table>\n");
}

fn events_section(page: &mut String, data: &RunData) {
    page.push_str("<h2 id=\"events\">Events</h2>");
    if data.events.is_empty() {
        page.push_str("<p class=\"muted\">No events recorded.</p>\n");
        return;
    }
    let n = data.events.len();
    let _ = writeln!(
        page,
        "<details{}><summary>{}</summary><table class=\"sortable\"><thead><tr><th data-type=\"num\">time (s)</th><th class=\"l\" data-type=\"text\">kind</th><th data-type=\"num\">dummy</th><th class=\"l\" data-type=\"text\">message</th></tr></thead><tbody>",
        if n <= OPEN_ROWS { " open" } else { "" },
        count(n as u64, "event")
    );
    for e in data.events.iter().take(MAX_EVENT_ROWS) {
        let dummy = e.dummy.map_or_else(|| "-".to_owned(), |d| d.to_string());
        let dummy_v = e.dummy.map_or_else(String::new, |d| d.to_string());
        let _ = writeln!(
            page,
            "<tr><td data-v=\"{:.6}\">{:.3}</td><td class=\"l\" data-v=\"{kind}\">{kind}</td><td data-v=\"{dummy_v}\">{dummy}</td><td class=\"l\" data-v=\"{msg}\">{msg}</td></tr>",
            e.elapsed_s,
            e.elapsed_s,
            kind = escape(e.kind.as_str()),
            msg = escape(&e.message)
        );
    }
    page.push_str("</tbody></table></details>\n");
    if n > MAX_EVENT_ROWS {
        let _ = writeln!(
            page,
            "<p class=\"muted\">… and {} more in events.jsonl.</p>",
            n - MAX_EVENT_ROWS
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
    let _ = write!(
        page,
        "<h2 id=\"settings\">Settings</h2><details><summary>{}</summary><table>",
        count(data.summary.settings.len() as u64, "setting")
    );
    for (k, v) in &data.summary.settings {
        let _ = write!(
            page,
            "<tr><th class=\"l\">{}</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(k),
            escape(&v.to_string())
        );
    }
    page.push_str("</table></details>\n");
}
