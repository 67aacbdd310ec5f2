//! The per-dummy columns, each defined once: header, unit, formatter (decimals), alignment,
//! sort direction and the snake_case key that CSV exports use. Every view picks a list of
//! [`ColumnId`]s and asks the column for its cells:
//!
//! - the table printed at the end of a run (`commands/run/table.rs`, [`FINAL_TABLE`]),
//! - the live view's dummy table and its sort cycle (`output/tui`, [`LIVE_TABLE`]),
//! - the report's sortable dummy tables (`output/report`, [`REPORT_TABLES`]),
//! - Markdown and CSV exports of the final table ([`markdown_table`], [`csv_table`]).
//!
//! So a number looks the same everywhere: one place decides that jitter has 1 decimal and
//! loss 3, and that an unavailable value is `-` (never `0`, never glued to a unit).

use std::cmp::Ordering;

use crate::metrics::{DummySnapshot, LatencyStats, SpreadMs};
use crate::output::format::{self, UNAVAILABLE};

/// Every per-dummy column there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ColumnId {
    /// `off` when the dummy's 1 s RTF is off the target: the mark is text, not only colour.
    Target,
    Name,
    #[default]
    Id,
    Transport,
    Session,
    State,
    Messages,
    Rate1s,
    Rate,
    Expected,
    ExpectedWall,
    Rtf1s,
    Rtf10s,
    RtfTotal,
    RtfWorst1s,
    RtfWorstAt,
    LatencyP50,
    LatencyP90,
    LatencyP99,
    LatencyP999,
    LatencyMax,
    Jitter,
    InterarrivalMean,
    InterarrivalStdDev,
    InterarrivalMax,
    Lost,
    LossPct,
    Duplicates,
    Reordered,
    MissedSteps,
    ClockWarnings,
    ClockOffset,
    ClockBound,
    LatencyClock,
}

/// Text or numbers: numbers align right, text left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Which end of a column is worse, i.e. what a sort puts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// Lowest first (RTF, rate: the slowest dummy on top).
    Low,
    /// Highest first (latency, loss).
    High,
    /// Not a quality: sorted ascending (id, name).
    None,
}

/// One cell's value before formatting.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    /// `None` = unavailable.
    Number(Option<f64>),
    Count(Option<u64>),
}

impl Value {
    /// Sort key: numbers compare as numbers, text as text; unavailable is `None`.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Text(_) => None,
            Value::Number(v) => v.filter(|v| v.is_finite()),
            Value::Count(v) => v.map(|v| v as f64),
        }
    }
}

/// One column: everything every view needs to show it.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub id: ColumnId,
    /// snake_case, with the unit as a suffix (`latency_p99_us`): CSV headers, HTML ids.
    pub key: &'static str,
    /// Header for wide views (report, Markdown), without the unit: `latency p99`.
    pub header: &'static str,
    /// Header for terminal tables, without the unit: `p99`.
    pub short: &'static str,
    /// Unit shown after the header in parentheses or after a space; `""` for none.
    pub unit: &'static str,
    /// Digits after the point for numbers.
    pub decimals: usize,
    pub worse: Worse,
    /// What the column means, one line (tooltips, the report's legend).
    pub help: &'static str,
    value: fn(&DummySnapshot) -> Value,
}

impl Column {
    /// The column's value for one dummy.
    pub fn value(&self, d: &DummySnapshot) -> Value {
        (self.value)(d)
    }

    /// The formatted cell: `-` for unavailable.
    pub fn cell(&self, d: &DummySnapshot) -> String {
        match self.value(d) {
            Value::Text(t) => t,
            Value::Number(v) => format::opt(v, self.decimals),
            Value::Count(v) => format::opt_count(v),
        }
    }

    /// The cell followed by the unit (`19.91 Hz`, with `sep` between), or just `-` when
    /// unavailable: a unit is never glued to a dash.
    pub fn cell_with_unit(&self, d: &DummySnapshot, sep: &str) -> String {
        let cell = self.cell(d);
        if cell == UNAVAILABLE || self.unit.is_empty() {
            cell
        } else {
            format!("{cell}{sep}{}", self.unit)
        }
    }

