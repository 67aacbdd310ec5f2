//! `rtf.csv`: the time series, one row per snapshot interval and scope, in long format
//! (`scope` = `sim` for the simulation-wide figures from the remote API, `dummy` for one
//! dummy). Long format keeps the columns fixed while dummies come and go.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::metrics::{DummySnapshot, RunSnapshot, SimSnapshot};

use super::RecordSink;

/// Which figures a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Sim,
    Dummy,
}

/// One row of `rtf.csv`; `docs/OUTPUT.md` defines each column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtfRow {
    pub elapsed_s: f64,
    pub taken_unix_s: f64,
    pub scope: Scope,
    pub dummy_id: Option<u32>,
    pub dummy_name: Option<String>,
    pub session: Option<u32>,
    /// Dummy state, or CoppeliaSim's state for the `sim` row.
    pub state: String,
    pub messages: Option<u64>,
    pub sim_time_s: Option<f64>,
    pub rtf_1s: Option<f64>,
    pub rtf_10s: Option<f64>,
    pub rtf_total: Option<f64>,
    pub rate_hz_1s: Option<f64>,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub latency_max_us: Option<f64>,
    pub jitter_us: Option<f64>,
    pub lost: Option<u64>,
    pub loss_pct: Option<f64>,
}

/// The rows for one snapshot: the `sim` row first (if the remote API is in use), then
/// one per dummy in snapshot order.
pub fn rows_from_snapshot(s: &RunSnapshot) -> Vec<RtfRow> {
    let sim = s.sim.as_ref().map(|sim| sim_row(s, sim));
    sim.into_iter()
        .chain(s.dummies.iter().map(|d| dummy_row(s, d)))
        .collect()
}

fn sim_row(s: &RunSnapshot, sim: &SimSnapshot) -> RtfRow {
    RtfRow {
        elapsed_s: s.elapsed_s,
        taken_unix_s: s.taken_unix_s,
        scope: Scope::Sim,
        dummy_id: None,
        dummy_name: None,
        session: None,
        state: sim.state.clone(),
        messages: None,
        sim_time_s: sim.sim_time_s,
        rtf_1s: sim.rtf.last_1s,
        rtf_10s: sim.rtf.last_10s,
        rtf_total: sim.rtf.total,
        rate_hz_1s: None,
        latency_p50_us: None,
        latency_p99_us: None,
        latency_max_us: None,
        jitter_us: None,
        lost: None,
        loss_pct: None,
    }
}

fn dummy_row(s: &RunSnapshot, d: &DummySnapshot) -> RtfRow {
    let lat = d.latency.as_ref();
    RtfRow {
        elapsed_s: s.elapsed_s,
        taken_unix_s: s.taken_unix_s,
        scope: Scope::Dummy,
        dummy_id: Some(d.id),
        dummy_name: Some(d.name.clone()),
        session: Some(d.session),
        state: state_name(d),
        messages: Some(d.messages),
        sim_time_s: d.last_sim_time_s,
        rtf_1s: d.rtf.last_1s,
        rtf_10s: d.rtf.last_10s,
        rtf_total: d.rtf.total,
        rate_hz_1s: d.rate.wall_hz_1s,
        latency_p50_us: lat.map(|l| l.p50_us),
        latency_p99_us: lat.map(|l| l.p99_us),
        latency_max_us: lat.map(|l| l.max_us),
        jitter_us: d.jitter_rfc3550_us,
        lost: d.loss.as_ref().map(|l| l.lost),
        loss_pct: d.loss.as_ref().map(|l| l.loss_pct),
    }
}

/// The snake_case name of a dummy state, as serde writes it.
pub fn state_name(d: &DummySnapshot) -> String {
    serde_json::to_value(d.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The `rtf.csv` format on any writer: a whole snapshot is one record.
#[derive(Debug)]
pub struct RtfCsv<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> RtfCsv<W> {
    pub fn new(writer: W) -> Self {
        Self {
            inner: csv::Writer::from_writer(writer),
        }
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> RecordSink<RunSnapshot> for RtfCsv<W> {
    fn write_record(&mut self, s: &RunSnapshot) -> std::io::Result<()> {
        for row in rows_from_snapshot(s) {
            self.inner.serialize(&row).map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads `rtf.csv` back (used by the report).
pub fn read_rtf_rows(reader: impl std::io::Read) -> Result<Vec<RtfRow>, csv::Error> {
    csv::Reader::from_reader(reader).deserialize().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::{sample_run_snapshot, sample_snapshot_series};

    #[test]
    fn one_sim_row_then_one_row_per_dummy() {
        let rows = rows_from_snapshot(&sample_run_snapshot());
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].scope, Scope::Sim);
        assert_eq!(rows[0].state, "running");
        assert_eq!(rows[2].dummy_id, Some(1));
        assert_eq!(rows[2].lost, Some(4));
        // Legacy dummy: latency and loss unavailable, not zero.
        assert_eq!(rows[3].latency_p50_us, None);
        assert_eq!(rows[3].lost, None);
        assert_eq!(rows[3].state, "idle");
    }

    #[test]
    fn series_round_trips_through_csv() {
        let series = sample_snapshot_series(3);
        let mut sink = RtfCsv::new(Vec::new());
        for s in &series {
            sink.write_record(s).unwrap();
        }
        let bytes = sink.into_inner().unwrap();
        let back = read_rtf_rows(&bytes[..]).unwrap();
        let expected: Vec<RtfRow> = series.iter().flat_map(rows_from_snapshot).collect();
        assert_eq!(back, expected);
    }
}
