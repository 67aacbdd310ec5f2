//! One render function per widget of the live view. They only lay out numbers already in
//! the snapshot; no statistic is computed here.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, Cell, Gauge, Paragraph, Row, Sparkline, Table, TableState,
};
use ratatui::Frame;

use crate::metrics::{DummySnapshot, LatencyStats};
use crate::output::columns::{column, columns, Align, ColumnId, LIVE_TABLE};
use crate::output::format::{self, opt, opt_us};
use crate::output::rtf_csv::state_name;

use super::state::{sort_label, Ring, ViewState};
use super::RunInfo;

const HEADER_STYLE: Style = Style::new().add_modifier(Modifier::BOLD);
const OFF_TARGET_STYLE: Style = Style::new()
    .fg(Color::LightRed)
    .add_modifier(Modifier::BOLD);

/// Rows of the bottom part (sparklines and detail pane).
const BOTTOM_ROWS: u16 = 12;
/// Table rows besides the dummies: two borders and the header.
const TABLE_CHROME: u16 = 3;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenLayout {
    pub header: Rect,
    pub table: Rect,
    pub bottom: Rect,
    pub help: Rect,
}

impl ScreenLayout {
    /// Dummy rows the table can show at once.
    pub fn table_rows(&self) -> usize {
        usize::from(self.table.height.saturating_sub(TABLE_CHROME))
    }
}

/// The dummy table takes the height its rows need and everything the bottom part does not
/// (12 rows); with few dummies the bottom part grows instead of leaving the table empty.
pub fn screen_layout(area: Rect, state: &ViewState, info: &RunInfo) -> ScreenLayout {
    let header_h = if info.duration_s.is_some() { 5 } else { 4 };
    let rows = u16::try_from(state.shown.dummies.len()).unwrap_or(u16::MAX);
    let room = area.height.saturating_sub(header_h + 1 + BOTTOM_ROWS);
    let table_h = rows
        .saturating_add(TABLE_CHROME)
        .clamp(TABLE_CHROME + 1, room.max(TABLE_CHROME + 1));
    let [header, table, bottom, help] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Length(table_h),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    ScreenLayout {
        header,
        table,
        bottom,
        help,
    }
}

/// The whole screen: header, table, sparklines and detail pane, key help.
pub fn render(frame: &mut Frame, state: &ViewState, info: &RunInfo) {
    let l = screen_layout(frame.area(), state, info);
    render_header(frame, l.header, state, info);
    render_table(frame, l.table, state);
    let [sparks, detail] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .areas(l.bottom);
    render_sparklines(frame, sparks, state);
    render_detail(frame, detail, state);
    render_help(frame, l.help, state);
}

/// CoppeliaSim state, simulation time, global RTF, remote API round trip, elapsed and
/// remaining time, and a progress gauge for bounded runs.
pub fn render_header(frame: &mut Frame, area: Rect, state: &ViewState, info: &RunInfo) {
    let block = Block::bordered().title(format!(" coppelia-bridge · {} ", info.instance));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Exactly as many one-line rows as there is content: extra constraints would steal
    // a row from the run line when the area is short.
    let lines = if info.duration_s.is_some() { 3 } else { 2 };
    let rows = Layout::vertical(vec![Constraint::Length(1); lines]).split(inner);
    frame.render_widget(Paragraph::new(sim_line(state)), rows[0]);
    frame.render_widget(Paragraph::new(run_line(state, info)), rows[1]);
    if let (Some(duration), Some(row)) = (info.duration_s, rows.get(2)) {
        frame.render_widget(progress(state.shown.elapsed_s, duration), *row);
    }
}

fn sim_line(state: &ViewState) -> Line<'static> {
    let Some(sim) = &state.shown.sim else {
        return Line::from("CoppeliaSim - (remote API not used)");
    };
    let rtf = &sim.rtf;
    Line::from(vec![
        "CoppeliaSim ".into(),
        Span::styled(sim.state.clone(), HEADER_STYLE),
        format!(" {}", sim.version.as_deref().unwrap_or("")).into(),
        format!("  sim t {} s", opt(sim.sim_time_s, 3)).into(),
        format!(
            "  RTF 1 s {} · 10 s {} · total {}",
            opt(rtf.last_1s, 3),
            opt(rtf.last_10s, 3),
            opt(rtf.total, 3)
        )
        .into(),
        format!(
            "  remote RTT p50 {} µs",
            opt_us(sim.remote_rtt.as_ref().map(|l| l.p50_us))
        )
        .into(),
    ])
}

