//! `coppelia-bridge run`: collect timestamps from the dummies, drive CoppeliaSim, report.

mod receivers;
mod shell;
mod sink;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::output::{run_tui, RunInfo, RunMeta};

pub use crate::run::{RunOutcome, StopReason};
pub use receivers::{bind_receivers, connect_sim, Receivers, SimLink};
pub use shell::{collect_with, empty_snapshot, Channels, IncompleteRunDir, NullSink, RunSink};
pub use sink::DirSink;
pub use table::summary_table;

use crate::cli::parse_duration;
use crate::commands::probe::RemoteArgs;

/// Where and how to receive.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectArgs {
    /// UDP address to receive on (the notebook used 127.0.0.1:8888); a host name works too
    /// (localhost:8888).
    #[arg(long, default_value = "127.0.0.1:8888", env = "COPPELIA_BRIDGE_LISTEN", value_parser = crate::cli::parse::socket_addr)]
    pub listen: SocketAddr,
    /// Also accept framed TCP connections on this address (e.g. 127.0.0.1:8889).
    #[arg(long, env = "COPPELIA_BRIDGE_TCP_LISTEN", value_parser = crate::cli::parse::socket_addr)]
    pub tcp_listen: Option<SocketAddr>,
    /// UDP receive buffer to request (SO_RCVBUF), e.g. 256MiB or a number of bytes. The
    /// default holds 10 s of 1,000 dummies at 20 Hz; the effective size is logged.
    #[arg(long, default_value = "256MiB", value_parser = crate::cli::parse::bytes)]
    pub recv_buffer: usize,
    /// Largest TCP frame payload accepted (e.g. 4KiB, or bytes); a larger one closes the
    /// connection.
    #[arg(long, default_value = "4KiB", value_parser = crate::cli::parse::bytes)]
    pub max_frame: usize,
}

/// When to stop and what to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Stop after this much wall time of measurement (e.g. 30s, 10m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop once every dummy has reported this simulation time (simulated seconds: 10, 10s,
    /// 2m; the notebook's target time).
    #[arg(long, value_parser = crate::cli::parse::sim_seconds)]
    pub until_sim_time: Option<f64>,
    /// Stop when no message arrived for this long after the first one (0 = never).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Wait until this many dummies have announced themselves before measuring.
    #[arg(long)]
    pub expect_dummies: Option<usize>,
    /// Give up waiting for --expect-dummies after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub expect_timeout: Duration,
    /// Exclude this much wall time at the start of measurement from the summary.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Allowed relative deviation of the 1 s RTF from --target-rtf (0.1 = 10 %).
    #[arg(long, default_value_t = 0.1)]
    pub rtf_tolerance: f64,
}

/// What to show and write.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Run directory for samples, series, summary and report (default runs/<UTC time>/).
    #[arg(long, env = "COPPELIA_BRIDGE_OUT")]
    pub out: Option<PathBuf>,
    /// Write nothing to disk.
    #[arg(long, conflicts_with = "out")]
    pub no_out: bool,
    /// Plain periodic log lines instead of the live terminal view.
    #[arg(long)]
    pub no_tui: bool,
    /// Interval of the plain log lines.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub print_interval: Duration,
    /// Print a JSON snapshot per --print-interval on stdout (for scripts).
    #[arg(long)]
    pub json_stream: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464 or localhost:9464).
    #[arg(long, env = "COPPELIA_BRIDGE_METRICS_ADDR", value_parser = crate::cli::parse::socket_addr)]
    pub metrics_addr: Option<SocketAddr>,
    /// Name of this simulation in the live view title and Prometheus labels.
    #[arg(long, default_value = "coppeliasim", env = "COPPELIA_BRIDGE_INSTANCE")]
    pub instance: String,
}

impl OutputArgs {
    /// The live view is used when both ends of the terminal are a TTY, unless turned off.
    pub fn use_tui(&self) -> bool {
        use std::io::IsTerminal;
        !self.no_tui
            && !self.json_stream
            && std::io::stdout().is_terminal()
            && std::io::stdin().is_terminal()
    }

    /// The run directory, if any: --out, or runs/<UTC time>/.
    pub fn run_dir(&self, started_ns: crate::time::UnixNanos) -> Option<PathBuf> {
        if self.no_out {
            return None;
        }
        Some(self.out.clone().unwrap_or_else(|| {
            crate::output::default_run_dir(std::path::Path::new("runs"), started_ns as f64 / 1e9)
        }))
    }
}

/// How to drive CoppeliaSim through its ZeroMQ remote API.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Scene to load first (a path CoppeliaSim can read), if the simulation is stopped.
    #[arg(long)]
    pub scene: Option<PathBuf>,
    /// Do not start a stopped simulation (wait for someone else to start it).
    #[arg(long)]
    pub no_start: bool,
    /// Lockstep: the bridge calls sim.step itself (paced by --target-rtf if given).
    #[arg(long)]
    pub stepping: bool,
    /// RTF the run aims for: the pace of --stepping (0 = as fast as possible), and the
    /// reference for highlighting dummies off target (default 1).
    #[arg(long)]
    pub target_rtf: Option<f64>,
    /// Polls of the simulation clock and state per second.
    #[arg(long, default_value_t = 10.0)]
    pub poll_hz: f64,
}

