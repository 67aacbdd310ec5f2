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

use crate::output::prometheus::ExportLabels;
use crate::output::{run_tui, RunInfo, RunMeta};

pub use crate::run::{RunOutcome, StopReason};
pub use receivers::{bind_receivers, connect_sim, Receivers, SimLink};
pub use shell::{collect_with, empty_snapshot, Channels, IncompleteRunDir, NullSink, RunSink};
pub use sink::DirSink;
pub use table::summary_table;

use crate::cli::parse_duration;
use crate::collector::{AllowList, Cidr, Exposure, ExposureError, DEFAULT_TCP_MAX_CONNS};
use crate::commands::probe::RemoteArgs;
use crate::metrics::aggregator::{Admission, DEFAULT_MAX_DUMMIES};

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
    /// Largest TCP frame payload accepted (e.g. 4KiB, or bytes; at most 1MiB); a larger
    /// one closes that connection only.
    #[arg(long, default_value = "4KiB", value_parser = parse_max_frame)]
    pub max_frame: usize,
    /// Accept traffic from this network on listeners that are not loopback: --listen,
    /// --tcp-listen and --metrics-addr (repeatable or comma-separated; e.g. 10.0.0.0/24,
    /// 192.168.1.7, fd00::/8). Loopback is always accepted; anything else is dropped before
    /// parsing and counted. Needed (or --allow-any) to listen on anything but loopback.
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        env = "COPPELIA_BRIDGE_ALLOW"
    )]
    pub allow: Vec<Cidr>,
    /// Accept every source on listeners that are not loopback (instead of --allow). Anyone
    /// who can reach the port can then feed the bridge: see docs/RELIABILITY.md.
    #[arg(long, conflicts_with = "allow")]
    pub allow_any: bool,
    /// Let another host take over a dummy id whose source has been silent for 2 s. By
    /// default an id belongs, for the whole run, to the host that first sent for it.
    #[arg(long)]
    pub allow_roaming: bool,
    /// Most dummy ids tracked; messages for further new ids are refused and counted. Each
    /// dummy costs up to 32 KiB, so the default bounds a flood of invented ids to ~320 MiB.
    #[arg(long, default_value_t = DEFAULT_MAX_DUMMIES, value_parser = parse_positive)]
    pub max_dummies: usize,
    /// Most TCP connections open at once; more are closed at accept and counted (raise
    /// `ulimit -n` with it).
    #[arg(long, default_value_t = DEFAULT_TCP_MAX_CONNS, value_parser = parse_positive)]
    pub tcp_max_conns: usize,
    /// Close a TCP connection that sent nothing for this long (0 = never). A script whose
    /// connection was closed reconnects and starts a new session: keep it above any pause.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub tcp_idle_timeout: Duration,
    /// Close a TCP connection whose frame, once begun, is not complete within this long
    /// (a stalled or deliberately slow sender holding buffer).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub tcp_frame_timeout: Duration,
}

/// Largest `--max-frame`: 1 MiB, so `--tcp-max-conns` partial frames stay bounded.
pub const MAX_MAX_FRAME: usize = 1 << 20;

fn parse_max_frame(s: &str) -> Result<usize, String> {
    let n = crate::cli::parse::bytes(s)?;
    if (1..=MAX_MAX_FRAME).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{s:?} is {n} bytes, outside 1..={MAX_MAX_FRAME} (1MiB); v1 messages are at most \
             85 bytes, so the default 4KiB is plenty"
        ))
    }
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive whole number")),
    }
}

impl CollectArgs {
    /// What --allow and --allow-any say.
    pub fn exposure(&self) -> Exposure {
        Exposure {
            allow: self.allow.clone(),
            allow_any: self.allow_any,
        }
    }

    /// The filter of the listener `flag` bound to `addr`; an error says what to add when it
    /// is not loopback and neither --allow nor --allow-any was given.
    pub fn filter_for(
        &self,
        flag: &'static str,
        addr: SocketAddr,
    ) -> Result<AllowList, ExposureError> {
        self.exposure().filter_for(flag, addr)
    }

    /// How dummy ids are admitted (--max-dummies, --allow-roaming).
    pub fn admission(&self) -> Admission {
        Admission {
            max_dummies: self.max_dummies,
            allow_roaming: self.allow_roaming,
        }
    }
}