fn run_line(state: &ViewState, info: &RunInfo) -> Line<'static> {
    let s = &state.shown;
    let remaining = info.duration_s.map_or_else(
        || "- (until q)".to_owned(),
        |d| format::duration_s((d - s.elapsed_s).max(0.0)),
    );
    let mut spans: Vec<Span> = Vec::new();
    if state.frozen {
        // First on the line, so a narrow terminal cannot cut it off.
        let style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
        spans.push(Span::styled("FROZEN (p)  ", style));
    }
    spans.extend([
        format!("elapsed {}", format::duration_s(s.elapsed_s)).into(),
        format!("  remaining {remaining}").into(),
        format!("  dummies {}", s.dummies.len()).into(),
    ]);
    let off = s.dummies.iter().filter(|d| d.off_target).count();
    if off > 0 {
        spans.push(Span::styled(
            format!(" ({off} off target)"),
            OFF_TARGET_STYLE,
        ));
    }
    let unsure = s
        .dummies
        .iter()
        .filter(|d| d.clock.is_some_and(|c| c.latency_uncertain))
        .count();
    if unsure > 0 {
        spans.push(Span::styled(
            format!(" ({unsure} latency unsure: clock offset)"),
            OFF_TARGET_STYLE,
        ));
    }
    if let Some(st) = s.sim.as_ref().and_then(|sim| sim.stepping.as_ref()) {
        spans.push(format!("  {}", format::stepping(st)).into());
    }
    spans.push(format!("  listen {}", info.listen).into());
    if let Some(b) = &s.backlog {
        spans.push(format!("  backlog p99 {} µs", format::opt(Some(b.p99_us), 0)).into());
    }
    Line::from(spans)
}

fn progress(elapsed_s: f64, duration_s: f64) -> Gauge<'static> {
    // Gauge::ratio panics outside 0..=1, and NaN passes through clamp.
    let ratio = (elapsed_s / duration_s).clamp(0.0, 1.0);
    let ratio = if ratio.is_finite() { ratio } else { 0.0 };
    Gauge::default()
        .ratio(ratio)
        .label(format!("{:.0} %", ratio * 100.0))
        .gauge_style(Style::new().fg(Color::Green))
}

/// One row per dummy in the chosen order, with the columns of [`LIVE_TABLE`] (the shared
/// definitions): off-target rows say `off` and are coloured, `-` for unavailable values.
/// The title says which rows are shown when they do not all fit.
pub fn render_table(frame: &mut Frame, area: Rect, state: &ViewState) {
    let cols = columns(LIVE_TABLE);
    let sorted = state.sorted();
    let cells: Vec<Vec<String>> = sorted
        .iter()
        .map(|d| cols.iter().map(|c| c.cell(d)).collect())
        .collect();
    let headers: Vec<String> = cols.iter().map(|c| c.short_title()).collect();
    let widths: Vec<Constraint> = (0..cols.len())
        .map(|i| {
            let widest = cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0);
            Constraint::Length(widest.max(headers[i].chars().count()) as u16)
        })
        .collect();
    let align = |i: usize, text: String| {
        let line = Line::from(text);
        match cols[i].align() {
            Align::Left => line,
            Align::Right => line.right_aligned(),
        }
    };
    let header = Row::new(
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| Cell::from(align(i, h.clone()))),
    )
    .style(HEADER_STYLE);
    let rows = sorted.iter().zip(cells).map(|(d, row)| {
        let style = if d.off_target {
            OFF_TARGET_STYLE
        } else {
            Style::new()
        };
        Row::new(
            row.into_iter()
                .enumerate()
                .map(|(i, c)| Cell::from(align(i, c))),
        )
        .style(style)
    });
    let visible = usize::from(area.height.saturating_sub(TABLE_CHROME));
    let selected = state.selected_index();
    let offset = selected.map_or(0, |s| (s + 1).saturating_sub(visible.max(1)));
    let n = sorted.len();
    let shown = if n > visible && visible > 0 {
        format!(
            " · rows {}–{} of {n}",
            offset + 1,
            (offset + visible).min(n)
        )
    } else {
        String::new()
    };
    let title = format!(" dummies · sort: {} (s){shown} ", sort_label(state.sort));
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(2)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›");
    let mut table_state = TableState::default()
        .with_selected(selected)
        .with_offset(offset);
    frame.render_stateful_widget(table, area, &mut table_state);
}