impl SimArgs {
    /// The reference RTF for "off target" (1 unless a positive --target-rtf is given).
    pub fn reference_rtf(&self) -> f64 {
        self.target_rtf.filter(|t| *t > 0.0).unwrap_or(1.0)
    }

    pub fn driver_options(&self) -> crate::remote_api::driver::DriverOptions {
        let mut o = self.remote.driver_options();
        o.scene = self.scene.clone();
        o.start_if_stopped = !self.no_start;
        o.stepping = self.stepping.then(|| self.target_rtf.unwrap_or(0.0));
        o.poll_rate_hz = self.poll_hz;
        o
    }
}

/// Gates for CI: a run that misses one ends with exit status 3 and says which.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GateArgs {
    /// Gate: every dummy's total RTF, and the simulation's, at least X (e.g. 0.95).
    #[arg(long, value_name = "X")]
    pub min_rtf: Option<f64>,
    /// Gate: every dummy's loss, and the whole run's, at most PCT percent (e.g. 1).
    #[arg(long, value_name = "PCT")]
    pub max_loss: Option<f64>,
    /// Gate: every dummy's one-way latency p99, and the whole run's, at most this (e.g. 2ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_latency_p99: Option<Duration>,
    /// Succeed even when no dummy sent anything (otherwise exit status 1, with the likely
    /// causes).
    #[arg(long)]
    pub allow_empty: bool,
}

impl GateArgs {
    pub fn gates(&self) -> crate::run::Gates {
        crate::run::Gates {
            min_rtf: self.min_rtf,
            max_loss_pct: self.max_loss,
            max_latency_p99: self.max_latency_p99,
        }
    }

    /// What the end of a run means for the process: its exit status (0, or 3 for a missed
    /// gate) after printing the verdict (on stderr with `--json-stream`, whose stdout is
    /// JSON), or an error for a run that measured nothing.
    pub fn conclude(&self, outcome: &RunOutcome, json_stream: bool) -> anyhow::Result<ExitCode> {
        if outcome.is_empty() && !self.allow_empty {
            anyhow::bail!("{}", empty_run_message(outcome));
        }
        let v = &outcome.verdict;
        if v.gates == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let lines = v
            .failures
            .iter()
            .map(ToString::to_string)
            .chain([v.headline()]);
        for line in lines {
            if json_stream {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        Ok(if v.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_GATE_FAILED)
        })
    }
}

/// Exit status of a run that missed a gate (1 is a runtime error, 2 a usage error).
pub const EXIT_GATE_FAILED: u8 = 3;

/// Why nothing was measured, most likely, and what to check.
fn empty_run_message(outcome: &RunOutcome) -> String {
    let rejected: u64 = outcome.snapshot.rejected.iter().map(|r| r.total).sum();
    let seen = if rejected > 0 {
        format!(
            "{rejected} messages arrived but none was a dummy's: see `rejected` in the \
             summary (another format? a legacy sender whose id never arrived?)"
        )
    } else {
        "nothing arrived".to_owned()
    };
    format!(
        "no dummy sent anything ({seen}). Check that the scripts send to this bridge's \
         address (--listen; the scene's port{{…}}/host{{…}} or -Gcoppelia_bridge.port=…), \
         that the simulation was running, that no firewall drops the datagrams, and that \
         the scripts speak v1 or the notebook's legacy format. --allow-empty accepts an \
         empty run"
    )
}

/// Flags of `coppelia-bridge run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub stop: StopArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub sim: SimArgs,
    #[command(flatten)]
    pub gates: GateArgs,
    /// Only collect: do not talk to CoppeliaSim.
    #[arg(long, conflicts_with_all = ["scene", "no_start", "stepping"])]
    pub no_remote: bool,
}

/// Runs `coppelia-bridge run`.
pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = rt.block_on(run(&args))?;
    args.gates.conclude(&outcome, args.output.json_stream)
}

/// A whole run: receivers, CoppeliaSim (unless --no-remote), live view or plain lines,
/// run directory with report, Prometheus; prints the summary table at the end.
pub async fn run(args: &RunArgs) -> anyhow::Result<RunOutcome> {
    let prepared = Prepared::new(&args.output)?;
    let receivers = bind_receivers(&args.collect).await?;
    prepared.run(args, receivers).await
}

