//! A scaling sweep as data: the combinations to run, and one table row per finished (or
//! failed) run. Pure: no sockets, clocks or files; `commands::sweep` runs the combinations
//! and `output::sweep` writes the table.
//!
//! Every column is defined in `docs/OUTPUT.md` ("Sweep"); the figures are the run's own
//! (`summary.json` → `final`), so a row says nothing a run directory does not.

use serde::{Deserialize, Serialize};

use crate::metrics::RunSnapshot;
use crate::scene::Transport;

/// Version of the `sweep.json` document; bumped on incompatible changes.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// What to sweep: every combination of these values is one run.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub dummies: Vec<u32>,
    /// Simulation time steps, s.
    pub dt_s: Vec<f64>,
    pub transports: Vec<Transport>,
}

/// One run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Combination {
    /// 1-based position in the sweep (run directories sort in this order).
    pub index: usize,
    pub dummies: u32,
    pub dt_s: f64,
    #[serde(with = "transport_name")]
    pub transport: Transport,
}

impl Combination {
    /// Name of the run's directory under the sweep directory, e.g. `003-udp-dt0.01-d100`.
    pub fn dir_name(&self) -> String {
        format!(
            "{:03}-{}-dt{}-d{}",
            self.index,
            transport_str(self.transport),
            self.dt_s,
            self.dummies
        )
    }

    /// Scripts' sends per wall second at real time: dummies / dt.
    pub fn offered_hz(&self) -> f64 {
        f64::from(self.dummies) / self.dt_s
    }
}

/// The snake_case transport name used in every view (`udp`, `tcp`).
pub fn transport_str(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    }
}

mod transport_name {
    use super::{transport_str, Transport};

    pub fn serialize<S: serde::Serializer>(t: &Transport, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(transport_str(*t))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Transport, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        match name.as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            other => Err(serde::de::Error::custom(format!(
                "unknown transport {other:?}"
            ))),
        }
    }
}

/// Why a sweep specification is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepSpecError {
    #[error("--{flag} lists no value: give at least one, e.g. --{flag} {example}")]
    Empty {
        flag: &'static str,
        example: &'static str,
    },
    #[error("--dummies {0} is outside 1..={max}: every run needs at least one dummy", max = crate::scene::generate::MAX_DUMMIES)]
    Dummies(u32),
    #[error("--dt {0} s is outside {lo}..={hi} s: give simulation steps in seconds, e.g. 0.05", lo = crate::scene::generate::DT_RANGE_S.0, hi = crate::scene::generate::DT_RANGE_S.1)]
    Dt(f64),
}

/// Every combination, transport outermost and dummies innermost, so that rows for one
/// (transport, dt) are adjacent and ordered by dummies (the usual x axis). Duplicate values
/// are run once.
pub fn expand(spec: &SweepSpec) -> Result<Vec<Combination>, SweepSpecError> {
    let dummies = dedup(&spec.dummies, |a, b| a == b);
    let dts = dedup(&spec.dt_s, |a, b| a == b);
    let transports = dedup(&spec.transports, |a, b| a == b);
    check(&dummies, &dts, &transports)?;
    let mut out = Vec::with_capacity(dummies.len() * dts.len() * transports.len());
    for &transport in &transports {
        for &dt_s in &dts {
            for &n in &dummies {
                out.push(Combination {
                    index: out.len() + 1,
                    dummies: n,
                    dt_s,
                    transport,
                });
            }
        }
    }
    Ok(out)
}

fn check(dummies: &[u32], dts: &[f64], transports: &[Transport]) -> Result<(), SweepSpecError> {
    let empty = |flag, example| SweepSpecError::Empty { flag, example };
    if dummies.is_empty() {
        return Err(empty("dummies", "1,10,100"));
    }
    if dts.is_empty() {
        return Err(empty("dt", "0.05"));
    }
    if transports.is_empty() {
        return Err(empty("transport", "udp"));
    }
    let max = crate::scene::generate::MAX_DUMMIES;
    if let Some(&n) = dummies.iter().find(|&&n| n == 0 || n > max) {
        return Err(SweepSpecError::Dummies(n));
    }
    let (lo, hi) = crate::scene::generate::DT_RANGE_S;
    if let Some(&dt) = dts.iter().find(|&&dt| !(lo..=hi).contains(&dt)) {
        return Err(SweepSpecError::Dt(dt));
    }
    Ok(())
}

fn dedup<T: Copy>(values: &[T], eq: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for v in values {
        if !out.iter().any(|o| eq(o, v)) {
            out.push(*v);
        }
    }
    out
}

/// Whether a combination produced a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Ok,
    Failed,
}

