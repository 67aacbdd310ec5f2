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
use crate::output::format::{self, opt, opt_us};
use crate::output::rtf_csv::state_name;

use super::state::{Ring, ViewState};
use super::RunInfo;

const HEADER_STYLE: Style = Style::new().add_modifier(Modifier::BOLD);
const OFF_TARGET_STYLE: Style = Style::new()
    .fg(Color::LightRed)
    .add_modifier(Modifier::BOLD);

/// The whole screen: header, table, sparklines and detail pane, key help.
pub fn render(frame: &mut Frame, state: &ViewState, info: &RunInfo) {
    let header_h = if info.duration_s.is_some() { 5 } else { 4 };
    let [header, table, bottom, help] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Min(5),
        Constraint::Length(12),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, state, info);
    render_table(frame, table, state);
    let [sparks, detail] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(bottom);
    render_sparklines(frame, sparks, state);
    render_detail(frame, detail, state);
    render_help(frame, help, state);
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
    let mut spans: Vec<Span> = vec![
        format!("elapsed {}", format::duration_s(s.elapsed_s)).into(),
        format!("  remaining {remaining}").into(),
        format!("  dummies {}", s.dummies.len()).into(),
    ];
    let off = s.dummies.iter().filter(|d| d.off_target).count();
    if off > 0 {
        spans.push(Span::styled(
            format!(" ({off} off target)"),
            OFF_TARGET_STYLE,
        ));
    }
    if let Some(st) = s.sim.as_ref().and_then(|sim| sim.stepping.as_ref()) {
        spans.push(format!("  {}", format::stepping(st)).into());
    }
    if state.frozen {
        let style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
        spans.push(Span::styled("  FROZEN (p)", style));
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

const COLUMNS: [(&str, u16); 13] = [
    ("", 1),
    ("dummy", 14),
    ("msgs", 8),
    ("rate Hz", 8),
    ("RTF 1s", 7),
    ("RTF 10s", 7),
    ("RTF tot", 7),
    ("p50 µs", 8),
    ("p99 µs", 8),
    ("max µs", 8),
    ("jitter µs", 9),
    ("loss %", 7),
    ("state", 10),
];

/// One row per dummy in the chosen order; off-target rows marked `!` and coloured,
/// `-` for unavailable values.
pub fn render_table(frame: &mut Frame, area: Rect, state: &ViewState) {
    let header = Row::new(COLUMNS.iter().map(|(h, _)| Cell::from(*h))).style(HEADER_STYLE);
    let rows = state.sorted().into_iter().map(|d| {
        let style = if d.off_target {
            OFF_TARGET_STYLE
        } else {
            Style::new()
        };
        Row::new(table_cells(d)).style(style)
    });
    let widths = COLUMNS.iter().map(|(_, w)| Constraint::Length(*w));
    let title = format!(" dummies · sort: {} (s) ", state.sort.label());
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("›");
    let mut table_state = TableState::default().with_selected(state.selected_index());
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn table_cells(d: &DummySnapshot) -> Vec<String> {
    let lat = |f: fn(&LatencyStats) -> f64| opt_us(d.latency.as_ref().map(f));
    vec![
        if d.off_target { "!" } else { " " }.to_owned(),
        d.name.clone(),
        d.messages.to_string(),
        opt(d.rate.wall_hz_1s, 1),
        opt(d.rtf.last_1s, 3),
        opt(d.rtf.last_10s, 3),
        opt(d.rtf.total, 3),
        lat(|l| l.p50_us),
        lat(|l| l.p99_us),
        lat(|l| l.max_us),
        opt(d.jitter_rfc3550_us, 0),
        opt(d.loss.as_ref().map(|l| l.loss_pct), 2),
        state_name(d),
    ]
}

/// Sparklines of the simulation RTF and the selected dummy's RTF and latency.
pub fn render_sparklines(frame: &mut Frame, area: Rect, state: &ViewState) {
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(area);
    let sel = state.selected_dummy();
    let hist = sel.and_then(|d| state.history.dummies.get(&d.id));
    let name = sel.map_or("-", |d| d.name.as_str());
    let sim_rtf = state.shown.sim.as_ref().and_then(|s| s.rtf.last_1s);
    spark(
        frame,
        rows[0],
        &format!("sim RTF 1 s {}", opt(sim_rtf, 3)),
        Some(&state.history.sim_rtf_1s),
        1000.0,
    );
    let rtf = sel.and_then(|d| d.rtf.last_1s);
    spark(
        frame,
        rows[1],
        &format!("{name} RTF 1 s {}", opt(rtf, 3)),
        hist.map(|h| &h.rtf_1s),
        1000.0,
    );
    let p50 = sel.and_then(|d| d.latency.as_ref().map(|l| l.p50_us));
    spark(
        frame,
        rows[2],
        &format!("{name} latency p50 {} µs", opt_us(p50)),
        hist.map(|h| &h.latency_p50_us),
        1.0,
    );
}

/// `scale` turns values into the integers a sparkline draws (RTF ×1000 keeps 3 digits).
fn spark(frame: &mut Frame, area: Rect, title: &str, ring: Option<&Ring>, scale: f64) {
    let width = area.width.saturating_sub(2) as usize;
    let data: Vec<Option<u64>> = ring
        .map(|r| {
            r.values()
                .map(|v| v.map(|v| (v.max(0.0) * scale) as u64))
                .collect()
        })
        .unwrap_or_default();
    let start = data.len().saturating_sub(width);
    let widget = Sparkline::default()
        .block(Block::bordered().title(format!(" {title} ")))
        .data(&data[start..])
        .style(Style::new().fg(Color::Cyan));
    frame.render_widget(widget, area);
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
    let [text, bars] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(detail_lines(d)), text);
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
    let transport = serde_json::to_value(d.transport)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let loss = d.loss.as_ref().map_or_else(
        || "loss -".to_owned(),
        |l| {
            format!(
                "lost {}/{} ({:.2} %) dup {} reord {} missed {}",
                l.lost, l.expected, l.loss_pct, l.duplicates, l.reordered, l.missed_steps
            )
        },
    );
    let lat = d.latency.as_ref();
    vec![
        Line::from(format!(
            "{transport} from {} · session {} · {}",
            d.source,
            d.session,
            state_name(d)
        )),
        Line::from(format!(
            "latency n {} min {} mean {} µs · jitter {} µs",
            lat.map_or_else(|| "-".to_owned(), |l| l.count.to_string()),
            opt_us(lat.map(|l| l.min_us)),
            opt_us(lat.map(|l| l.mean_us)),
            opt(d.jitter_rfc3550_us, 0)
        )),
        Line::from(format!("{loss} · clock warn {}", d.clock_warnings)),
        Line::from(format!(
            "rate {} Hz (exp. {}) · sim {} Hz · worst RTF {} @{} s",
            opt(d.rate.wall_hz, 2),
            opt(d.rate.expected_hz, 1),
            opt(d.rate.sim_hz, 1),
            opt(d.rtf.worst_1s, 3),
            opt(d.rtf.worst_1s_at_s, 1)
        )),
        Line::from(format!(
            "script RTT p50 {} µs · p99 {} µs",
            opt_us(d.rtt.as_ref().map(|r| r.p50_us)),
            opt_us(d.rtt.as_ref().map(|r| r.p99_us))
        )),
    ]
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
