//! The async shell around [`RunMachine`]: it moves bytes and time, nothing else.
//!
//! It waits for whatever comes next (a batch from the receivers, a driver event, a tick, a
//! signal, a key of the live view), hands it to the machine with the wall time, and carries
//! out the actions: rows and events to the run directory, ECHOs to the sockets, snapshots to
//! the live view and Prometheus, and stopping the simulation driver.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::receivers::{Receivers, SimLink};
use super::RunArgs;
use crate::event::{Level, Notice, ReceiverEvent};
use crate::metrics::aggregator::{Aggregator, SampleRecord};
use crate::metrics::{MetricsConfig, RunSnapshot, SessionRecord};
use crate::output::UiAction;
use crate::remote_api::driver::DriverEvent;
use crate::run::{Action, Input, Published, RunConfig, RunMachine, RunOutcome, StopRules};
use crate::time::{unix_now_ns, UnixNanos};

/// How often the machine is ticked (stop rules, publishing).
const TICK: Duration = Duration::from_millis(250);
/// Snapshot cadence with the live view (its redraw) and without (the run directory's 1 s).
const VIEW_SNAPSHOT_EVERY: Duration = Duration::from_millis(250);
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// Where a run's data goes (run directory, nothing...): the I/O seam, with fakes in tests.
pub trait RunSink: Send {
    fn record(&mut self, r: &SampleRecord) -> std::io::Result<()>;
    fn notice(&mut self, n: &Notice, now_ns: UnixNanos) -> std::io::Result<()>;
    /// Called with every published snapshot and the sessions so far (series, periodic
    /// flush and summary).
    fn tick(&mut self, s: &RunSnapshot, sessions: &[SessionRecord]) -> std::io::Result<()>;
    /// The end: the final snapshot, sessions, why it ended and the verdict.
    fn finish(&mut self, outcome: &RunOutcome) -> std::io::Result<()>;
}

/// Discards everything (`--no-out`).
#[derive(Debug, Default)]
pub struct NullSink;

impl RunSink for NullSink {
    fn record(&mut self, _: &SampleRecord) -> std::io::Result<()> {
        Ok(())
    }
    fn notice(&mut self, _: &Notice, _: UnixNanos) -> std::io::Result<()> {
        Ok(())
    }
    fn tick(&mut self, _: &RunSnapshot, _: &[SessionRecord]) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &RunOutcome) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where snapshots and keys travel.
#[derive(Debug)]
pub struct Channels {
    /// Whole-run snapshots (Prometheus, callers).
    pub snapshots: watch::Sender<RunSnapshot>,
    /// The live view's snapshots (restarted by `r`); `None` without a live view.
    pub view: Option<watch::Sender<RunSnapshot>>,
    /// Keys of the live view.
    pub ui: mpsc::Receiver<UiAction>,
}

impl Channels {
    /// No live view and no key input (tests, scripts).
    pub fn headless(snapshots: watch::Sender<RunSnapshot>) -> (Self, mpsc::Sender<UiAction>) {
        let (ui_tx, ui) = mpsc::channel(4);
        (
            Self {
                snapshots,
                view: None,
                ui,
            },
            ui_tx,
        )
    }
}

/// A snapshot with nothing in it (initial value of watch channels).
pub fn empty_snapshot() -> RunSnapshot {
    Aggregator::new(MetricsConfig::default()).snapshot(0)
}

/// The run's configuration from its flags.
fn run_config(args: &RunArgs, started_ns: UnixNanos, has_sim: bool, view: bool) -> RunConfig {
    let mut cfg = RunConfig::new(started_ns);
    cfg.metrics = MetricsConfig {
        run_start_ns: started_ns,
        warmup_ns: args.stop.warmup.as_nanos() as i64,
        target_rtf: args.sim.reference_rtf(),
        off_target_tolerance: args.stop.rtf_tolerance,
        ..MetricsConfig::default()
    };
    cfg.stop = StopRules {
        duration: args.stop.duration,
        until_sim_time_s: args.stop.until_sim_time,
        idle_timeout: Some(args.stop.idle_timeout),
    };
    cfg.admission = args.collect.admission();
    cfg.expect_dummies = args.stop.expect_dummies;
    cfg.expect_timeout = args.stop.expect_timeout;
    cfg.has_sim = has_sim;
    cfg.snapshot_every = if view {
        VIEW_SNAPSHOT_EVERY
    } else {
        SNAPSHOT_EVERY.min(args.output.print_interval.max(TICK))
    };
    cfg.print_every = Some(args.output.print_interval);
    cfg.gates = args.gates.gates();
    cfg
}