/// When to stop and what to measure.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Stop after this much wall time of measurement (e.g. 30s, 10m), counted from the start
    /// of measurement (when the sockets are bound, or when the last --expect-dummies
    /// announced itself). The stop is decided at that moment; the passes CoppeliaSim runs
    /// while it stops are still counted (the pass in flight and the two it runs after a
    /// stop request), and every dummy's BYE: a 5 s run at dt 0.05 s has 104 per dummy.
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
    /// How the run directory keeps every received message: samples.csv, or samples.bin
    /// (fixed binary records, several times cheaper per message; `coppelia-bridge convert
    /// DIR` writes the same samples.csv from it).
    #[arg(long, value_enum, default_value_t, conflicts_with = "no_out")]
    pub samples_format: crate::output::SamplesFormat,
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
    /// Name of this simulation in the live view title and the `instance` label of every
    /// Prometheus metric (use the simulation host's name when several bridges feed one
    /// Prometheus).
    #[arg(long, default_value = "coppeliasim", env = "COPPELIA_BRIDGE_INSTANCE")]
    pub instance: String,
    /// The `scene` label of every Prometheus metric (default: the --scene file's name
    /// without its extension, or `unknown`).
    #[arg(long, env = "COPPELIA_BRIDGE_SCENE_LABEL")]
    pub scene_label: Option<String>,
    /// Also write the final table as a Markdown table to FILE (as hyperfine's
    /// --export-markdown); replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Also write the final table as CSV to FILE (full precision, empty cell = unavailable);
    /// replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,
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

    /// The export files asked for, with the flag that names each and its format.
    pub fn exports(&self) -> Vec<(&'static str, &std::path::Path, ExportFormat)> {
        let md = self
            .export_markdown
            .as_deref()
            .map(|p| ("--export-markdown", p, ExportFormat::Markdown));
        let csv = self
            .export_csv
            .as_deref()
            .map(|p| ("--export-csv", p, ExportFormat::Csv));
        md.into_iter().chain(csv).collect()
    }

    /// Refuses, before anything is measured, an export whose directory does not exist.
    pub fn check_exports(&self) -> anyhow::Result<()> {
        for (flag, path, _) in self.exports() {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            anyhow::ensure!(
                dir.is_dir() && !path.is_dir(),
                "cannot write {flag} {}: {} (create the directory first, or name a file in an existing one)",
                path.display(),
                if path.is_dir() { "it is a directory" } else { "its directory does not exist" }
            );
        }
        Ok(())
    }

    /// Writes the final table to every export file asked for, each atomically.
    pub fn write_exports(&self, snapshot: &crate::metrics::RunSnapshot) -> anyhow::Result<()> {
        let dummies: Vec<&crate::metrics::DummySnapshot> = snapshot.dummies.iter().collect();
        for (flag, path, format) in self.exports() {
            let text = format.render(&dummies);
            crate::output::write_atomic(path, text.as_bytes()).map_err(|e| match e {
                crate::output::OutputError::Io { op, source, .. } => anyhow::anyhow!(
                    "cannot write {flag} {}: {op} failed: {source} (check the directory is writable)",
                    path.display()
                ),
                other => anyhow::Error::new(other),
            })?;
        }
        Ok(())
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

/// A file format of the final table (`--export-markdown`, `--export-csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Markdown,
    Csv,
}

impl ExportFormat {
    /// The final table's columns ([`FINAL_TABLE`](crate::output::columns::FINAL_TABLE)) in
    /// this format.
    pub fn render(self, dummies: &[&crate::metrics::DummySnapshot]) -> String {
        use crate::output::columns::{csv_table, markdown_table, FINAL_TABLE};
        match self {
            ExportFormat::Markdown => markdown_table(FINAL_TABLE, dummies),
            ExportFormat::Csv => csv_table(FINAL_TABLE, dummies),
        }
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
                print_stdout(&format!("{line}\n"));
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
    check_exposure(args)?;
    let prepared = Prepared::new(&args.output)?;
    let receivers = bind_receivers(&args.collect).await?;
    prepared.run(args, receivers).await
}

/// Refuses, before anything is created or bound, to listen beyond loopback without --allow
/// or --allow-any.
pub fn check_exposure(args: &RunArgs) -> Result<(), ExposureError> {
    let c = &args.collect;
    c.filter_for("--listen", c.listen)?;
    if let Some(a) = c.tcp_listen {
        c.filter_for("--tcp-listen", a)?;
    }
    if let Some(a) = args.output.metrics_addr {
        c.filter_for("--metrics-addr", a)?;
    }
    Ok(())
}

/// What is decided before anything is bound: start time, live view or not, run directory,
/// logging (the live view owns the terminal; the run directory gets bridge.log).
#[derive(Debug)]
pub struct Prepared {
    started: crate::time::UnixNanos,
    tui: bool,
    dir: Option<PathBuf>,
    /// Settings of the caller recorded beside the run's own (e.g. `demo`'s fault flags).
    extra_settings: std::collections::BTreeMap<String, serde_json::Value>,
    _log_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    /// Log lines on stderr go through a thread while the run measures (none with the live
    /// view, which owns the terminal and logs only to bridge.log).
    stderr_queue: Option<crate::output::stderr_log::QueuedStderr>,
}

impl Prepared {
    pub fn new(output: &OutputArgs) -> anyhow::Result<Self> {
        output.check_exports()?;
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
        let stderr_queue = if tui {
            None
        } else {
            crate::output::stderr_log::QueuedStderr::start(crate::output::stderr_log::QUEUED_LINES)
        };
        Ok(Self {
            started,
            tui,
            dir,
            extra_settings: Default::default(),
            _log_guard: log_guard,
            stderr_queue,
        })
    }

