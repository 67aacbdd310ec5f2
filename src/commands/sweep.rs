//! `coppelia-bridge sweep`: one measured run per combination of dummies × dt × transport,
//! against the built-in stand-in (the `demo` wiring, in-process) or a real CoppeliaSim
//! (`--remote`: a scene generated per combination and loaded through the remote API). Each
//! run gets its own run directory under the sweep directory; after every run `sweep.csv`,
//! `sweep.json` and `sweep.html` are rewritten, so an interrupted sweep keeps what it
//! measured. A run that fails becomes a row with its error; the sweep goes on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::demo::{demo_measured, DemoArgs};
use super::run::{bind_receivers, Prepared, RunArgs, RunOutcome};
use crate::cli::parse_duration;
use crate::output::sweep::{write_sweep_files, SweepDoc, SWEEP_HTML};
use crate::scene::{generate_scene, SceneOptions, Transport};
use crate::sweep::{expand, failed_row, row_from_run, Combination, RunFigures, SweepSpec};
use crate::time::{cpu_time_s, CpuOf};

/// Flags of `coppelia-bridge sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// Numbers of dummies to sweep, comma-separated (e.g. 1,10,100,1000).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub dummies: Vec<u32>,
    /// Simulation time steps to sweep, seconds, comma-separated (e.g. 0.05,0.01).
    #[arg(long, value_delimiter = ',', default_value = "0.05", value_parser = crate::cli::parse::sim_seconds)]
    pub dt: Vec<f64>,
    /// Transports to sweep, comma-separated: udp, tcp.
    #[arg(long, value_delimiter = ',', default_value = "udp", value_enum)]
    pub transport: Vec<Transport>,
    /// Measurement length of each run, once every dummy has announced itself (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Run the simulation in real time (the default).
    #[arg(long, conflicts_with = "max_speed")]
    pub realtime: bool,
    /// Run the simulation as fast as it goes (stand-in unpaced; CoppeliaSim with real-time
    /// mode off): how many passes per second the bridge keeps up with.
    #[arg(long)]
    pub max_speed: bool,
    /// Sweep a real CoppeliaSim at this remote API endpoint (e.g. tcp://127.0.0.1:23000)
    /// instead of the built-in stand-in. Each combination's scene is generated into its run
    /// directory and loaded through the remote API, so CoppeliaSim must see that path (same
    /// host or shared file system) and be stopped between runs.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// With --remote: address the bridge receives on; the generated scenes send to it.
    #[arg(long, default_value = "127.0.0.1:0", value_parser = crate::cli::parse::socket_addr)]
    pub listen: SocketAddr,
    /// Give up on a run whose dummies have not all announced themselves after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub expect_timeout: Duration,
    /// Sweep directory (default sweeps/<UTC time>/); every run gets a subdirectory.
    #[arg(long, env = "COPPELIA_BRIDGE_SWEEP_OUT")]
    pub out: Option<PathBuf>,
    /// Pause between runs, so sockets and the simulator settle.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub pause: Duration,
}

impl SweepArgs {
    fn spec(&self) -> SweepSpec {
        SweepSpec {
            dummies: self.dummies.clone(),
            dt_s: self.dt.clone(),
            transports: self.transport.clone(),
        }
    }

    fn settings(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        use serde_json::json;
        [
            (
                "duration",
                json!(humantime::format_duration(self.duration).to_string()),
            ),
            (
                "speed",
                json!(if self.max_speed {
                    "max_speed"
                } else {
                    "realtime"
                }),
            ),
            (
                "target",
                json!(self.remote.clone().unwrap_or_else(|| "standin".to_owned())),
            ),
            ("target_rtf", json!(1.0)),
            ("version", json!(env!("CARGO_PKG_VERSION"))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Runs `coppelia-bridge sweep`: exit status 0 when every run measured something, 1 when
/// some failed (they are in the table with their error).
pub fn execute(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let combos = expand(&args.spec())?;
    let started = crate::time::unix_now_ns();
    let dir = args.out.clone().unwrap_or_else(|| {
        crate::output::default_run_dir(Path::new("sweeps"), crate::time::ns_to_s(started))
    });
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "cannot create the sweep directory {} (choose another with --out)",
            dir.display()
        )
    })?;
    // One log for the whole sweep: the subscriber is global, so the runs' own bridge.log
    // stay empty.
    let _guard = super::init_tracing(true, Some(&dir))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let doc = rt.block_on(sweep(&args, &combos, &dir, started))?;
    let failed = doc.rows.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "sweep: {} runs, {failed} failed; table {}",
        doc.rows.len(),
        dir.join(SWEEP_HTML).display()
    );
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} runs failed (their errors are in {}): the other rows are valid",
            doc.rows.len(),
            dir.join(SWEEP_HTML).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every combination in order and returns the table (also written into `dir` after
/// each run). Never stops at a failed run.
pub async fn sweep(
    args: &SweepArgs,
    combos: &[Combination],
    dir: &Path,
    started_ns: crate::time::UnixNanos,
) -> anyhow::Result<SweepDoc> {
    let started_utc = crate::output::format::utc_rfc3339(crate::time::ns_to_s(started_ns));
    let mut doc = SweepDoc::new(started_utc, args.settings());
    for (i, &c) in combos.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(args.pause).await;
        }
        tracing::info!(
            "sweep run {}/{}: {} dummies, dt {} s, {}",
            c.index,
            combos.len(),
            c.dummies,
            c.dt_s,
            crate::sweep::transport_str(c.transport)
        );
        let row = measure(args, c, &dir.join(c.dir_name())).await;
        if let Some(e) = &row.error {
            tracing::warn!("sweep run {} failed: {e}", c.index);
        }
        doc.rows.push(row);
        write_sweep_files(dir, &doc)?;
    }
    Ok(doc)
}