/// Upper end of the RTF sparklines' fixed scale: 0 at the bottom, 2 at the top, so
/// heights compare across dummies and over time (a value above 2 fills the column).
pub const RTF_SCALE_MAX: f64 = 2.0;

/// Sparklines of the simulation RTF and the selected dummy's RTF and latency. The RTF ones
/// share one fixed, labelled scale (0–2, the target marked with `┈` and its value).
pub fn render_sparklines(frame: &mut Frame, area: Rect, state: &ViewState) {
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(area);
    let sel = state.selected_dummy();
    let hist = sel.and_then(|d| state.history.dummies.get(&d.id));
    let name = sel.map_or("-", |d| d.name.as_str());
    let target = state.target_rtf;
    let sim_rtf = state.shown.sim.as_ref().and_then(|s| s.rtf.last_1s);
    rtf_spark(
        frame,
        rows[0],
        &format!("sim RTF 1 s {}", opt(sim_rtf, 3)),
        Some(&state.history.sim_rtf_1s),
        target,
    );
    let rtf = sel.and_then(|d| d.rtf.last_1s);
    rtf_spark(
        frame,
        rows[1],
        &format!("{name} RTF 1 s {}", opt(rtf, 3)),
        hist.map(|h| &h.rtf_1s),
        target,
    );
    let p50 = sel.and_then(|d| d.latency.as_ref().map(|l| l.p50_us));
    let ring = hist.map(|h| &h.latency_p50_us);
    let peak = ring.and_then(|r| r.values().flatten().reduce(f64::max));
    let title = format!(
        "{name} latency p50 {} µs · scale 0–{} µs",
        opt_us(p50),
        opt_us(peak)
    );
    spark(frame, rows[2], &title, ring, 1.0, None);
}

/// An RTF sparkline on the fixed 0–2 scale, with the scale and target in the title and the
/// target row marked.
fn rtf_spark(frame: &mut Frame, area: Rect, title: &str, ring: Option<&Ring>, target: f64) {
    let title = format!("{title} · scale 0–{RTF_SCALE_MAX} ┈ target {target}");
    // ×1000 keeps three digits in the integers a sparkline draws.
    let max = (RTF_SCALE_MAX * 1000.0) as u64;
    spark(frame, area, &title, ring, 1000.0, Some(max));
    mark_target(frame, area, target);
}

