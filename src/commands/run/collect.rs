//! The collection loop: receivers → aggregator → snapshots, sinks and stop rules.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};

use super::sim_view::SimView;
use super::stop::{Progress, StopReason, StopRules};
use super::{CollectArgs, RunArgs, SimArgs};
use crate::collector::{
    bind_udp, spawn_tcp, unix_now_ns, CollectorEvent, ReplySink, TcpConfig, UdpConfig,
};
use crate::metrics::aggregator::{Aggregator, Notice, NoticeLevel, SampleRecord};
use crate::metrics::{DummyState, MetricsConfig, RunSnapshot, SessionRecord, UnixNanos};
use crate::output::UiAction;
use crate::remote_api::driver::{self, DriverEvent, DriverHandle};

/// How often snapshots are taken and stop rules checked.
const TICK: Duration = Duration::from_millis(250);
/// Receiver → aggregator queue; when full, receivers wait and the kernel buffer absorbs.
const QUEUE: usize = 65_536;

/// Where a run's data goes (run directory, stdout stream...). I/O seam with fakes in tests.
pub trait RunSink: Send {
    fn record(&mut self, r: &SampleRecord) -> std::io::Result<()>;
    fn notice(&mut self, n: &Notice, now_ns: UnixNanos) -> std::io::Result<()>;
    /// Called every tick with the latest snapshot and the sessions so far (series, periodic
    /// flush and summary).
    fn tick(&mut self, s: &RunSnapshot, sessions: &[SessionRecord]) -> std::io::Result<()>;
    fn finish(
        &mut self,
        s: &RunSnapshot,
        sessions: &[SessionRecord],
        reason: &StopReason,
    ) -> std::io::Result<()>;
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
    fn finish(
        &mut self,
        _: &RunSnapshot,
        _: &[SessionRecord],
        _: &StopReason,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub snapshot: RunSnapshot,
    pub sessions: Vec<SessionRecord>,
    pub reason: StopReason,
}

/// Bound receivers, not yet receiving into an aggregator.
#[derive(Debug)]
pub struct Receivers {
    pub udp_addr: SocketAddr,
    pub tcp_addr: Option<SocketAddr>,
    rx: mpsc::Receiver<CollectorEvent>,
    replies: ReplySink,
    drop_counter: bool,
}

/// Binds UDP (and TCP) as `--listen`/`--tcp-listen` say and starts receiving.
pub async fn bind_receivers(args: &CollectArgs) -> anyhow::Result<Receivers> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let udp = bind_udp(&UdpConfig {
        listen: args.listen,
        recv_buffer: args.recv_buffer,
    })?;
    tracing::info!(
        listen = %udp.local_addr,
        recv_buffer_bytes = udp.effective_recv_buffer,
        kernel_drop_counter = udp.drop_counter,
        "listening for UDP datagrams on {} ({} receive timestamps)",
        udp.local_addr,
        if udp.kernel_stamps { "kernel SO_TIMESTAMPNS" } else { "user-space" },
    );
    let (udp_addr, drop_counter) = (udp.local_addr, udp.drop_counter);
    let replies = ReplySink::new(Some(udp.socket.clone()));
    tokio::spawn(udp.run(tx.clone()));
    let mut tcp_addr = None;
    if let Some(listen) = args.tcp_listen {
        let cfg = TcpConfig {
            listen,
            max_frame: args.max_frame,
        };
        let (local, _task) = spawn_tcp(cfg, tx, replies.clone()).await?;
        tracing::info!("listening for framed TCP connections on {local}");
        tcp_addr = Some(local);
    }
    Ok(Receivers {
        udp_addr,
        tcp_addr,
        rx,
        replies,
        drop_counter,
    })
}

/// The running remote-API driver and its events.
#[derive(Debug)]
pub struct SimLink {
    events: mpsc::UnboundedReceiver<DriverEvent>,
    handle: DriverHandle,
    /// Events read while connecting, replayed into the view.
    early: Vec<DriverEvent>,
}