/// What is decided before anything is bound: start time, live view or not, run directory,
/// logging (the live view owns the terminal; the run directory gets bridge.log).
#[derive(Debug)]
pub struct Prepared {
    started: crate::time::UnixNanos,
    tui: bool,
    dir: Option<PathBuf>,
    _log_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl Prepared {
    pub fn new(output: &OutputArgs) -> anyhow::Result<Self> {
        let started = crate::time::unix_now_ns();
        let tui = output.use_tui();
        let dir = output.run_dir(started);
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).with_context(|| {
                format!(
                    "cannot create the run directory {} (choose another with --out, or --no-out)",
                    d.display()
                )
            })?;
        }
        let log_guard = crate::commands::init_tracing(!tui, dir.as_deref())?;
        Ok(Self {
            started,
            tui,
            dir,
            _log_guard: log_guard,
        })
    }

    /// Connects to CoppeliaSim (unless --no-remote) and collects on `receivers`.
    pub async fn run(self, args: &RunArgs, receivers: Receivers) -> anyhow::Result<RunOutcome> {
        let sim = if args.no_remote {
            None
        } else {
            Some(connect_sim(&args.sim).await?)
        };
        let started = self.started;
        let sink: Box<dyn RunSink> = match &self.dir {
            Some(d) => Box::new(
                DirSink::create(d, RunMeta::for_this_process(started as f64 / 1e9, settings(args)), started)
                    .with_context(|| format!("cannot create the run directory {} (choose another with --out, or --no-out)", d.display()))?,
            ),
            None => Box::new(NullSink),
        };
        let (snap_tx, snap_rx) = tokio::sync::watch::channel(empty_snapshot());
        let (view_tx, view_rx) = tokio::sync::watch::channel(empty_snapshot());
        let (ui_tx, ui_rx) = tokio::sync::mpsc::channel(16);
        if let Some(addr) = args.output.metrics_addr {
            let server = crate::output::prometheus::MetricsServer::bind(addr).await?;
            tracing::info!(
                "Prometheus metrics on http://{}/metrics",
                server.local_addr()
            );
            tokio::spawn(server.serve(snap_rx.clone(), args.output.instance.clone()));
        }
        let view = self.tui.then(|| {
            let info = RunInfo {
                instance: args.output.instance.clone(),
                duration_s: args.stop.duration.map(|d| d.as_secs_f64()),
                listen: format!("udp {}", receivers.udp_addr),
            };
            tokio::spawn(run_tui(view_rx, ui_tx.clone(), info))
        });
        drop(ui_tx);
        let channels = Channels {
            snapshots: snap_tx,
            view: view.is_some().then_some(view_tx),
            ui: ui_rx,
        };
        let outcome = collect_with(args, receivers, sim, sink, channels).await;
        if let Some(view) = view {
            // The view ends once the snapshot sender is gone; the terminal is restored after.
            if let Ok(Err(e)) = view.await {
                tracing::warn!("live view: {e}");
            }
        }
        let outcome = match outcome.map_err(|e| e.downcast::<IncompleteRunDir>()) {
            Ok(outcome) => outcome,
            // Shown as any other run (table or last JSON line), then the run fails.
            Err(Ok(incomplete)) => {
                report_outcome(&args.output, &incomplete.outcome);
                return Err(incomplete.into());
            }
            Err(Err(e)) => return Err(e),
        };
        report_outcome(&args.output, &outcome);
        if let Some(d) = &self.dir {
            match crate::output::write_report(d) {
                Ok(path) => eprintln!("run directory: {}  report: {}", d.display(), path.display()),
                Err(e) => tracing::warn!("cannot write the report: {e}"),
            }
        }
        Ok(outcome)
    }
}

/// Effective settings recorded in summary.json.
fn settings(args: &RunArgs) -> std::collections::BTreeMap<String, serde_json::Value> {
    use serde_json::json;
    let dur = |d: Option<Duration>| d.map(|d| humantime::format_duration(d).to_string());
    [
        ("listen", json!(args.collect.listen.to_string())),
        (
            "tcp_listen",
            json!(args.collect.tcp_listen.map(|a| a.to_string())),
        ),
        (
            "remote",
            json!((!args.no_remote).then(|| args.sim.remote.remote.clone())),
        ),
        (
            "scene",
            json!(args.sim.scene.as_ref().map(|p| p.display().to_string())),
        ),
        ("stepping", json!(args.sim.stepping)),
        ("target_rtf", json!(args.sim.reference_rtf())),
        ("duration", json!(dur(args.stop.duration))),
        ("until_sim_time_s", json!(args.stop.until_sim_time)),
        ("idle_timeout", json!(dur(Some(args.stop.idle_timeout)))),
        ("expect_dummies", json!(args.stop.expect_dummies)),
        ("warmup", json!(dur(Some(args.stop.warmup)))),
        ("instance", json!(args.output.instance)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
/// End of run: the table for people, or one last JSON line with `--json-stream`.
fn report_outcome(output: &OutputArgs, outcome: &RunOutcome) {
    if output.json_stream {
        eprint!("{}", summary_table(&outcome.snapshot));
        if let Ok(line) = serde_json::to_string(&outcome.snapshot) {
            println!("{line}");
        }
    } else {
        print!("{}", summary_table(&outcome.snapshot));
    }
    tracing::info!("run stopped: {}", outcome.reason);
}
