//! `compare.html`: several runs on one page. The side-by-side table of
//! [`compare`](crate::output::compare) (figures and differences from the first run), then
//! the report's time plots with the runs overlaid: one colour per run, its median across
//! dummies as a line and its lowest–highest dummy as a faint band, all on one x axis (wall
//! time since each run's start).

use std::fmt::Write as _;

use crate::output::columns::column;
use crate::output::compare::{
    compare, diff, diff_cell, figure_title, value_cell, Comparison, METRICS,
};
use crate::output::format;

use super::html::{window_label, CSS, SCRIPT};
use super::svg::{self, escape, Mark, Plot, Series, PALETTE};
use super::timeline::{Band, BandSegments, Bands, RTF_WINDOWS_S};
use super::RunData;

/// The whole page for `runs` (label, data loaded with every dummy banded).
pub fn render_page(runs: &[(String, RunData)]) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let title = format!("coppelia-bridge comparison of {} runs", runs.len());
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>",
        t = escape(&title)
    );
    runs_list(&mut page, runs);
    let snaps: Vec<(String, &crate::metrics::RunSnapshot)> = runs
        .iter()
        .map(|(l, d)| (l.clone(), &d.summary.final_snapshot))
        .collect();
    table(&mut page, &compare(&snaps));
    plots(&mut page, runs);
    let _ = writeln!(page, "<script>{SCRIPT}</script>");
    page.push_str("</body></html>\n");
    page
}

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn runs_list(page: &mut String, runs: &[(String, RunData)]) {
    page.push_str("<p class=\"lede\">The first run is the baseline: every Δ is a run's figure minus the baseline's (and relative to it).</p><ul>\n");
    for (i, (label, d)) in runs.iter().enumerate() {
        let s = &d.summary;
        let _ = writeln!(
            page,
            "<li><span class=\"sw\" style=\"background:{}\"></span><b>{}</b> · started {} · {} · {} · <code>{}</code></li>",
            color(i),
            escape(label),
            escape(&s.started_utc),
            format::duration_s(s.final_snapshot.elapsed_s),
            format::count(s.final_snapshot.dummies.len() as u64, "dummy"),
            escape(&s.command_line.join(" "))
        );
    }
    page.push_str("</ul>\n");
}

/// The same rows as the terminal table; per-dummy groups collapse beyond a few.
fn table(page: &mut String, c: &Comparison) {
    page.push_str("<h2 id=\"table\">Figures side by side</h2><p class=\"muted\">Run-wide: simulation RTF (remote API), sum of the dummies' rates, run-wide latency, lost / expected over all dummies (docs/METRICS.md, \"Comparing runs\"). <code>-</code> = unavailable, <code>absent</code> = the dummy is not in that run.</p>\n");
    let header = |page: &mut String| {
        page.push_str("<table><thead><tr><th class=\"l\">scope</th><th class=\"l\">figure</th>");
        for (i, r) in c.runs.iter().enumerate() {
            let _ = write!(
                page,
                "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>",
                color(i),
                escape(r)
            );
            if i > 0 {
                let _ = write!(page, "<th>Δ {}</th>", escape(r));
            }
        }
        page.push_str("</tr></thead><tbody>\n");
    };
    let open_dummies = c.scopes.len() <= 11;
    for (k, scope) in c.scopes.iter().enumerate() {
        if k == 1 {
            let _ = write!(
                page,
                "<details{}><summary>per dummy ({})</summary>",
                if open_dummies { " open" } else { "" },
                c.scopes.len() - 1
            );
        }
        if k <= 1 {
            header(page);
        }
        for (m, id) in METRICS.iter().enumerate() {
            let col = column(*id);
            let base = scope.per_run.first().and_then(|f| f.as_ref()?[m]);
            page.push_str("<tr>");
            if m == 0 {
                let _ = write!(
                    page,
                    "<td class=\"l\" rowspan=\"{}\"><b>{}</b></td>",
                    METRICS.len(),
                    escape(&scope.label)
                );
            }
            let _ = write!(page, "<td class=\"l\">{}</td>", escape(&figure_title(col)));
            for (i, figs) in scope.per_run.iter().enumerate() {
                let v = figs.as_ref().and_then(|f| f[m]);
                let cell = if figs.is_some() {
                    value_cell(col, v)
                } else {
                    "absent".to_owned()
                };
                let _ = write!(page, "<td>{}</td>", escape(&cell));
                if i > 0 {
                    let _ = write!(page, "<td>{}</td>", escape(&diff_cell(col, diff(base, v))));
                }
            }
            page.push_str("</tr>\n");
        }
        if k == 0 || k + 1 == c.scopes.len() {
            page.push_str("</tbody></table>\n");
        }
    }
    if c.scopes.len() > 1 {
        page.push_str("</details>\n");
    }
}

