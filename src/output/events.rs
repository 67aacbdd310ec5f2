//! `events.jsonl`: one JSON object per line for everything that happened once (state
//! changes, new sessions, losses, warnings). [`diff_events`] derives most of them from two
//! consecutive snapshots, so the app only adds run start/end and its own warnings.

use std::collections::HashMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

pub use crate::event::EventKind;
use crate::metrics::{DummySnapshot, RunSnapshot};

use super::format;
use super::rtf_csv::state_name;
use super::RecordSink;

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub t_unix_s: f64,
    /// Wall time since the run started, s.
    pub elapsed_s: f64,
    pub kind: EventKind,
    /// The dummy concerned, if any.
    pub dummy: Option<u32>,
    pub message: String,
}

impl Event {
    /// An event stamped with the time of snapshot `s`.
    pub fn at(s: &RunSnapshot, kind: EventKind, dummy: Option<u32>, message: String) -> Self {
        Self {
            t_unix_s: s.taken_unix_s,
            elapsed_s: s.elapsed_s,
            kind,
            dummy,
            message,
        }
    }
}

/// Events between snapshot `prev` (`None` before the first) and `next`, stamped with
/// `next`'s time. Pure: compares values only.
pub fn diff_events(prev: Option<&RunSnapshot>, next: &RunSnapshot) -> Vec<Event> {
    let mut out = Vec::new();
    sim_events(prev, next, &mut out);
    // By id, once: a search per dummy made this quadratic (9 % of the bridge's CPU with
    // 10,000 dummies, the run directory diffing once a second).
    let before: HashMap<u32, &DummySnapshot> = prev
        .map(|p| p.dummies.iter().map(|b| (b.id, b)).collect())
        .unwrap_or_default();
    for d in &next.dummies {
        match before.get(&d.id) {
            None => out.push(Event::at(
                next,
                EventKind::DummyRegistered,
                Some(d.id),
                format!("{} ({}) from {}", d.name, transport_name(d), d.source),
            )),
            Some(b) => dummy_events(b, d, next, &mut out),
        }
    }
    rejected_events(prev, next, &mut out);
    out
}

fn sim_events(prev: Option<&RunSnapshot>, next: &RunSnapshot, out: &mut Vec<Event>) {
    let old = prev.and_then(|p| p.sim.as_ref()).map(|s| s.state.as_str());
    if let Some(sim) = &next.sim {
        if old != Some(sim.state.as_str()) {
            let msg = format!(
                "CoppeliaSim {} (was {})",
                sim.state,
                old.unwrap_or("unknown")
            );
            out.push(Event::at(next, EventKind::SimState, None, msg));
        }
    }
}

fn dummy_events(b: &DummySnapshot, d: &DummySnapshot, s: &RunSnapshot, out: &mut Vec<Event>) {
    let id = Some(d.id);
    if d.session != b.session {
        let msg = format!(
            "{} session {} started (seq or simulation time restarted)",
            d.name, d.session
        );
        out.push(Event::at(s, EventKind::SessionStarted, id, msg));
    } else if let (Some(now), Some(then)) = (&d.loss, &b.loss) {
        if now.lost > then.lost {
            let msg = format!(
                "{} lost {} (total {})",
                d.name,
                super::format::count(now.lost - then.lost, "message"),
                now.lost
            );
            out.push(Event::at(s, EventKind::Loss, id, msg));
        }
    }
    if d.state != b.state {
        let msg = format!("{} is {} (was {})", d.name, state_name(d), state_name(b));
        out.push(Event::at(s, EventKind::DummyState, id, msg));
    }
    if d.off_target != b.off_target {
        let kind = if d.off_target {
            EventKind::OffTarget
        } else {
            EventKind::BackOnTarget
        };
        let msg = format!("{} RTF 1 s {}", d.name, format::opt(d.rtf.last_1s, 3));
        out.push(Event::at(s, kind, id, msg));
    }
    if d.clock_warnings > b.clock_warnings {
        let msg = format!(
            "{}: {} latencies rejected (clocks disagree? sync them with NTP/PTP)",
            d.name,
            d.clock_warnings - b.clock_warnings
        );
        out.push(Event::at(s, EventKind::ClockWarning, id, msg));
    }
}