/// `scale` turns values into the integers a sparkline draws; `max` fixes the top of the
/// scale (values above it are drawn full height), `None` scales to the largest value.
fn spark(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    ring: Option<&Ring>,
    scale: f64,
    max: Option<u64>,
) {
    let width = area.width.saturating_sub(2) as usize;
    let data: Vec<Option<u64>> = ring
        .map(|r| {
            r.values()
                .map(|v| {
                    v.map(|v| {
                        let scaled = (v.max(0.0) * scale) as u64;
                        max.map_or(scaled, |m| scaled.min(m))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let start = data.len().saturating_sub(width);
    let mut widget = Sparkline::default()
        .block(Block::bordered().title(format!(" {title} ")))
        .data(&data[start..])
        .style(Style::new().fg(Color::Cyan));
    if let Some(m) = max {
        widget = widget.max(m);
    }
    frame.render_widget(widget, area);
}

/// Draws `┈` across the row whose band of the 0–2 scale holds `target`, wherever the bars
/// leave it empty.
fn mark_target(frame: &mut Frame, area: Rect, target: f64) {
    let inner = Block::bordered().inner(area);
    if inner.height == 0 || inner.width == 0 || !target.is_finite() {
        return;
    }
    let h = f64::from(inner.height);
    // Row r from the bottom covers [r, r + 1) · RTF_SCALE_MAX / h.
    let row = ((target / RTF_SCALE_MAX).clamp(0.0, 1.0) * h).floor() as u16;
    let y = inner.bottom() - 1 - row.min(inner.height - 1);
    let buf = frame.buffer_mut();
    for x in inner.left()..inner.right() {
        if let Some(cell) = buf.cell_mut((x, y)) {
            if cell.symbol() == " " {
                cell.set_symbol("┈").set_fg(Color::DarkGray);
            }
        }
    }
}

/// The selected dummy: identity, latency percentiles (bars), jitter, loss, rates.
pub fn render_detail(frame: &mut Frame, area: Rect, state: &ViewState) {
    let Some(d) = state.selected_dummy() else {
        frame.render_widget(
            Paragraph::new("no dummy yet").block(Block::bordered().title(" detail ")),
            area,
        );
        return;
    };
    let block = Block::bordered().title(format!(" {} #{} ", d.name, d.id));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = detail_lines(d);
    let [text, bars] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
    if let Some(lat) = &d.latency {
        frame.render_widget(latency_bars(lat), bars);
    } else {
        frame.render_widget(
            Paragraph::new("latency unavailable (legacy sender: no wall clock)").dim(),
            bars,
        );
    }
}

fn detail_lines(d: &DummySnapshot) -> Vec<Line<'static>> {
    let cell = |id: ColumnId| column(id).cell(d);
    let unit = |id: ColumnId| column(id).cell_with_unit(d, " ");
    let loss = match &d.loss {
        None => "loss -".to_owned(),
        Some(l) => format!(
            "lost {}/{} ({}) dup {} reord {} missed {}",
            l.lost,
            l.expected,
            unit(ColumnId::LossPct),
            l.duplicates,
            l.reordered,
            l.missed_steps
        ),
    };
    let lat = d.latency.as_ref();
    let us = |v: Option<f64>| {
        let v = opt_us(v);
        if v == format::UNAVAILABLE {
            v
        } else {
            format!("{v} µs")
        }
    };
    let mut lines = vec![
        Line::from(format!(
            "{} from {} · session {} · {}",
            d.transport.as_str(),
            d.source,
            d.session,
            state_name(d)
        )),
        Line::from(format!(
            "latency n {} min {} mean {} · jitter {}",
            format::opt_count(lat.map(|l| l.count)),
            us(lat.map(|l| l.min_us)),
            us(lat.map(|l| l.mean_us)),
            unit(ColumnId::Jitter)
        )),
        Line::from(format!("{loss} · clock warn {}", d.clock_warnings)),
        Line::from(format!(
            "rate {} (exp. {}) · worst RTF {} at {}",
            unit(ColumnId::Rate),
            unit(ColumnId::ExpectedWall),
            cell(ColumnId::RtfWorst1s),
            unit(ColumnId::RtfWorstAt)
        )),
        Line::from(format!(
            "inter-arrival {} (sd {}, max {}) · script RTT p50 {}",
            unit(ColumnId::InterarrivalMean),
            cell(ColumnId::InterarrivalStdDev),
            cell(ColumnId::InterarrivalMax),
            us(d.rtt.as_ref().map(|r| r.p50_us))
        )),
    ];
    // Echo mode only: the clock offset estimate and what it means for the latency.
    if let Some(c) = &d.clock {
        lines.push(Line::from(format!(
            "clock offset {} ± {} ({} exchanges) · latency vs clock: {}",
            unit(ColumnId::ClockOffset),
            unit(ColumnId::ClockBound),
            c.exchanges,
            crate::output::columns::latency_clock_mark(d)
        )));
    }
    lines
}

fn latency_bars(l: &LatencyStats) -> BarChart<'static> {
    let bars: Vec<Bar> = [
        ("p50", l.p50_us),
        ("p90", l.p90_us),
        ("p99", l.p99_us),
        ("p99.9", l.p999_us),
        ("max", l.max_us),
    ]
    .into_iter()
    .map(|(label, us)| {
        Bar::default()
            .label(label.into())
            .value(us.max(0.0) as u64)
            .text_value(format!("{us:.0}"))
    })
    .collect();
    BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .bar_width(7)
        .bar_gap(2)
        .bar_style(Style::new().fg(Color::Yellow))
}

/// Key help, one line.
pub fn render_help(frame: &mut Frame, area: Rect, state: &ViewState) {
    let freeze = if state.frozen { "p resume" } else { "p freeze" };
    let text = format!(" q quit · {freeze} · r reset statistics · s sort · ↑↓ select ");
    frame.render_widget(Paragraph::new(text).dim(), area);
}