/// Starts the driver and waits for CoppeliaSim to answer: an unreachable endpoint or an
/// unusable server (protocol 1, scene not found...) is an error, within the call deadline.
pub async fn connect_sim(sim: &SimArgs) -> anyhow::Result<SimLink> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let handle = driver::spawn(sim.driver_options(), tx)?;
    let mut early = Vec::new();
    // Setup makes a handful of calls, each bounded by the deadline.
    let wait = sim.remote.remote_timeout * 6 + Duration::from_secs(1);
    let connected = tokio::time::timeout(wait, async {
        while let Some(ev) = events.recv().await {
            let verdict = match &ev {
                DriverEvent::Connected { .. } => Some(Ok(())),
                DriverEvent::Disconnected { error, .. } | DriverEvent::Failed { error } => {
                    Some(Err(error.clone()))
                }
                _ => None,
            };
            early.push(ev);
            if let Some(v) = verdict {
                return v;
            }
        }
        Err("the remote API driver ended unexpectedly".to_owned())
    })
    .await;
    let result = match connected {
        Ok(r) => r,
        Err(_) => Err(format!(
            "CoppeliaSim at {} did not finish answering the setup calls within {}",
            sim.remote.remote,
            humantime::format_duration(wait)
        )),
    };
    if let Err(e) = result {
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .ok();
        anyhow::bail!("{e}");
    }
    Ok(SimLink {
        events,
        handle,
        early,
    })
}

/// A snapshot with nothing in it (initial value of watch channels).
pub fn empty_snapshot() -> RunSnapshot {
    Aggregator::new(MetricsConfig::default()).snapshot(0)
}

/// The loop, with receivers, sink and control channels supplied by the caller.
/// `actions` come from the live view: `Quit` ends the run, `ResetStats` clears statistics.
pub async fn collect_with(
    args: &RunArgs,
    receivers: Receivers,
    sim: Option<SimLink>,
    mut sink: Box<dyn RunSink>,
    snapshots: watch::Sender<RunSnapshot>,
    mut actions: mpsc::Receiver<UiAction>,
) -> anyhow::Result<RunOutcome> {
    let started = unix_now_ns();
    let Receivers {
        mut rx,
        replies,
        drop_counter,
        ..
    } = receivers;
    let mut agg = Aggregator::new(metrics_config(args, started));
    if drop_counter {
        // The kernel attaches SO_RXQ_OVFL only once something was dropped: zero until then.
        agg.handle(CollectorEvent::KernelDrops(0), started);
    }
    let rules = StopRules {
        duration: args.stop.duration,
        until_sim_time_s: args.stop.until_sim_time,
        idle_timeout: Some(args.stop.idle_timeout),
    };
    let mut gate = ExpectGate::new(args.stop.expect_dummies, args.stop.expect_timeout, started);
    let mut progress = Progress {
        measuring_since_ns: gate.is_open().then_some(started),
        idle_counts: true,
        ..Progress::default()
    };
    let mut tick = tokio::time::interval(TICK);
    let mut printer = Printer::new(args.output.print_interval);
    let mut signals = std::pin::pin!(crate::commands::shutdown_signal());
    let mut actions_open = true;
    let mut view = SimView::new(started, args.sim.reference_rtf());
    let (mut sim_events, sim_handle) = match sim {
        Some(link) => {
            for ev in &link.early {
                log_notices(&view.on_event(ev), sink.as_mut(), started)?;
            }
            (Some(link.events), Some(link.handle))
        }
        None => (None, None),
    };
    let has_sim = sim_handle.is_some();
    let reason = loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break StopReason::Signal };
                if let Some(registered_at) = handle(&mut agg, ev, &replies, sink.as_mut(), &mut progress)? {
                    // Measure from the arrival of the last expected HELLO, not from when it
                    // was processed: STAMPs queued behind it arrived later.
                    open_gate(&mut gate, &mut agg, &mut progress, registered_at)?;
                }
            }
            _ = tick.tick() => {
                let now = unix_now_ns();
                open_gate(&mut gate, &mut agg, &mut progress, now)?;
                if has_sim {
                    agg.set_sim(Some(view.snapshot(now)));
                    progress.idle_counts = view.is_advancing();
                }
                let snap = agg.snapshot(now);
                sink.tick(&snap, agg.sessions()).context("cannot write the run directory")?;
                printer.maybe_print(&snap, now, args.output.json_stream);
                progress.dummies = snap
                    .dummies
                    .iter()
                    .map(|d| (d.last_sim_time_s, d.state == DummyState::Ended))
                    .collect();
                let _ = snapshots.send(snap);
                if let Some(r) = rules.check(&progress, now) {
                    break r;
                }
            }
            ev = recv_sim(&mut sim_events) => match ev {
                Some(ev) => log_notices(&view.on_event(&ev), sink.as_mut(), unix_now_ns())?,
                None => sim_events = None,
            },
            _ = &mut signals => break StopReason::Signal,
            action = actions.recv(), if actions_open => match action {
                Some(UiAction::Quit) => break StopReason::UserQuit,
                Some(UiAction::ResetStats) => {
                    agg.reset(unix_now_ns());
                    tracing::info!("statistics reset from the live view");
                }
                None => actions_open = false,
            },
        }
    };
    if let Some(h) = sim_handle {
        // Stopping the simulation makes the scripts send BYE: collect those too.
        let stopping = tokio::task::spawn_blocking(move || h.shutdown());
        let grace = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(grace);
        let mut stopping = std::pin::pin!(stopping);
        let mut stopped = false;
        loop {
            tokio::select! {
                Some(ev) = rx.recv() => { handle(&mut agg, ev, &replies, sink.as_mut(), &mut progress)?; }
                ev = recv_sim(&mut sim_events) => match ev {
                    Some(ev) => log_notices(&view.on_event(&ev), sink.as_mut(), unix_now_ns())?,
                    None => sim_events = None,
                },
                _ = &mut stopping, if !stopped => stopped = true,
                _ = &mut grace, if stopped => break,
            }
        }
        agg.set_sim(Some(view.snapshot(unix_now_ns())));
    }
    // Whatever is already queued was received: account for it before the summary.
    while let Ok(ev) = rx.try_recv() {
        handle(&mut agg, ev, &replies, sink.as_mut(), &mut progress)?;
    }
    let snapshot = agg.snapshot(unix_now_ns());
    sink.finish(&snapshot, agg.sessions(), &reason)
        .context("cannot write the run summary")?;
    let _ = snapshots.send(snapshot.clone());
    Ok(RunOutcome {
        snapshot,
        sessions: agg.sessions().to_vec(),
        reason,
    })
}