    /// The unformatted cell for CSV: full precision, empty when unavailable.
    pub fn raw(&self, d: &DummySnapshot) -> String {
        match self.value(d) {
            Value::Text(t) => t,
            Value::Number(v) => v
                .filter(|v| v.is_finite())
                .map_or_else(String::new, |v| v.to_string()),
            Value::Count(v) => v.map_or_else(String::new, |v| v.to_string()),
        }
    }

    pub fn align(&self) -> Align {
        match self.id {
            C::Target | C::Name | C::Transport | C::State | C::LatencyClock => Align::Left,
            _ => Align::Right,
        }
    }

    /// `latency p99 (µs)`.
    pub fn title(&self) -> String {
        with_unit(self.header, self.unit, true)
    }

    /// `p99 µs`.
    pub fn short_title(&self) -> String {
        with_unit(self.short, self.unit, false)
    }

    /// Orders two dummies worst first (see [`Worse`]); unavailable values last whatever the
    /// direction; ties by id.
    pub fn compare(&self, a: &DummySnapshot, b: &DummySnapshot) -> Ordering {
        let (va, vb) = (self.value(a), self.value(b));
        let by_value = match (&va, &vb) {
            (Value::Text(x), Value::Text(y)) => x.cmp(y),
            _ => match (va.number(), vb.number()) {
                (Some(x), Some(y)) => match self.worse {
                    Worse::High => y.total_cmp(&x),
                    Worse::Low | Worse::None => x.total_cmp(&y),
                },
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        by_value.then(a.id.cmp(&b.id))
    }
}

fn with_unit(header: &str, unit: &str, parens: bool) -> String {
    match (unit, parens) {
        ("", _) => header.to_owned(),
        (u, true) => format!("{header} ({u})"),
        (u, false) => format!("{header} {u}"),
    }
}

/// The definition of `id`.
pub fn column(id: ColumnId) -> &'static Column {
    COLUMNS
        .iter()
        .find(|c| c.id == id)
        .expect("every ColumnId has a definition (tested)")
}

/// The columns of `ids`, in order.
pub fn columns(ids: &[ColumnId]) -> Vec<&'static Column> {
    ids.iter().map(|&id| column(id)).collect()
}

/// The table printed when a run ends, and the Markdown / CSV exports of it.
pub const FINAL_TABLE: &[ColumnId] = &[
    ColumnId::Target,
    ColumnId::Name,
    ColumnId::Id,
    ColumnId::Transport,
    ColumnId::Messages,
    ColumnId::Rate,
    ColumnId::Rtf1s,
    ColumnId::Rtf10s,
    ColumnId::RtfTotal,
    ColumnId::RtfWorst1s,
    ColumnId::RtfWorstAt,
    ColumnId::LatencyP50,
    ColumnId::LatencyP99,
    ColumnId::LatencyMax,
    ColumnId::Jitter,
    ColumnId::LossPct,
    ColumnId::Duplicates,
    ColumnId::Reordered,
    ColumnId::State,
];

/// The live view's dummy table.
pub const LIVE_TABLE: &[ColumnId] = &[
    ColumnId::Target,
    ColumnId::Name,
    ColumnId::Messages,
    ColumnId::Rate1s,
    ColumnId::Rtf1s,
    ColumnId::Rtf10s,
    ColumnId::RtfTotal,
    ColumnId::LatencyP50,
    ColumnId::LatencyP99,
    ColumnId::LatencyMax,
    ColumnId::Jitter,
    ColumnId::LossPct,
    ColumnId::State,
];

/// The live view's sort cycle (`s`).
pub const LIVE_SORT_CYCLE: &[ColumnId] = &[
    ColumnId::Id,
    ColumnId::Name,
    ColumnId::Rtf1s,
    ColumnId::Rate1s,
    ColumnId::LatencyP99,
    ColumnId::Jitter,
    ColumnId::LossPct,
    ColumnId::Messages,
];