fn rejected_events(prev: Option<&RunSnapshot>, next: &RunSnapshot, out: &mut Vec<Event>) {
    for r in &next.rejected {
        let before = prev
            .and_then(|p| p.rejected.iter().find(|b| b.source == r.source))
            .map_or(0, |b| b.total);
        if r.total > before {
            let reasons: Vec<&str> = r.by_reason.keys().map(String::as_str).collect();
            let msg = format!(
                "rejected {} from {} ({})",
                super::format::count(r.total - before, "datagram"),
                r.source,
                reasons.join(", ")
            );
            out.push(Event::at(next, EventKind::Rejected, None, msg));
        }
    }
}

fn transport_name(d: &DummySnapshot) -> &'static str {
    d.transport.as_str()
}

/// The JSON-lines format of [`Event`]s on any writer.
#[derive(Debug)]
pub struct EventLog<W: Write> {
    inner: W,
}

impl<W: Write> EventLog<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> RecordSink<Event> for EventLog<W> {
    fn write_record(&mut self, e: &Event) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.inner, e)?;
        self.inner.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads `events.jsonl` back, skipping lines that do not parse (a run killed mid-line
/// leaves a truncated last line).
pub fn read_events(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DummyState;
    use crate::output::fixtures::{sample_events, sample_run_snapshot};

    fn kinds(events: &[Event]) -> Vec<(EventKind, Option<u32>)> {
        events.iter().map(|e| (e.kind, e.dummy)).collect()
    }

    #[test]
    fn first_snapshot_registers_every_dummy_and_the_sim_state() {
        let s = sample_run_snapshot();
        let events = diff_events(None, &s);
        assert_eq!(
            kinds(&events),
            vec![
                (EventKind::SimState, None),
                (EventKind::DummyRegistered, Some(0)),
                (EventKind::DummyRegistered, Some(1)),
                (EventKind::DummyRegistered, Some(2)),
                (EventKind::Rejected, None),
            ]
        );
        assert_eq!(events[0].elapsed_s, s.elapsed_s);
    }

    #[test]
    fn identical_snapshots_produce_no_event() {
        let s = sample_run_snapshot();
        assert!(diff_events(Some(&s), &s).is_empty());
    }

    #[test]
    fn changes_between_snapshots_become_events() {
        let prev = sample_run_snapshot();
        let mut next = prev.clone();
        next.sim.as_mut().unwrap().state = "paused".to_owned();
        next.dummies[0].off_target = true;
        next.dummies[0].state = DummyState::Idle;
        next.dummies[1].loss.as_mut().unwrap().lost += 3;
        next.dummies[1].clock_warnings += 1;
        next.dummies[2].session += 1;
        let events = diff_events(Some(&prev), &next);
        assert_eq!(
            kinds(&events),
            vec![
                (EventKind::SimState, None),
                (EventKind::DummyState, Some(0)),
                (EventKind::OffTarget, Some(0)),
                (EventKind::Loss, Some(1)),
                (EventKind::ClockWarning, Some(1)),
                (EventKind::SessionStarted, Some(2)),
            ]
        );
        assert_eq!(events[3].message, "Dummy1 lost 3 messages (total 7)");
    }

    #[test]
    fn dummies_are_matched_by_id_whatever_their_order() {
        let mut prev = sample_run_snapshot();
        prev.dummies.reverse();
        prev.dummies.remove(0); // dummy 2 is new in `next`
        let mut next = sample_run_snapshot();
        next.dummies[0].state = DummyState::Idle;
        let events = diff_events(Some(&prev), &next);
        assert_eq!(
            kinds(&events),
            vec![
                (EventKind::DummyState, Some(0)),
                (EventKind::DummyRegistered, Some(2)),
            ]
        );
    }

    #[test]
    fn jsonl_round_trips_and_tolerates_a_truncated_line_and_unknown_kinds() {
        let mut log = EventLog::new(Vec::new());
        for e in sample_events() {
            log.write_record(&e).unwrap();
        }
        let mut text = String::from_utf8(log.into_inner()).unwrap();
        assert_eq!(read_events(&text), sample_events());
        text.push_str("{\"t_unix_s\":1.0,\"elapsed_s\":1.0,\"kind\":\"future\",\"dummy\":null,\"message\":\"x\"}\n{\"t_unix");
        let back = read_events(&text);
        assert_eq!(back.len(), sample_events().len() + 1);
        assert_eq!(back.last().unwrap().kind, EventKind::Other);
    }
}