/// One line of `sweep.csv` / one element of `sweep.json` `rows`. Figures are `None` when
/// unavailable (a failed run, no remote API, no sequence numbers), never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    #[serde(flatten)]
    pub combination: Combination,
    pub status: RowStatus,
    /// What went wrong, for a failed run.
    pub error: Option<String>,
    /// The run's directory, relative to the sweep directory.
    pub run_dir: String,
    /// Dummies that announced themselves.
    pub dummies_seen: Option<usize>,
    /// Wall time measured, s.
    pub wall_s: Option<f64>,
    /// Messages counted over all dummies.
    pub messages: Option<u64>,
    /// Simulation-wide RTF over the run (remote API poll), else the lowest dummy's.
    pub rtf_total: Option<f64>,
    /// Lowest RTF of any complete 1 s window (simulation-wide, else the lowest dummy's).
    pub rtf_worst_1s: Option<f64>,
    /// Simulation passes per wall second: RTF total / dt.
    pub passes_per_s: Option<f64>,
    /// One-way latency over every message of the run, µs.
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    /// 100 · lost / expected over all dummies.
    pub loss_pct: Option<f64>,
    /// CPU seconds (user + system) the bridge used during the run.
    pub bridge_cpu_s: Option<f64>,
    /// bridge_cpu_s / messages, µs.
    pub cpu_us_per_message: Option<f64>,
}

/// What a finished run measured, as the sweep needs it.
#[derive(Debug, Clone, Copy)]
pub struct RunFigures<'a> {
    pub snapshot: &'a RunSnapshot,
    /// CPU seconds of the bridge alone during the run, if measured.
    pub bridge_cpu_s: Option<f64>,
}

/// The row of a run that finished.
pub fn row_from_run(c: Combination, run: RunFigures<'_>) -> SweepRow {
    let s = run.snapshot;
    let messages: u64 = s.dummies.iter().map(|d| d.messages).sum();
    let lowest = |f: fn(&crate::metrics::RtfStats) -> Option<f64>| {
        s.dummies
            .iter()
            .filter_map(|d| f(&d.rtf))
            .min_by(f64::total_cmp)
    };
    let sim_rtf = s.sim.as_ref().map(|sim| &sim.rtf);
    let rtf_total = sim_rtf
        .and_then(|r| r.total)
        .or_else(|| lowest(|r| r.total));
    let rtf_worst_1s = sim_rtf
        .and_then(|r| r.worst_1s)
        .or_else(|| lowest(|r| r.worst_1s));
    let (lost, expected) = s
        .dummies
        .iter()
        .filter_map(|d| d.loss.as_ref())
        .fold((0u64, 0u64), |(l, x), loss| {
            (l + loss.lost, x + loss.expected)
        });
    SweepRow {
        combination: c,
        status: RowStatus::Ok,
        error: None,
        run_dir: c.dir_name(),
        dummies_seen: Some(s.dummies.len()),
        wall_s: Some(s.elapsed_s),
        messages: Some(messages),
        rtf_total,
        rtf_worst_1s,
        passes_per_s: rtf_total.map(|r| r / c.dt_s),
        latency_p50_us: s.latency.as_ref().map(|l| l.p50_us),
        latency_p99_us: s.latency.as_ref().map(|l| l.p99_us),
        loss_pct: (expected > 0).then(|| 100.0 * lost as f64 / expected as f64),
        bridge_cpu_s: run.bridge_cpu_s,
        cpu_us_per_message: run
            .bridge_cpu_s
            .filter(|_| messages > 0)
            .map(|cpu| cpu * 1e6 / messages as f64),
    }
}

/// The row of a run that failed: the combination and its error, no figures.
pub fn failed_row(c: Combination, error: &str) -> SweepRow {
    SweepRow {
        combination: c,
        status: RowStatus::Failed,
        error: Some(error.to_owned()),
        run_dir: c.dir_name(),
        dummies_seen: None,
        wall_s: None,
        messages: None,
        rtf_total: None,
        rtf_worst_1s: None,
        passes_per_s: None,
        latency_p50_us: None,
        latency_p99_us: None,
        loss_pct: None,
        bridge_cpu_s: None,
        cpu_us_per_message: None,
    }
}

/// The parameter the plots put on the x axis: dummies if more than one value was swept,
/// else dt, else (a single combination) dummies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Dummies,
    Dt,
}

impl XAxis {
    pub fn of(rows: &[SweepRow]) -> Self {
        let distinct = |f: fn(&Combination) -> f64| {
            let mut v: Vec<f64> = rows.iter().map(|r| f(&r.combination)).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v.len()
        };
        if distinct(|c| f64::from(c.dummies)) <= 1 && distinct(|c| c.dt_s) > 1 {
            XAxis::Dt
        } else {
            XAxis::Dummies
        }
    }

    pub fn value(self, c: &Combination) -> f64 {
        match self {
            XAxis::Dummies => f64::from(c.dummies),
            XAxis::Dt => c.dt_s,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            XAxis::Dummies => "dummies",
            XAxis::Dt => "dt (s)",
        }
    }

    /// The name of one line in a plot: what stays fixed along it.
    pub fn series_name(self, c: &Combination) -> String {
        match self {
            XAxis::Dummies => format!("{} dt {} s", transport_str(c.transport), c.dt_s),
            XAxis::Dt => format!("{} {} dummies", transport_str(c.transport), c.dummies),
        }
    }
}

/// Points of one figure per line of a plot: rows grouped by what stays fixed, in x order;
/// failed rows and unavailable figures are left out.
pub fn series(
    rows: &[SweepRow],
    x: XAxis,
    figure: impl Fn(&SweepRow) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in rows.iter().filter(|r| r.status == RowStatus::Ok) {
        let Some(y) = figure(row) else { continue };
        let name = x.series_name(&row.combination);
        let point = (x.value(&row.combination), y);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push(point),
            None => out.push((name, vec![point])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

#[cfg(test)]
mod tests;