async fn recv_sim(
    events: &mut Option<mpsc::UnboundedReceiver<DriverEvent>>,
) -> Option<DriverEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn log_notices(notices: &[Notice], sink: &mut dyn RunSink, now: UnixNanos) -> anyhow::Result<()> {
    for n in notices {
        match n.level {
            NoticeLevel::Info => tracing::info!(kind = n.kind, "{}", n.message),
            NoticeLevel::Warn => tracing::warn!(kind = n.kind, "{}", n.message),
        }
        sink.notice(n, now).context("cannot write an event")?;
    }
    Ok(())
}

fn open_gate(
    gate: &mut ExpectGate,
    agg: &mut Aggregator,
    progress: &mut Progress,
    now: UnixNanos,
) -> anyhow::Result<()> {
    if let Some(open_at) = gate.poll(&agg.dummy_ids(), now)? {
        agg.set_measurement_start(open_at);
        progress.measuring_since_ns = Some(open_at);
    }
    Ok(())
}

fn metrics_config(args: &RunArgs, started: UnixNanos) -> MetricsConfig {
    MetricsConfig {
        run_start_ns: started,
        warmup_ns: args.stop.warmup.as_nanos() as i64,
        target_rtf: args.sim.reference_rtf(),
        off_target_tolerance: args.stop.rtf_tolerance,
        ..MetricsConfig::default()
    }
}

/// Handles one receiver event; returns the arrival time of a message that registered a
/// new dummy (for the --expect-dummies gate).
fn handle(
    agg: &mut Aggregator,
    ev: CollectorEvent,
    replies: &ReplySink,
    sink: &mut dyn RunSink,
    progress: &mut Progress,
) -> anyhow::Result<Option<UnixNanos>> {
    let now = unix_now_ns();
    let mut arrival = None;
    if let CollectorEvent::Message(m) = &ev {
        progress.last_message_ns = Some(m.read_ns);
        arrival = Some(m.recv_ns());
    }
    let out = agg.handle(ev, now);
    if let Some((to, bytes)) = out.reply {
        replies.send(to, &bytes);
    }
    if let Some(r) = &out.record {
        sink.record(r).context("cannot write a sample")?;
    }
    log_notices(&out.notices, sink, now)?;
    let registered = out.notices.iter().any(|n| n.kind == "dummy_registered");
    Ok(arrival.filter(|_| registered))
}