/// Which band of a run a plot draws.
type PickBand<'a> = dyn Fn(&Bands) -> &Band + 'a;

/// One plot per figure over time, every run overlaid.
fn plots(page: &mut String, runs: &[(String, RunData)]) {
    let x_end = runs
        .iter()
        .map(|(_, d)| d.timeline.x_max.max(d.summary.final_snapshot.elapsed_s))
        .fold(1e-3, f64::max);
    let base = Plot {
        x_label: "wall time since each run's start (s)".into(),
        x_range: Some((0.0, x_end)),
        y_from_zero: true,
        ..Plot::default()
    };
    page.push_str("<h2 id=\"plots\">Plots</h2><p class=\"muted\">Per run: the line is the median across its dummies (each dummy's mean per time bucket), the faint band spans its lowest to its highest dummy.</p>\n");
    let overlay = |title: String, y_label: &str, pick: &PickBand<'_>| Plot {
        title,
        y_label: y_label.into(),
        series: runs
            .iter()
            .enumerate()
            .flat_map(|(i, (label, d))| {
                d.timeline
                    .bands
                    .as_ref()
                    .map(|b| run_band(label, color(i), pick(b)))
                    .unwrap_or_default()
            })
            .collect(),
        ..base.clone()
    };
    for (i, w) in RTF_WINDOWS_S.iter().enumerate() {
        let mut plot = overlay(
            format!(
                "Real-time factor over {} windows from the stamps",
                window_label(*w)
            ),
            "RTF",
            &|b| &b.rtf[i],
        );
        plot.hlines = vec![(1.0, "real time".into())];
        plot.y_cap = Some(2.5);
        page.push_str(&svg::render(&plot, &format!("rtf{i}")));
        page.push('\n');
    }
    let rest: [(&str, &str, &str, &PickBand<'_>); 3] = [
        (
            "Simulation time against wall time",
            "simulation time (s)",
            "sim",
            &|b| &b.sim_time,
        ),
        (
            "One-way latency (mean per time bucket)",
            "latency (µs)",
            "lat",
            &|b| &b.latency,
        ),
        (
            "Sending rate (messages per 1 s window)",
            "messages / s (Hz)",
            "rate",
            &|b| &b.rate_hz,
        ),
    ];
    for (title, y, id, pick) in rest {
        page.push_str(&svg::render(&overlay(title.into(), y, pick), id));
        page.push('\n');
    }
    let cdf = Plot {
        title: "Latency CDF, all dummies of each run (fraction of messages with latency ≤ x)"
            .into(),
        x_label: "latency (µs, log scale)".into(),
        y_label: "fraction".into(),
        series: runs
            .iter()
            .enumerate()
            .filter_map(|(i, (label, d))| {
                let b = d.timeline.bands.as_ref()?;
                (!b.latency_cdf.is_empty())
                    .then(|| Series::line(label.clone(), color(i), b.latency_cdf.clone()))
            })
            .collect(),
        log_x: true,
        y_from_zero: true,
        ..Plot::default()
    };
    page.push_str(&svg::render(&cdf, "cdf"));
    page.push('\n');
}

/// A run's band (min–max, faint) and median line in its colour, broken where no dummy has
/// a value for a while.
fn run_band(label: &str, color: &str, band: &Band) -> Vec<Series> {
    let BandSegments { area, median } = band.segments();
    vec![
        Series {
            name: format!("{label}: lowest–highest dummy"),
            color: color.to_owned(),
            mark: Mark::Band(area),
            dashed: false,
        },
        Series::segments(format!("{label}: median"), color, median),
    ]
}
