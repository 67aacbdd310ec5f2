//! A measured run as a state machine, without I/O (sans-IO, as quinn's protocol core).
//!
//! [`RunMachine::on_event`] and [`RunMachine::on_tick`] take what happened and the wall time
//! it happened at, and return [`Action`]s; the async shell in `commands::run` only moves
//! bytes and time: it feeds receiver batches, driver events, signals and ticks in, and
//! carries the actions out (sample rows, ECHO replies, notices, snapshots, stopping the
//! driver). So every rule of a run (when measuring starts, when it stops, what is published
//! when) is tested here with synthetic timelines.
//!
//! - [`stop`]: the stop rules (duration, target simulation time, idle timeout).
//! - [`gate`]: the `--expect-dummies` wait.
//! - [`sim_link`]: what the remote-API driver's events mean.
//! - [`verdict`]: the CI gates and a run's verdict.

pub mod gate;
pub mod sim_link;
pub mod stop;
pub mod verdict;

use std::time::Duration;

pub use gate::ExpectGate;
pub use stop::{Progress, StopReason, StopRules};
pub use verdict::{verdict, Gates, Verdict};

use crate::event::{EventKind, Notice, ReceiverEvent, Source};
use crate::metrics::aggregator::{Aggregator, Outcome, SampleRecord};
use crate::metrics::{MetricsConfig, RunSnapshot, SessionRecord, SimMetrics};
use crate::remote_api::driver::DriverEvent;
use crate::time::UnixNanos;

/// Everything a run is configured with.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// When the bridge started (wall clock).
    pub started_ns: UnixNanos,
    pub metrics: MetricsConfig,
    pub stop: StopRules,
    /// `--expect-dummies` and how long to wait for them.
    pub expect_dummies: Option<usize>,
    pub expect_timeout: Duration,
    /// The run talks to CoppeliaSim (a driver feeds [`Input::Driver`] events).
    pub has_sim: bool,
    /// How often a snapshot is published (live view, run directory, Prometheus).
    pub snapshot_every: Duration,
    /// How often published snapshots are also printed (plain lines, JSON stream).
    pub print_every: Option<Duration>,
    /// After the driver has stopped the simulation, how long to keep collecting (the
    /// scripts' BYEs are on their way).
    pub bye_grace: Duration,
    /// The CI gates the final snapshot is judged against.
    pub gates: Gates,
}