    /// Records `key: value` in summary.json's `settings` (beside the run's own).
    pub fn record_setting(&mut self, key: &str, value: serde_json::Value) {
        self.extra_settings.insert(key.to_owned(), value);
    }

    /// Connects to CoppeliaSim (unless --no-remote) and collects on `receivers`.
    pub async fn run(mut self, args: &RunArgs, receivers: Receivers) -> anyhow::Result<RunOutcome> {
        let sim = if args.no_remote {
            None
        } else {
            Some(connect_sim(&args.sim).await?)
        };
        let started = self.started;
        let mut settings = settings(args, &receivers);
        settings.extend(self.extra_settings.clone());
        let sink: Box<dyn RunSink> = match &self.dir {
            Some(d) => Box::new(
                DirSink::create(d, RunMeta::for_this_process(started as f64 / 1e9, settings), started, args.output.samples_format)
                    .with_context(|| format!("cannot create the run directory {} (choose another with --out, or --no-out)", d.display()))?,
            ),
            None => Box::new(NullSink),
        };
        let (snap_tx, snap_rx) = tokio::sync::watch::channel(empty_snapshot());
        let (view_tx, view_rx) = tokio::sync::watch::channel(empty_snapshot());
        let (ui_tx, ui_rx) = tokio::sync::mpsc::channel(16);
        if let Some(addr) = args.output.metrics_addr {
            let allow = args.collect.filter_for("--metrics-addr", addr)?;
            let server = crate::output::prometheus::MetricsServer::bind(addr)
                .await?
                .with_allow(allow)
                .with_status(receivers.status_sender());
            if let Some(line) = args
                .collect
                .exposure()
                .describe("Prometheus", server.local_addr())
            {
                tracing::warn!(kind = "warning", "{line}");
            }
            tracing::info!(
                "Prometheus metrics on http://{}/metrics",
                server.local_addr()
            );
            tokio::spawn(server.serve(snap_rx.clone(), export_labels(args)));
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
        // Measured: log lines go direct again, after the queued ones, in order with the end
        // of the run's output below.
        drop(self.stderr_queue.take());
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
        // After the run directory: a failed export leaves the measurement on disk.
        args.output.write_exports(&outcome.snapshot)?;
        Ok(outcome)
    }
}

/// Labels of the Prometheus metrics: `--instance`, the scene (`--scene-label`, else the
/// `--scene` file's stem), and the target RTF.
pub fn export_labels(args: &RunArgs) -> ExportLabels {
    let scene = args.output.scene_label.clone().unwrap_or_else(|| {
        args.sim
            .scene
            .as_deref()
            .map(ExportLabels::scene_of_path)
            .unwrap_or_else(|| ExportLabels::UNKNOWN_SCENE.to_owned())
    });
    ExportLabels {
        target_rtf: args.sim.reference_rtf(),
        ..ExportLabels::new(args.output.instance.clone(), scene)
    }
}

/// Effective settings recorded in summary.json: the flags as given, and the addresses the
/// sockets were actually bound to (`--listen 127.0.0.1:0` names no port).
fn settings(
    args: &RunArgs,
    receivers: &Receivers,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    use serde_json::json;
    let dur = |d: Option<Duration>| d.map(|d| humantime::format_duration(d).to_string());
    [
        ("listen", json!(args.collect.listen.to_string())),
        ("udp_bound", json!(receivers.udp_addr.to_string())),
        (
            "tcp_listen",
            json!(args.collect.tcp_listen.map(|a| a.to_string())),
        ),
        (
            "tcp_bound",
            json!(receivers.tcp_addr.map(|a| a.to_string())),
        ),
        (
            "allow",
            json!(args
                .collect
                .allow
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
        ),
        ("allow_any", json!(args.collect.allow_any)),
        ("allow_roaming", json!(args.collect.allow_roaming)),
        ("max_dummies", json!(args.collect.max_dummies)),
        ("max_frame", json!(args.collect.max_frame)),
        ("tcp_max_conns", json!(args.collect.tcp_max_conns)),
        (
            "tcp_idle_timeout",
            json!(dur(Some(args.collect.tcp_idle_timeout))),
        ),
        (
            "tcp_frame_timeout",
            json!(dur(Some(args.collect.tcp_frame_timeout))),
        ),
        (
            "metrics_addr",
            json!(args.output.metrics_addr.map(|a| a.to_string())),
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
        (
            "samples_format",
            json!((!args.output.no_out).then_some(args.output.samples_format)),
        ),
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
            print_stdout(&format!("{line}\n"));
        }
    } else {
        print_stdout(&summary_table(&outcome.snapshot));
    }
    tracing::info!("run stopped: {}", outcome.reason);
}

/// Prints `text` on stdout; a stdout that is closed (`run … | head`) or fails is warned
/// about, not a panic: the report and the exports are written after this.
fn print_stdout(text: &str) {
    if let Err(e) = crate::commands::write_stdout(text.as_bytes()) {
        tracing::warn!(
            kind = "warning",
            "cannot print the run's end on stdout ({e}); the run directory and exports are written all the same"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        W::try_parse_from(std::iter::once("run").chain(args.iter().copied())).map(|w| w.a)
    }

    #[test]
    fn defaults_are_the_library_constants() {
        let a = parse(&[]).unwrap().collect;
        assert_eq!(
            a.tcp_idle_timeout,
            crate::collector::DEFAULT_TCP_IDLE_TIMEOUT
        );
        assert_eq!(
            a.tcp_frame_timeout,
            crate::collector::DEFAULT_TCP_FRAME_TIMEOUT
        );
        assert_eq!(a.admission(), Admission::default());
        assert_eq!(a.tcp_max_conns, DEFAULT_TCP_MAX_CONNS);
        assert!(a.allow.is_empty() && !a.allow_any && !a.allow_roaming);
    }

    #[test]
    fn allow_is_repeatable_and_comma_separated() {
        let a = parse(&["--allow", "10.0.0.0/24,fd00::/8", "--allow", "192.168.1.7"])
            .unwrap()
            .collect;
        let shown: Vec<String> = a.allow.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/24", "fd00::/8", "192.168.1.7/32"]);
        let e = parse(&["--allow", "10.0.0.1/24"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("host bits"), "{e}");
        assert!(parse(&["--allow", "10.0.0.0/8", "--allow-any"]).is_err());
    }

    #[test]
    fn exposure_is_checked_for_every_listener_before_anything_starts() {
        let lo = parse(&["--tcp-listen", "127.0.0.1:0", "--metrics-addr", "[::1]:0"]).unwrap();
        assert!(check_exposure(&lo).is_ok());
        for (flag, args) in [
            ("--listen", vec!["--listen", "0.0.0.0:8888"]),
            ("--tcp-listen", vec!["--tcp-listen", "[::]:8889"]),
            ("--metrics-addr", vec!["--metrics-addr", "192.0.2.1:9464"]),
        ] {
            let e = check_exposure(&parse(&args).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(flag) && e.contains("--allow"), "{e}");
            let mut allowed = args.clone();
            allowed.extend(["--allow", "10.0.0.0/24"]);
            assert!(check_exposure(&parse(&allowed).unwrap()).is_ok());
            let mut any = args.clone();
            any.push("--allow-any");
            assert!(check_exposure(&parse(&any).unwrap()).is_ok());
        }
    }

    #[test]
    fn sizes_and_counts_are_bounded() {
        assert!(parse(&["--max-frame", "1048576"]).is_ok());
        let e = parse(&["--max-frame", "4294967295"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("1..=1048576"), "{e}");
        assert!(parse(&["--max-dummies", "0"]).is_err());
        assert!(parse(&["--tcp-max-conns", "0"]).is_err());
    }
}