/// The report's dummy tables: identity and RTF; latency and jitter; arrivals and loss.
/// Each repeats the name, so none needs horizontal scrolling.
pub const REPORT_TABLES: &[(&str, &[ColumnId])] = &[
    (
        "Real-time factor and rate",
        &[
            ColumnId::Target,
            ColumnId::Name,
            ColumnId::Id,
            ColumnId::Transport,
            ColumnId::Session,
            ColumnId::State,
            ColumnId::Messages,
            ColumnId::Rate,
            ColumnId::ExpectedWall,
            ColumnId::Expected,
            ColumnId::Rtf1s,
            ColumnId::Rtf10s,
            ColumnId::RtfTotal,
            ColumnId::RtfWorst1s,
            ColumnId::RtfWorstAt,
        ],
    ),
    (
        "One-way latency and jitter",
        &[
            ColumnId::Target,
            ColumnId::Name,
            ColumnId::LatencyP50,
            ColumnId::LatencyP90,
            ColumnId::LatencyP99,
            ColumnId::LatencyP999,
            ColumnId::LatencyMax,
            ColumnId::Jitter,
            ColumnId::ClockWarnings,
            ColumnId::ClockOffset,
            ColumnId::ClockBound,
            ColumnId::LatencyClock,
        ],
    ),
    (
        "Arrivals and sequence",
        &[
            ColumnId::Target,
            ColumnId::Name,
            ColumnId::InterarrivalMean,
            ColumnId::InterarrivalStdDev,
            ColumnId::InterarrivalMax,
            ColumnId::Lost,
            ColumnId::LossPct,
            ColumnId::Duplicates,
            ColumnId::Reordered,
            ColumnId::MissedSteps,
        ],
    ),
];

fn lat(d: &DummySnapshot, f: fn(&LatencyStats) -> f64) -> Value {
    Value::Number(d.latency.as_ref().map(f))
}

fn arrivals(d: &DummySnapshot, f: fn(&SpreadMs) -> f64) -> Value {
    Value::Number(d.rate.interarrival.as_ref().map(f))
}

fn loss(d: &DummySnapshot, f: fn(&crate::metrics::LossStats) -> u64) -> Value {
    Value::Count(d.loss.as_ref().map(f))
}

/// Builds a [`Column`]; the arguments in the order of the table below.
#[allow(clippy::too_many_arguments)]
const fn col(
    id: ColumnId,
    key: &'static str,
    header: &'static str,
    short: &'static str,
    unit: &'static str,
    decimals: usize,
    worse: Worse,
    help: &'static str,
    value: fn(&DummySnapshot) -> Value,
) -> Column {
    Column {
        id,
        key,
        header,
        short,
        unit,
        decimals,
        worse,
        help,
        value,
    }
}

use ColumnId as C;
use Worse::{High, Low, None as Neutral};