/// One combination: its row, measured or failed.
async fn measure(args: &SweepArgs, c: Combination, run_dir: &Path) -> crate::sweep::SweepRow {
    let cpu_before = cpu_time_s(CpuOf::Process);
    // Bounded: the run's own limits plus a margin for start-up and writing the report.
    let limit = args.expect_timeout + args.duration + Duration::from_secs(60);
    let result = match tokio::time::timeout(limit, run_one(args, c, run_dir)).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "the run did not finish within {} (its expect timeout + duration + 60 s)",
            humantime::format_duration(limit)
        )),
    };
    let cpu_after = cpu_time_s(CpuOf::Process);
    match result {
        Ok((outcome, _)) if outcome.is_empty() => failed_row(
            c,
            "no dummy sent anything: the scripts did not reach the bridge (see bridge.log \
             in the sweep directory)",
        ),
        Ok((outcome, other_cpu_s)) => {
            let bridge_cpu_s = cpu_before
                .zip(cpu_after)
                .map(|(b, a)| (a - b - other_cpu_s.unwrap_or(0.0)).max(0.0));
            row_from_run(
                c,
                RunFigures {
                    snapshot: &outcome.snapshot,
                    bridge_cpu_s,
                },
            )
        }
        Err(e) => failed_row(c, &format!("{e:#}")),
    }
}

/// Runs one combination; returns its outcome and the CPU seconds spent in-process by
/// something other than the bridge (the stand-in's simulation thread).
async fn run_one(
    args: &SweepArgs,
    c: Combination,
    run_dir: &Path,
) -> anyhow::Result<(RunOutcome, Option<f64>)> {
    match &args.remote {
        None => {
            let demo = demo_measured(&demo_args(args, c, run_dir)?).await?;
            Ok((demo.run, demo.standin.cpu_s))
        }
        Some(url) => Ok((run_remote(args, url, c, run_dir).await?, None)),
    }
}

/// The `demo` a combination is, parsed by clap so defaults cannot drift from `demo --help`.
pub fn demo_args(args: &SweepArgs, c: Combination, run_dir: &Path) -> anyhow::Result<DemoArgs> {
    #[derive(clap::Parser)]
    struct DemoCli {
        #[command(flatten)]
        demo: DemoArgs,
    }
    let mut argv: Vec<String> = [
        "demo",
        "--no-tui",
        "--print-interval",
        "1h",
        "--dummies",
        &c.dummies.to_string(),
        "--dt",
        &c.dt_s.to_string(),
        "--duration",
        &humantime::format_duration(args.duration).to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    argv.push("--out".into());
    argv.push(run_dir.display().to_string());
    if c.transport == Transport::Tcp {
        argv.push("--tcp".into());
    }
    if args.max_speed {
        argv.push("--max-speed".into());
    }
    Ok(<DemoCli as clap::Parser>::try_parse_from(argv)
        .context("cannot build the demo settings of a sweep run")?
        .demo)
}

/// A combination against a real CoppeliaSim: bind, generate the scene pointing at the bound
/// port, let the run load it through the remote API, start, measure and stop.
async fn run_remote(
    args: &SweepArgs,
    url: &str,
    c: Combination,
    run_dir: &Path,
) -> anyhow::Result<RunOutcome> {
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create the run directory {}", run_dir.display()))?;
    let mut run_args = remote_run_args(args, url, c, run_dir)?;
    let prepared = Prepared::new(&run_args.output)?;
    let receivers = bind_receivers(&run_args.collect).await?;
    let port = receivers.tcp_addr.unwrap_or(receivers.udp_addr).port();
    let scene = run_dir.join("scene.simscene.xml");
    let scene = std::path::absolute(&scene).unwrap_or(scene);
    let xml = generate_scene(&SceneOptions {
        dummies: c.dummies,
        host: args.listen.ip().to_string(),
        port,
        transport: c.transport,
        dt_s: c.dt_s,
        real_time: !args.max_speed,
        ..SceneOptions::default()
    });
    std::fs::write(&scene, xml)
        .with_context(|| format!("cannot write the generated scene {}", scene.display()))?;
    run_args.sim.scene = Some(scene);
    prepared.run(&run_args, receivers).await
}

fn remote_run_args(
    args: &SweepArgs,
    url: &str,
    c: Combination,
    run_dir: &Path,
) -> anyhow::Result<RunArgs> {
    #[derive(clap::Parser)]
    struct RunCli {
        #[command(flatten)]
        run: RunArgs,
    }
    anyhow::ensure!(
        !args.listen.ip().is_unspecified(),
        "--listen {} is a wildcard address, which the generated scenes cannot send to: give \
         the address of this host that CoppeliaSim reaches (e.g. 127.0.0.1:0)",
        args.listen
    );
    let listen = args.listen.to_string();
    let mut argv: Vec<String> = [
        "run",
        "--no-tui",
        "--print-interval",
        "1h",
        "--listen",
        &listen,
        "--remote",
        url,
        "--expect-dummies",
        &c.dummies.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (flag, d) in [
        ("--duration", args.duration),
        ("--expect-timeout", args.expect_timeout),
    ] {
        argv.push(flag.into());
        argv.push(humantime::format_duration(d).to_string());
    }
    argv.push("--out".into());
    argv.push(run_dir.display().to_string());
    if c.transport == Transport::Tcp {
        argv.push("--tcp-listen".into());
        argv.push(SocketAddr::new(args.listen.ip(), 0).to_string());
    }
    let mut run = <RunCli as clap::Parser>::try_parse_from(argv)
        .context("cannot build the run settings of a sweep run")?
        .run;
    run.output.scene_label = Some(format!("sweep_{}", c.dir_name()));
    Ok(run)
}
