//! The run directory as a [`RunSink`]: samples, events, RTF series, summary, report.

use std::path::{Path, PathBuf};

use super::shell::RunSink;
use crate::event::Notice;
use crate::metrics::aggregator::SampleRecord;
use crate::metrics::{RunSnapshot, SessionRecord};
use crate::output::{diff_events, Event, EventKind, RunMeta, RunWriter, SamplesFormat};
use crate::run::RunOutcome;
use crate::time::UnixNanos;

/// RTF series rows and flushes happen at most this often: a crash loses at most this much.
const PERIOD_NS: i64 = 1_000_000_000;
/// An interim `summary.json` (without an end time) is rewritten this often, atomically, so
/// even a killed run leaves a readable summary and `report DIR` works on it.
const SUMMARY_PERIOD_NS: i64 = 5_000_000_000;

/// Writes one run directory (`--out`).
#[derive(Debug)]
pub struct DirSink {
    writer: Option<RunWriter>,
    dir: PathBuf,
    started_ns: UnixNanos,
    prev: Option<RunSnapshot>,
    last_period_ns: UnixNanos,
    last_summary_ns: UnixNanos,
}

impl DirSink {
    pub fn create(
        dir: &Path,
        meta: RunMeta,
        started_ns: UnixNanos,
        samples: SamplesFormat,
    ) -> Result<Self, crate::output::OutputError> {
        let mut writer = RunWriter::create_with(dir, meta, samples)?;
        writer.event(&Event {
            t_unix_s: started_ns as f64 / 1e9,
            elapsed_s: 0.0,
            kind: EventKind::RunStarted,
            dummy: None,
            message: format!("coppelia-bridge {} started", env!("CARGO_PKG_VERSION")),
        })?;
        Ok(Self {
            writer: Some(writer),
            dir: dir.to_owned(),
            started_ns,
            prev: None,
            last_period_ns: started_ns,
            last_summary_ns: started_ns,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&mut self) -> std::io::Result<&mut RunWriter> {
        self.writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the run directory is already closed"))
    }
}

fn io(e: crate::output::OutputError) -> std::io::Error {
    std::io::Error::other(e)
}

/// Snapshot-diff events the notices do not already cover.
fn only_from_diffs(e: &Event) -> bool {
    matches!(
        e.kind,
        EventKind::Loss | EventKind::OffTarget | EventKind::BackOnTarget | EventKind::DummyState
    )
}

impl RunSink for DirSink {
    fn record(&mut self, r: &SampleRecord) -> std::io::Result<()> {
        self.writer()?
            .record(r.dummy_id, r.session, r.transport, &r.sample)
            .map_err(io)
    }

    fn notice(&mut self, n: &Notice, now_ns: UnixNanos) -> std::io::Result<()> {
        let e = Event {
            t_unix_s: now_ns as f64 / 1e9,
            elapsed_s: (now_ns - self.started_ns) as f64 / 1e9,
            kind: n.kind,
            dummy: n.dummy,
            message: n.message.clone(),
        };
        self.writer()?.event(&e).map_err(io)
    }

    fn tick(&mut self, s: &RunSnapshot, sessions: &[SessionRecord]) -> std::io::Result<()> {
        let now_ns = (s.taken_unix_s * 1e9) as UnixNanos;
        if now_ns - self.last_period_ns < PERIOD_NS {
            return Ok(());
        }
        self.last_period_ns = now_ns;
        let events: Vec<Event> = diff_events(self.prev.as_ref(), s)
            .into_iter()
            .filter(only_from_diffs)
            .collect();
        let summary_due = now_ns - self.last_summary_ns >= SUMMARY_PERIOD_NS;
        let w = self.writer()?;
        // One failing file (a full disk) does not stop the others: every step is tried and
        // the first error returned, so the interim summary still lands when it can.
        let written = events
            .iter()
            .try_for_each(|e| w.event(e))
            .and_then(|()| w.snapshot(s));
        let flushed = w.flush();
        let summary = if summary_due {
            w.write_summary(s, sessions, None, None).map(drop)
        } else {
            Ok(())
        };
        if summary_due {
            self.last_summary_ns = now_ns;
        }
        self.prev = Some(s.clone());
        written.and(flushed).and(summary).map_err(io)
    }

    fn finish(&mut self, outcome: &RunOutcome) -> std::io::Result<()> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        let (s, reason) = (&outcome.snapshot, &outcome.reason);
        let series = w.snapshot(s);
        let ended = w.event(&Event::at(
            s,
            EventKind::RunEnded,
            None,
            format!("run ended: {reason}"),
        ));
        // The final summary is attempted whatever failed before it.
        let finished = w.finish(s, &outcome.sessions, s.taken_unix_s, Some(&outcome.verdict));
        series.and(ended).and(finished.map(drop)).map_err(io)
    }
}