/// `--expect-dummies`: measurement starts once N dummies have announced themselves.
#[derive(Debug)]
struct ExpectGate {
    expected: Option<usize>,
    timeout: Duration,
    since_ns: UnixNanos,
    open: bool,
}

impl ExpectGate {
    fn new(expected: Option<usize>, timeout: Duration, since_ns: UnixNanos) -> Self {
        Self {
            expected,
            timeout,
            since_ns,
            open: expected.is_none(),
        }
    }

    fn is_open(&self) -> bool {
        self.open
    }

    /// `Some(now)` the moment the gate opens; an error when the wait times out.
    fn poll(&mut self, ids: &[u32], now_ns: UnixNanos) -> anyhow::Result<Option<UnixNanos>> {
        let Some(n) = self.expected.filter(|_| !self.open) else {
            return Ok(None);
        };
        if ids.len() >= n {
            self.open = true;
            tracing::info!("all {n} expected dummies are here ({ids:?}): measuring");
            return Ok(Some(now_ns));
        }
        if now_ns - self.since_ns >= self.timeout.as_nanos() as i64 {
            anyhow::bail!("{}", expect_timeout_message(n, ids, self.timeout));
        }
        Ok(None)
    }
}

/// Names who is there and who is missing, assuming ids 0..N as in the shipped scene.
fn expect_timeout_message(n: usize, ids: &[u32], timeout: Duration) -> String {
    let have: BTreeSet<u32> = ids.iter().copied().collect();
    let missing: Vec<String> = (0..n as u32)
        .filter(|i| !have.contains(i))
        .map(|i| format!("Dummy{i}"))
        .collect();
    let seen = if have.is_empty() {
        "none".to_owned()
    } else {
        have.iter()
            .map(|i| format!("Dummy{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "only {} of {n} expected dummies announced themselves within {} (seen: {seen}; missing, if ids are 0..{}: {}). \
         Is the simulation running, and do the scripts send to this bridge's --listen address?",
        have.len(),
        humantime::format_duration(timeout),
        n.saturating_sub(1),
        if missing.is_empty() { "other ids".to_owned() } else { missing.join(", ") },
    )
}

/// Plain periodic lines (no live view) and `--json-stream`.
#[derive(Debug)]
struct Printer {
    every_ns: i64,
    last_ns: UnixNanos,
}

impl Printer {
    fn new(every: Duration) -> Self {
        Self {
            every_ns: every.as_nanos().max(1) as i64,
            last_ns: 0,
        }
    }

    fn maybe_print(&mut self, s: &RunSnapshot, now_ns: UnixNanos, json: bool) {
        if now_ns - self.last_ns < self.every_ns {
            return;
        }
        self.last_ns = now_ns;
        if json {
            println!("{}", crate::output::snapshot_json_line(s));
            return;
        }
        for line in crate::output::plain_lines(s) {
            tracing::info!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_gate_opens_when_all_arrive() {
        let mut g = ExpectGate::new(Some(2), Duration::from_secs(10), 0);
        assert!(!g.is_open());
        assert_eq!(g.poll(&[0], 1).unwrap(), None);
        assert_eq!(g.poll(&[0, 1], 5).unwrap(), Some(5));
        assert!(g.is_open());
        assert_eq!(g.poll(&[0, 1], 6).unwrap(), None);
    }

    #[test]
    fn expect_timeout_names_the_missing() {
        let mut g = ExpectGate::new(Some(4), Duration::from_secs(1), 0);
        let err = g.poll(&[0, 2], 2_000_000_000).unwrap_err().to_string();
        assert!(err.contains("only 2 of 4"), "{err}");
        assert!(
            err.contains("missing, if ids are 0..3: Dummy1, Dummy3"),
            "{err}"
        );
    }
}