/// The definitions (docs/METRICS.md defines every number). One line of arguments per
/// column reads as a table, so rustfmt leaves it alone.
#[rustfmt::skip]
pub static COLUMNS: &[Column] = &[
    col(C::Target, "off_target", "target", "target", "", 0, High,
        "off = the last 1 s RTF is off the target by more than the tolerance",
        |d| Value::Text(target_mark(d).to_owned())),
    col(C::Name, "dummy", "dummy", "dummy", "", 0, Neutral, "dummy name",
        |d| Value::Text(d.name.clone())),
    col(C::Id, "id", "id", "id", "", 0, Neutral, "dummy id",
        |d| Value::Count(Some(u64::from(d.id)))),
    col(C::Transport, "transport", "transport", "transport", "", 0, Neutral,
        "udp, tcp or legacy_udp",
        |d| Value::Text(d.transport.as_str().to_owned())),
    col(C::Session, "session", "session", "session", "", 0, Neutral,
        "0 first; +1 when the simulation restarted",
        |d| Value::Count(Some(u64::from(d.session)))),
    col(C::State, "state", "state", "state", "", 0, Neutral,
        "registered, active, idle or ended",
        |d| Value::Text(crate::output::rtf_csv::state_name(d))),
    col(C::Messages, "messages", "messages", "msgs", "", 0, High,
        "messages counted in the session",
        |d| Value::Count(Some(d.messages))),
    col(C::Rate1s, "rate_hz_1s", "rate 1 s", "rate", "Hz", 1, Low,
        "messages per wall second over the last 1 s",
        |d| Value::Number(d.rate.wall_hz_1s)),
    col(C::Rate, "rate_hz", "rate", "rate", "Hz", 2, Low,
        "messages per wall second over the session",
        |d| Value::Number(d.rate.wall_hz)),
    col(C::Expected, "expected_hz", "expected per sim s", "exp sim", "Hz", 2, Neutral,
        "1 / dt from HELLO: messages per simulated second (one per pass)",
        |d| Value::Number(d.rate.expected_hz)),
    col(C::ExpectedWall, "expected_wall_hz", "expected", "exp", "Hz", 2, Neutral,
        "target RTF / dt: messages per wall second expected at the target RTF (compare with rate)",
        |d| Value::Number(d.rate.expected_wall_hz)),
    col(C::Rtf1s, "rtf_1s", "RTF 1 s", "RTF 1s", "", 3, Low,
        "real-time factor over the last 1 s",
        |d| Value::Number(d.rtf.last_1s)),
    col(C::Rtf10s, "rtf_10s", "RTF 10 s", "RTF 10s", "", 3, Low,
        "real-time factor over the last 10 s",
        |d| Value::Number(d.rtf.last_10s)),
    col(C::RtfTotal, "rtf_total", "RTF total", "RTF tot", "", 3, Low,
        "real-time factor over the session",
        |d| Value::Number(d.rtf.total)),
    col(C::RtfWorst1s, "rtf_worst_1s", "worst RTF 1 s", "worst", "", 3, Low,
        "lowest RTF of any whole 1 s window aligned on the run start",
        |d| Value::Number(d.rtf.worst_1s)),
    col(C::RtfWorstAt, "rtf_worst_1s_at_s", "worst at", "at", "s", 1, Neutral,
        "end of the worst 1 s window, wall time since the run start",
        |d| Value::Number(d.rtf.worst_1s_at_s)),
    col(C::LatencyP50, "latency_p50_us", "latency p50", "p50", "µs", 0, High,
        "one-way latency, median", |d| lat(d, |l| l.p50_us)),
    col(C::LatencyP90, "latency_p90_us", "p90", "p90", "µs", 0, High,
        "one-way latency, 90th percentile", |d| lat(d, |l| l.p90_us)),
    col(C::LatencyP99, "latency_p99_us", "p99", "p99", "µs", 0, High,
        "one-way latency, 99th percentile", |d| lat(d, |l| l.p99_us)),
    col(C::LatencyP999, "latency_p999_us", "p99.9", "p99.9", "µs", 0, High,
        "one-way latency, 99.9th percentile", |d| lat(d, |l| l.p999_us)),
    col(C::LatencyMax, "latency_max_us", "max", "max", "µs", 0, High,
        "one-way latency, maximum", |d| lat(d, |l| l.max_us)),
    col(C::Jitter, "jitter_us", "jitter", "jitter", "µs", 1, High,
        "RFC 3550 interarrival jitter",
        |d| Value::Number(d.jitter_rfc3550_us)),
    col(C::InterarrivalMean, "interarrival_mean_ms", "inter-arrival mean", "ia mean", "ms", 2,
        Neutral, "mean time between consecutive arrivals", |d| arrivals(d, |s| s.mean_ms)),
    col(C::InterarrivalStdDev, "interarrival_std_dev_ms", "inter-arrival std dev", "ia sd",
        "ms", 2, High, "population standard deviation of the inter-arrival times",
        |d| arrivals(d, |s| s.std_dev_ms)),
    col(C::InterarrivalMax, "interarrival_max_ms", "inter-arrival max", "ia max", "ms", 2,
        High, "longest time between consecutive arrivals", |d| arrivals(d, |s| s.max_ms)),
    col(C::Lost, "lost", "lost", "lost", "", 0, High, "messages never received (seq gaps)",
        |d| loss(d, |l| l.lost)),
    col(C::LossPct, "loss_pct", "loss", "loss", "%", 3, High, "100 · lost / expected",
        |d| Value::Number(d.loss.as_ref().map(|l| l.loss_pct))),
    col(C::Duplicates, "duplicates", "duplicates", "dup", "", 0, High,
        "extra copies of a seq already received", |d| loss(d, |l| l.duplicates)),
    col(C::Reordered, "reordered", "reordered", "reord", "", 0, High,
        "arrivals of a seq lower than one received before", |d| loss(d, |l| l.reordered)),
    col(C::MissedSteps, "missed_steps", "missed steps", "missed", "", 0, High,
        "simulation passes that produced no message at all", |d| loss(d, |l| l.missed_steps)),
    col(C::ClockWarnings, "clock_warnings", "clock warnings", "clock", "", 0, High,
        "latencies rejected as negative or implausible (clocks disagree)",
        |d| Value::Count(Some(d.clock_warnings))),
    col(C::ClockOffset, "clock_offset_ms", "clock offset", "offset", "ms", 3, Neutral,
        "bridge clock − sender clock, from ECHO exchanges (echo{1}); every latency contains it",
        |d| Value::Number(d.clock.map(|c| c.offset_s * 1e3))),
    col(C::ClockBound, "clock_offset_bound_ms", "offset ±", "±", "ms", 3, High,
        "the clock offset is known within ± this (half the tightest exchange interval)",
        |d| Value::Number(d.clock.map(|c| c.bound_s * 1e3))),
    col(C::LatencyClock, "latency_vs_clock", "latency vs clock", "lat/clk", "", 0, Neutral,
        "offset = the clocks provably differ (latency contains the offset); unsure = the clock \
         could make up half the latency p50 or more; same host = one clock",
        |d| Value::Text(latency_clock_mark(d).to_owned())),
];