/// The run loop, with receivers, sink and channels supplied by the caller.
pub async fn collect_with(
    args: &RunArgs,
    receivers: Receivers,
    sim: Option<SimLink>,
    sink: Box<dyn RunSink>,
    channels: Channels,
) -> anyhow::Result<RunOutcome> {
    // The run starts when the sockets were bound: anything the kernel queued (and stamped)
    // since then belongs to it, however late this loop starts.
    let started = receivers.bound_ns;
    let Receivers {
        mut rx,
        replies,
        pool,
        low_latency,
        drop_counter,
        ..
    } = receivers;
    let Channels {
        snapshots,
        view,
        mut ui,
    } = channels;
    let cfg = run_config(args, started, sim.is_some(), view.is_some());
    let mut machine = RunMachine::new(cfg);
    let mut exec = Exec {
        sink: GuardedSink::new(sink),
        replies,
        low_latency,
        snapshots,
        view,
        json: args
            .output
            .json_stream
            .then(crate::output::LineWriter::stdout),
        driver: None,
        stopping_driver: None,
        finish: false,
        failure: None,
    };
    let mut sim_events = None;
    if drop_counter {
        // The kernel attaches SO_RXQ_OVFL only once something was dropped: zero until then.
        let zero = ReceiverEvent::Status(crate::event::ReceiverStatus::KernelDrops(0));
        exec.all(machine.on_event(Input::Receiver(&zero), started), started);
    }
    if let Some(link) = sim {
        for ev in &link.early {
            exec.all(machine.on_event(Input::Driver(ev), started), started);
        }
        sim_events = Some(link.events);
        exec.driver = Some(link.handle);
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signals = std::pin::pin!(crate::commands::shutdown_signal());
    let mut ui_open = true;
    // The signal future completes once: polling it again would panic ("async fn resumed
    // after completion"), and after a signal the loop goes on while the driver stops the
    // simulation and the BYEs come in.
    let mut signalled = false;
    // The end of --duration: one timer, reset when the machine's deadline changes, and
    // disarmed once it fired (a finished Sleep is ready at once: no busy loop).
    let mut deadline_timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let (mut deadline_seen, mut deadline_armed) = (None, false);
    while !exec.finish {
        let deadline = machine.deadline();
        if deadline != deadline_seen {
            deadline_seen = deadline;
            deadline_armed = deadline.is_some();
            if let Some(at) = deadline {
                deadline_timer.as_mut().reset(instant_at(at));
            }
        }
        tokio::select! {
            ev = rx.recv() => {
                let now = unix_now_ns();
                match ev {
                    Some(ev) => {
                        exec.all(machine.on_event(Input::Receiver(&ev), now), now);
                        recycle(&pool, ev);
                    }
                    None => exec.all(machine.on_event(Input::Signal, now), now),
                }
            }
            _ = tick.tick() => {
                let now = unix_now_ns();
                exec.all(machine.on_tick(now), now);
            }
            // The end of --duration, to the millisecond rather than the next tick.
            _ = &mut deadline_timer, if deadline_armed => {
                deadline_armed = false;
                let now = unix_now_ns();
                exec.all(machine.on_tick(now), now);
            }
            ev = recv_sim(&mut sim_events) => {
                let now = unix_now_ns();
                match ev {
                    Some(ev) => exec.all(machine.on_event(Input::Driver(&ev), now), now),
                    None => {
                        sim_events = None;
                        exec.all(machine.on_event(Input::DriverGone, now), now);
                    }
                }
            }
            _ = stopped(&mut exec.stopping_driver) => {
                exec.stopping_driver = None;
                let now = unix_now_ns();
                exec.all(machine.on_event(Input::DriverStopped, now), now);
            }
            _ = &mut signals, if !signalled => {
                signalled = true;
                let now = unix_now_ns();
                exec.all(machine.on_event(Input::Signal, now), now);
            }
            key = ui.recv(), if ui_open => {
                let now = unix_now_ns();
                let input = match key {
                    Some(UiAction::Quit) => Input::Quit,
                    Some(UiAction::ResetStats) => Input::ResetView,
                    None => { ui_open = false; continue; }
                };
                exec.all(machine.on_event(input, now), now);
            }
        }
    }
    // Whatever is already queued was received: account for it before the summary.
    while let Ok(ev) = rx.try_recv() {
        let now = unix_now_ns();
        exec.all(machine.on_event(Input::Receiver(&ev), now), now);
        recycle(&pool, ev);
    }
    if let Some(handle) = exec.driver.take() {
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .ok();
    }
    if let Some(message) = exec.failure {
        anyhow::bail!("{message}");
    }
    let outcome = machine.finish(unix_now_ns());
    exec.sink.finish(&outcome);
    let _ = exec.snapshots.send(outcome.snapshot.clone());
    if let Some(v) = &exec.view {
        let _ = v.send(outcome.snapshot.clone());
    }
    if let Some(message) = exec.sink.first_error {
        return Err(IncompleteRunDir {
            message,
            failures: exec.sink.failures,
            outcome: Box::new(outcome),
        }
        .into());
    }
    Ok(outcome)
}

/// The run measured to its end, but its run directory could not be fully written (a full
/// disk...): the outcome is still there to show, and the process must still fail.
#[derive(Debug, thiserror::Error)]
#[error("{message}; measuring went on, but the run directory is incomplete ({failures} writes failed): free space or choose another --out")]
pub struct IncompleteRunDir {
    /// The first write error, with the file and the OS's reason.
    pub message: String,
    /// Writes that failed in all.
    pub failures: u64,
    pub outcome: Box<RunOutcome>,
}

fn recycle(pool: &crate::collector::BatchPool, ev: ReceiverEvent) {
    if let ReceiverEvent::Arrivals(batch) = ev {
        pool.give(batch);
    }
}

async fn recv_sim(
    events: &mut Option<mpsc::UnboundedReceiver<DriverEvent>>,
) -> Option<DriverEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn stopped(stopping: &mut Option<tokio::task::JoinHandle<()>>) {
    match stopping {
        Some(h) => {
            let _ = h.await;
        }
        None => std::future::pending().await,
    }
}

/// Carries out the machine's actions.
struct Exec {
    sink: GuardedSink,
    replies: crate::collector::ReplySink,
    low_latency: std::sync::Arc<std::sync::atomic::AtomicBool>,
    snapshots: watch::Sender<RunSnapshot>,
    view: Option<watch::Sender<RunSnapshot>>,
    /// `--json-stream`: lines written off the run loop (a slow reader must not stall it).
    json: Option<crate::output::LineWriter>,
    driver: Option<crate::remote_api::driver::DriverHandle>,
    stopping_driver: Option<tokio::task::JoinHandle<()>>,
    finish: bool,
    failure: Option<String>,
}

impl Exec {
    fn all(&mut self, actions: impl Iterator<Item = Action>, now: UnixNanos) {
        for a in actions {
            self.one(a, now);
        }
    }

    fn one(&mut self, action: Action, now: UnixNanos) {
        match action {
            Action::Reply { to, payload } => {
                self.replies.send(to, &payload);
            }
            Action::Record(r) => self.sink.record(&r),
            Action::Notice(n) => {
                log_notice(&n);
                self.sink.notice(&n, now);
            }
            Action::Publish(p) => self.publish(*p),
            Action::LowLatency(on) => self.low_latency.store(on, Ordering::Relaxed),
            Action::StopDriver => match self.driver.take() {
                Some(h) => {
                    self.stopping_driver = Some(tokio::task::spawn_blocking(move || h.shutdown()))
                }
                None => self.stopping_driver = Some(tokio::spawn(async {})),
            },
            Action::Finish => self.finish = true,
            Action::Fail(message) => {
                self.failure = Some(message);
                self.finish = true;
            }
        }
    }

    fn publish(&mut self, p: Published) {
        self.sink.tick(&p.run, &p.sessions);
        if p.print {
            match &mut self.json {
                Some(lines) => {
                    lines.send(crate::output::snapshot_json_line(&p.run));
                }
                None => {
                    for line in crate::output::plain_lines(&p.run) {
                        tracing::info!("{line}");
                    }
                }
            }
        }
        if let Some(v) = &self.view {
            let _ = v.send(p.view.unwrap_or_else(|| p.run.clone()));
        }
        let _ = self.snapshots.send(p.run);
    }
}

/// Logs a notice once, under its kind (the same name as in `events.jsonl`).
fn log_notice(n: &Notice) {
    let kind = n.kind.as_str();
    match n.level() {
        Level::Info => tracing::info!(kind, "{}", n.message),
        Level::Warn => tracing::warn!(kind, "{}", n.message),
        Level::Error => tracing::error!(kind, "{}", n.message),
    }
}

/// A sink whose failures do not stop the measurement: the first is reported at once (with
/// the fix), the rest are counted, and the run ends with an error.
struct GuardedSink {
    inner: Box<dyn RunSink>,
    first_error: Option<String>,
    failures: u64,
}

impl GuardedSink {
    fn new(inner: Box<dyn RunSink>) -> Self {
        Self {
            inner,
            first_error: None,
            failures: 0,
        }
    }

    fn check(&mut self, what: &str, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.failures += 1;
            if self.first_error.is_none() {
                let message = format!("cannot write the run directory ({what}): {e}");
                tracing::error!(
                    kind = "error",
                    "{message}; measuring goes on (free space or pick another --out next time)"
                );
                self.first_error = Some(message);
            }
        }
    }

    fn record(&mut self, r: &SampleRecord) {
        let res = self.inner.record(r);
        self.check("a sample", res);
    }

    fn notice(&mut self, n: &Notice, now: UnixNanos) {
        let res = self.inner.notice(n, now);
        self.check("an event", res);
    }

    fn tick(&mut self, s: &RunSnapshot, sessions: &[SessionRecord]) {
        let res = self.inner.tick(s, sessions);
        self.check("the RTF series or summary", res);
    }

    fn finish(&mut self, outcome: &RunOutcome) {
        let res = self.inner.finish(outcome);
        self.check("the final summary", res);
    }
}

/// The tokio instant of wall time `at` (now, if it has passed).
fn instant_at(at: UnixNanos) -> tokio::time::Instant {
    let left = u64::try_from(at.saturating_sub(unix_now_ns())).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_nanos(left)
}