impl RunConfig {
    /// A run started at `started_ns` with default metrics, no stop rule and no simulator.
    pub fn new(started_ns: UnixNanos) -> Self {
        Self {
            started_ns,
            metrics: MetricsConfig {
                run_start_ns: started_ns,
                ..MetricsConfig::default()
            },
            stop: StopRules::default(),
            expect_dummies: None,
            expect_timeout: Duration::from_secs(30),
            has_sim: false,
            snapshot_every: Duration::from_secs(1),
            print_every: None,
            bye_grace: Duration::from_millis(500),
            gates: Gates::default(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Something the receivers read (by reference: the shell recycles batches).
    Receiver(&'a ReceiverEvent),
    Driver(&'a DriverEvent),
    /// The driver's event channel closed.
    DriverGone,
    /// The shell finished stopping the driver after [`Action::StopDriver`].
    DriverStopped,
    /// Ctrl-C or SIGTERM.
    Signal,
    /// `q` in the live view.
    Quit,
    /// `r` in the live view: restart the view's statistics (the run's are kept).
    ResetView,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send an ECHO back.
    Reply { to: Source, payload: Vec<u8> },
    /// Append a row to the samples.
    Record(SampleRecord),
    /// Log it and write it to `events.jsonl`.
    Notice(Notice),
    /// Publish a snapshot (live view, run directory, Prometheus), and print it if asked.
    Publish(Box<Published>),
    /// Read without pausing (`true`: some dummy measures ECHO round trips) or with the
    /// receiver's normal cadence.
    LowLatency(bool),
    /// Measuring is over: stop the simulation driver, then report [`Input::DriverStopped`].
    StopDriver,
    /// Take in what is still queued, then call [`RunMachine::finish`].
    Finish,
    /// The run cannot go on (e.g. the expected dummies never came).
    Fail(String),
}

/// One published snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The whole run (the run directory and Prometheus).
    pub run: RunSnapshot,
    /// Since the last reset of the live view, if it was reset.
    pub view: Option<RunSnapshot>,
    /// Earlier sessions of dummies that restarted.
    pub sessions: Vec<SessionRecord>,
    /// Print it too (plain lines, `--json-stream`).
    pub print: bool,
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub snapshot: RunSnapshot,
    pub sessions: Vec<SessionRecord>,
    pub reason: StopReason,
    /// The final snapshot against [`RunConfig::gates`].
    pub verdict: Verdict,
}

impl RunOutcome {
    /// No dummy ever registered (nothing was measured).
    pub fn is_empty(&self) -> bool {
        self.snapshot.dummies.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Measuring,
    /// Stopped measuring for `reason`; waiting for the driver (if any) and its BYE grace.
    Stopping {
        reason: StopReason,
        driver_stopped_at: Option<UnixNanos>,
    },
    /// [`Action::Finish`] was given.
    Finishing {
        reason: StopReason,
    },
}

/// The state of one run.
#[derive(Debug)]
pub struct RunMachine {
    cfg: RunConfig,
    agg: Aggregator,
    /// The live view's statistics after a reset (`r`): a copy fed the same arrivals.
    view: Option<Aggregator>,
    sim: SimMetrics,
    gate: ExpectGate,
    progress: Progress,
    phase: Phase,
    low_latency: bool,
    last_publish_ns: Option<UnixNanos>,
    last_print_ns: Option<UnixNanos>,
    out: Vec<Action>,
    /// Scratch: the prefetch plan of the batch being handled.
    prefetch: Vec<usize>,
}

impl RunMachine {
    pub fn new(cfg: RunConfig) -> Self {
        let gate = ExpectGate::new(cfg.expect_dummies, cfg.expect_timeout, cfg.started_ns);
        let progress = Progress {
            measuring_since_ns: gate.is_open().then_some(cfg.started_ns),
            idle_counts: true,
            ..Progress::default()
        };
        Self {
            agg: Aggregator::new(cfg.metrics.clone()),
            view: None,
            sim: SimMetrics::new(cfg.started_ns),
            gate,
            progress,
            phase: Phase::Measuring,
            low_latency: false,
            last_publish_ns: None,
            last_print_ns: None,
            out: Vec::new(),
            prefetch: Vec::new(),
            cfg,
        }
    }

    /// Whether the run still measures (no stop rule, signal or quit yet).
    pub fn is_measuring(&self) -> bool {
        self.phase == Phase::Measuring
    }

    /// Handles one input at wall time `now_ns`.
    pub fn on_event(&mut self, input: Input<'_>, now_ns: UnixNanos) -> std::vec::Drain<'_, Action> {
        match input {
            Input::Receiver(ev) => self.on_receiver(ev, now_ns),
            Input::Driver(ev) => {
                let target = self.cfg.metrics.target_rtf;
                if let Some(n) = sim_link::apply(&mut self.sim, ev, target) {
                    self.out.push(Action::Notice(n));
                }
            }
            Input::DriverGone => {}
            Input::DriverStopped => {
                if let Phase::Stopping {
                    driver_stopped_at, ..
                } = &mut self.phase
                {
                    driver_stopped_at.get_or_insert(now_ns);
                }
                self.check_stopping(now_ns);
            }
            Input::Signal => self.stop(StopReason::Signal),
            Input::Quit => self.stop(StopReason::UserQuit),
            Input::ResetView => self.reset_view(now_ns),
        }
        self.out.drain(..)
    }

    /// The periodic tick: stop rules, the expect gate, publishing. Call it every 250 ms or
    /// so; publishing follows [`RunConfig::snapshot_every`].
    pub fn on_tick(&mut self, now_ns: UnixNanos) -> std::vec::Drain<'_, Action> {
        match self.phase {
            Phase::Measuring => {
                self.poll_gate(now_ns, now_ns);
                self.publish_if_due(now_ns);
                self.check_rules(now_ns);
            }
            Phase::Stopping { .. } => self.check_stopping(now_ns),
            Phase::Finishing { .. } => {}
        }
        self.out.drain(..)
    }

    /// The next moment a stop rule fires by itself (the end of `--duration`), if known: the
    /// shell calls [`RunMachine::on_tick`] then, rather than up to a tick later.
    pub fn deadline(&self) -> Option<UnixNanos> {
        match self.phase {
            Phase::Measuring => self.cfg.stop.deadline(&self.progress),
            _ => None,
        }
    }

    /// The final snapshot, sessions and reason (after [`Action::Finish`] and the last
    /// queued events).
    pub fn finish(&mut self, now_ns: UnixNanos) -> RunOutcome {
        let reason = match &self.phase {
            Phase::Measuring => StopReason::Signal,
            Phase::Stopping { reason, .. } | Phase::Finishing { reason } => reason.clone(),
        };
        let snapshot = self.snapshot(now_ns);
        RunOutcome {
            verdict: verdict(&snapshot, &self.cfg.gates),
            snapshot,
            sessions: self.agg.sessions().to_vec(),
            reason,
        }
    }

    /// The whole run's snapshot at `now_ns`.
    pub fn snapshot(&mut self, now_ns: UnixNanos) -> RunSnapshot {
        if self.cfg.has_sim {
            self.agg.set_sim(Some(self.sim.snapshot(now_ns)));
        }
        self.agg.snapshot(now_ns)
    }

    fn on_receiver(&mut self, ev: &ReceiverEvent, now_ns: UnixNanos) {
        match ev {
            ReceiverEvent::Arrivals(batch) => {
                self.agg.prefetch_plan(batch, &mut self.prefetch);
                for (i, a) in batch.iter().enumerate() {
                    self.agg.prefetch_ahead(&self.prefetch, i);
                    self.progress.last_message_ns = Some(a.read_ns);
                    if let Some(v) = self.view.as_mut() {
                        v.arrival(a, now_ns);
                    }
                    let out = self.agg.arrival(a, now_ns);
                    let registered = out.registered_new_dummy();
                    self.take(out);
                    if registered {
                        // Measure from the arrival of the last expected HELLO, not from when
                        // it was handled: messages queued behind it arrived later.
                        self.poll_gate(a.recv_ns(), now_ns);
                        self.update_low_latency();
                    }
                }
            }
            ReceiverEvent::Status(s) => {
                if let Some(v) = self.view.as_mut() {
                    v.status(s, now_ns);
                }
                let out = self.agg.status(s, now_ns);
                self.take(out);
            }
        }
    }

    fn take(&mut self, out: Outcome) {
        if let Some((to, payload)) = out.reply {
            self.out.push(Action::Reply { to, payload });
        }
        if let Some(r) = out.record {
            self.out.push(Action::Record(r));
        }
        self.out.extend(out.notices.into_iter().map(Action::Notice));
    }

    fn update_low_latency(&mut self) {
        let wanted = self.agg.echo_wanted();
        if wanted != self.low_latency {
            self.low_latency = wanted;
            self.out.push(Action::LowLatency(wanted));
        }
    }

    /// Opens the expect gate if every expected dummy is here; measurement then starts at
    /// `open_at_ns`.
    fn poll_gate(&mut self, open_at_ns: UnixNanos, now_ns: UnixNanos) {
        if self.gate.is_open() {
            return;
        }
        match self.gate.poll(&self.agg.dummy_ids(), now_ns) {
            Ok(true) => {
                self.agg.set_measurement_start(open_at_ns);
                self.progress.measuring_since_ns = Some(open_at_ns);
                let n = self.cfg.expect_dummies.unwrap_or(0);
                self.out.push(Action::Notice(Notice::new(
                    EventKind::Info,
                    None,
                    format!("all {n} expected dummies are here: measuring"),
                )));
            }
            Ok(false) => {}
            Err(message) => {
                self.out.push(Action::Fail(message));
                self.phase = Phase::Finishing {
                    reason: StopReason::Signal,
                };
            }
        }
    }

    fn publish_if_due(&mut self, now_ns: UnixNanos) {
        let every = self.cfg.snapshot_every.as_nanos() as i64;
        if self.last_publish_ns.is_some_and(|t| now_ns - t < every) {
            return;
        }
        self.last_publish_ns = Some(now_ns);
        let print = self.cfg.print_every.is_some_and(|p| {
            let due = self
                .last_print_ns
                .is_none_or(|t| now_ns - t >= p.as_nanos() as i64);
            if due {
                self.last_print_ns = Some(now_ns);
            }
            due
        });
        let run = self.snapshot(now_ns);
        let view = self.view.as_mut().map(|v| {
            v.set_sim(run.sim.clone());
            v.snapshot(now_ns)
        });
        self.out.push(Action::Publish(Box::new(Published {
            run,
            view,
            sessions: self.agg.sessions().to_vec(),
            print,
        })));
    }

    fn check_rules(&mut self, now_ns: UnixNanos) {
        self.progress.idle_counts = !self.cfg.has_sim || self.sim.is_advancing();
        self.agg.progress(&mut self.progress.dummies);
        if let Some(reason) = self.cfg.stop.check(&self.progress, now_ns) {
            self.stop(reason);
        }
    }

    fn stop(&mut self, reason: StopReason) {
        if self.phase != Phase::Measuring {
            return;
        }
        if self.cfg.has_sim {
            // Stopping the simulation makes the scripts send BYE: collect those too.
            self.phase = Phase::Stopping {
                reason,
                driver_stopped_at: None,
            };
            self.out.push(Action::StopDriver);
        } else {
            self.phase = Phase::Finishing { reason };
            self.out.push(Action::Finish);
        }
    }

    fn check_stopping(&mut self, now_ns: UnixNanos) {
        let Phase::Stopping {
            reason,
            driver_stopped_at: Some(at),
        } = &self.phase
        else {
            return;
        };
        if now_ns - at >= self.cfg.bye_grace.as_nanos() as i64 {
            self.phase = Phase::Finishing {
                reason: reason.clone(),
            };
            self.out.push(Action::Finish);
        }
    }

    fn reset_view(&mut self, now_ns: UnixNanos) {
        // A copy of the run's state (registrations, legacy addresses, ECHO wishes) whose
        // statistics start afresh: the run directory keeps covering the whole run.
        let mut view = self.agg.clone();
        view.reset(now_ns);
        self.view = Some(view);
        self.out.push(Action::Notice(Notice::new(
            EventKind::StatsReset,
            None,
            "live view statistics reset (r); the run directory keeps the whole run",
        )));
    }
}

#[cfg(test)]
mod tests;