/// Whether the one-way latency of `d` can be told from its clock offset: `same host` (one
/// clock), `offset` (the clocks provably differ), `unsure` (|offset| + bound ≥ half the
/// latency p50), `ok`, or `-` without an estimate.
pub fn latency_clock_mark(d: &DummySnapshot) -> &'static str {
    match d.clock {
        None => UNAVAILABLE,
        Some(c) if c.same_host => "same host",
        Some(c) if c.offset_significant => "offset",
        Some(c) if c.latency_uncertain => "unsure",
        Some(_) => "ok",
    }
}

/// The text mark of the off-target state: `off`, `ok`, or `-` while the 1 s RTF is
/// unavailable.
pub fn target_mark(d: &DummySnapshot) -> &'static str {
    if d.off_target {
        "off"
    } else if d.rtf.last_1s.is_some() {
        "ok"
    } else {
        UNAVAILABLE
    }
}

/// A plain-text table (the end-of-run table): each column as wide as its widest cell, text
/// left, numbers right, two spaces apart, short headers with units.
pub fn text_table(ids: &[ColumnId], dummies: &[&DummySnapshot]) -> String {
    let cols = columns(ids);
    let mut grid: Vec<Vec<String>> = vec![cols.iter().map(|c| c.short_title()).collect()];
    grid.extend(
        dummies
            .iter()
            .map(|d| cols.iter().map(|c| c.cell(d)).collect()),
    );
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &grid {
        let cells: Vec<String> = row
            .iter()
            .zip(&cols)
            .zip(&widths)
            .map(|((cell, c), &w)| pad(cell, w, c.align()))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A GitHub-flavoured Markdown table (hyperfine's `--export-markdown` convention): long
/// headers with units, alignment row, `-` for unavailable.
pub fn markdown_table(ids: &[ColumnId], dummies: &[&DummySnapshot]) -> String {
    let cols = columns(ids);
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(cols.iter().map(|c| c.title()).collect());
    out.push_str(&line(
        cols.iter()
            .map(|c| match c.align() {
                Align::Left => ":--".to_owned(),
                Align::Right => "--:".to_owned(),
            })
            .collect(),
    ));
    for d in dummies {
        out.push_str(&line(
            cols.iter().map(|c| c.cell(d).replace('|', "\\|")).collect(),
        ));
    }
    out
}

/// CSV of the table: snake_case keys with units as headers, full-precision numbers, empty
/// cells for unavailable values (as in `samples.csv`).
pub fn csv_table(ids: &[ColumnId], dummies: &[&DummySnapshot]) -> String {
    let cols = columns(ids);
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(cols.iter().map(|c| c.key));
    for d in dummies {
        let _ = w.write_record(cols.iter().map(|c| c.raw(d)));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn pad(s: &str, width: usize, align: Align) -> String {
    match align {
        Align::Left => format!("{s:<width$}"),
        Align::Right => format!("{s:>width$}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    const ALL: [ColumnId; 34] = [
        C::Target,
        C::Name,
        C::Id,
        C::Transport,
        C::Session,
        C::State,
        C::Messages,
        C::Rate1s,
        C::Rate,
        C::Expected,
        C::ExpectedWall,
        C::Rtf1s,
        C::Rtf10s,
        C::RtfTotal,
        C::RtfWorst1s,
        C::RtfWorstAt,
        C::LatencyP50,
        C::LatencyP90,
        C::LatencyP99,
        C::LatencyP999,
        C::LatencyMax,
        C::Jitter,
        C::InterarrivalMean,
        C::InterarrivalStdDev,
        C::InterarrivalMax,
        C::Lost,
        C::LossPct,
        C::Duplicates,
        C::Reordered,
        C::MissedSteps,
        C::ClockWarnings,
        C::ClockOffset,
        C::ClockBound,
        C::LatencyClock,
    ];

    #[test]
    fn every_column_is_defined_once_with_a_unique_snake_case_key() {
        assert_eq!(COLUMNS.len(), ALL.len());
        for id in ALL {
            assert_eq!(COLUMNS.iter().filter(|c| c.id == id).count(), 1, "{id:?}");
        }
        let mut keys: Vec<&str> = COLUMNS.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), COLUMNS.len(), "keys are unique");
        for k in keys {
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{k}"
            );
        }
    }

    #[test]
    fn cells_use_the_columns_decimals_and_dashes() {
        let s = sample_run_snapshot();
        let (healthy, off, legacy) = (&s.dummies[0], &s.dummies[1], &s.dummies[2]);
        assert_eq!(column(C::Jitter).cell(healthy), "21.5");
        assert_eq!(column(C::LossPct).cell(healthy), "0.000");
        assert_eq!(column(C::LatencyP50).cell(healthy), "182");
        assert_eq!(column(C::Transport).cell(legacy), "legacy_udp");
        assert_eq!(column(C::LatencyP50).cell(legacy), "-");
        assert_eq!(column(C::LossPct).raw(legacy), "");
        assert_eq!(column(C::Target).cell(off), "off");
        assert_eq!(column(C::Target).cell(healthy), "ok");
        assert_eq!(column(C::Target).cell(legacy), "-");
        assert_eq!(column(C::LatencyP99).title(), "p99 (µs)");
        assert_eq!(column(C::LatencyP99).short_title(), "p99 µs");
        assert_eq!(column(C::Rtf1s).title(), "RTF 1 s");
    }

    #[test]
    fn sorting_puts_the_worst_first_and_unavailable_last() {
        let s = sample_run_snapshot();
        let order = |id: ColumnId| {
            let mut v: Vec<&DummySnapshot> = s.dummies.iter().collect();
            v.sort_by(|a, b| column(id).compare(a, b));
            v.iter().map(|d| d.id).collect::<Vec<_>>()
        };
        assert_eq!(order(C::Rtf1s), [1, 0, 2], "lowest RTF first, legacy last");
        assert_eq!(order(C::LatencyP99), [1, 0, 2], "highest latency first");
        assert_eq!(order(C::Name), [0, 1, 2]);
    }

    #[test]
    fn markdown_and_csv_exports_share_the_definitions() {
        let s = sample_run_snapshot();
        let dummies: Vec<&DummySnapshot> = s.dummies.iter().collect();
        let md = markdown_table(FINAL_TABLE, &dummies);
        let mut lines = md.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("| target | dummy | id | transport |"));
        assert!(lines.next().unwrap().starts_with("| :-- | :-- | --: |"));
        assert_eq!(md.lines().count(), 2 + dummies.len());
        let csv = csv_table(FINAL_TABLE, &dummies);
        let header = csv.lines().next().unwrap();
        assert!(
            header.starts_with("off_target,dummy,id,transport,messages,rate_hz,"),
            "{header}"
        );
        assert!(csv.lines().nth(3).unwrap().contains(",legacy_udp,"));
        let text = text_table(FINAL_TABLE, &dummies);
        assert!(
            text.lines().nth(2).unwrap().starts_with("off     Dummy1"),
            "{text}"
        );
    }
}
