//! `coppelia-bridge demo`: the headless stand-in and the bridge in one process.
//!
//! The stand-in runs the provided scene (the shipped Lua script on N dummies, the same text
//! as `scenes/coppelia_bridge_4dummies.simscene.xml` for N = 4) and serves the remote API on
//! a free port; the bridge binds a free UDP port and points the scripts at it with the named
//! parameter `coppelia_bridge.port`, exactly as a user redirects a scene with
//! `-Gcoppelia_bridge.port=…`. Then it is an ordinary `run`: real remote API, real UDP.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::run::{bind_receivers, GateArgs, OutputArgs, Prepared, RunArgs};
use crate::cli::parse_duration;
use crate::scene::parse::parse_scene;
use crate::scene::{generate_scene, SceneOptions};
use crate::standin::{spawn, Speed, Stall, StandinConfig};

/// Flags of `coppelia-bridge demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Number of dummies in the scene (4 is the provided scene).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub dummies: u32,
    /// How long to measure, counted from the moment every dummy has announced itself (wall
    /// time). Each dummy sends one message per pass: 5s at dt 0.05 s gives 101 passes plus
    /// the 3 run while the simulation stops (see `run --help`, --duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Speed of the stand-in relative to real time (1 = real time, 0.5 = half speed).
    #[arg(long, default_value_t = 1.0)]
    pub rtf: f64,
    /// Run the stand-in as fast as it can (no pacing; CoppeliaSim with real-time mode off
    /// and nothing to wait for): how many passes per second the bridge keeps up with.
    #[arg(long, conflicts_with_all = ["rtf", "stepping"])]
    pub max_speed: bool,
    /// Simulation time step of the scene, seconds (e.g. 0.01); the scripts send once per step.
    #[arg(long, default_value_t = 0.05, value_parser = crate::cli::parse::sim_seconds)]
    pub dt: f64,
    /// Scripts send over framed TCP instead of UDP.
    #[arg(long)]
    pub tcp: bool,
    /// Lockstep: the bridge steps the simulation itself (paced by --target-rtf if given).
    #[arg(long)]
    pub stepping: bool,
    /// Pace of --stepping (0 = as fast as possible).
    #[arg(long, requires = "stepping")]
    pub target_rtf: Option<f64>,
    /// Every dummy asks for an ECHO per STAMP (echo{1}): round trips and the clock offset
    /// estimate.
    #[arg(long)]
    pub echo: bool,
    /// Fault: the scripts' clock (socket.gettime) runs this many seconds ahead of the
    /// bridge's, negative: behind (e.g. -0.25), as on a host whose clock is not synchronised.
    /// With --echo the bridge estimates it.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, allow_hyphen_values = true,
          value_parser = crate::cli::parse::clock_offset)]
    pub clock_offset: f64,
    /// Fault: fraction of the scripts' sends the stand-in drops.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fault: passes run back to back per frame (bursts, as CoppeliaSim with a GUI).
    #[arg(long, default_value_t = 1)]
    pub passes_per_frame: u32,
    /// Fault: stall the simulation once at this simulation time (simulated seconds: 3, 3s,
    /// 500ms).
    #[arg(long, requires = "stall_for", value_parser = crate::cli::parse::sim_seconds)]
    pub stall_at: Option<f64>,
    /// Fault: length of the stall.
    #[arg(long, value_parser = parse_duration, requires = "stall_at")]
    pub stall_for: Option<Duration>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub gates: GateArgs,
}

/// Runs `coppelia-bridge demo`.
pub fn execute(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = rt.block_on(demo(&args))?;
    args.gates.conclude(&outcome, args.output.json_stream)
}

/// The demo run; returns the bridge's outcome (tests use it).
pub async fn demo(args: &DemoArgs) -> anyhow::Result<super::run::RunOutcome> {
    Ok(demo_measured(args).await?.run)
}

/// What a demo run measured: the bridge's outcome and what the stand-in did.
#[derive(Debug)]
pub struct DemoOutcome {
    pub run: super::run::RunOutcome,
    /// Passes, runs, script errors and the CPU time of the stand-in's simulation thread.
    pub standin: crate::standin::Summary,
}

/// The demo run, with the stand-in's own figures (a sweep subtracts its CPU time from the
/// process's to get the bridge's).
pub async fn demo_measured(args: &DemoArgs) -> anyhow::Result<DemoOutcome> {
    let (lo, hi) = crate::scene::generate::DT_RANGE_S;
    anyhow::ensure!(
        (lo..=hi).contains(&args.dt),
        "--dt {} s is outside {lo}..{hi} s: give the simulation step in seconds, e.g. 0.05",
        args.dt
    );
    anyhow::ensure!(
        args.rtf.is_finite() && args.rtf > 0.0,
        "--rtf must be a positive factor such as 1 or 0.5"
    );
    anyhow::ensure!(
        (0.0..1.0).contains(&args.drop_rate),
        "--drop-rate is a fraction in [0, 1)"
    );
    anyhow::ensure!(
        args.passes_per_frame >= 1,
        "--passes-per-frame must be at least 1"
    );
    let mut run_args = run_args(args)?;
    let mut prepared = Prepared::new(&run_args.output)?;
    prepared.record_setting("demo", demo_settings(args));
    let receivers = bind_receivers(&run_args.collect).await?;
    let port = receivers.tcp_addr.unwrap_or(receivers.udp_addr).port();
    let standin = spawn(standin_config(args, port)?)?;
    let endpoint = standin
        .endpoint()
        .context("the stand-in serves no remote API")?
        .to_owned();
    tracing::info!(
        "stand-in running {}, remote API on {endpoint}",
        crate::output::format::count(args.dummies.into(), "dummy")
    );
    run_args.sim.remote.remote = endpoint;
    let outcome = prepared.run(&run_args, receivers).await;
    let summary = tokio::task::spawn_blocking(move || standin.shutdown()).await??;
    tracing::info!(
        "stand-in: {} in {}, {}",
        crate::output::format::count(summary.passes, "pass"),
        crate::output::format::count(summary.runs, "run"),
        crate::output::format::count(summary.script_errors, "script error")
    );
    Ok(DemoOutcome {
        run: outcome?,
        standin: summary,
    })
}

/// The `scene` label of a demo's metrics: named like the shipped 4-dummy scene.
pub fn demo_scene_label(dummies: u32) -> String {
    format!("coppelia_bridge_{dummies}dummies")
}

/// The stand-in's side of a demo, recorded in summary.json (`settings.demo`), so a run
/// directory says which faults were injected.
fn demo_settings(args: &DemoArgs) -> serde_json::Value {
    serde_json::json!({
        "dummies": args.dummies,
        "rtf": args.rtf,
        "transport": if args.tcp { "tcp" } else { "udp" },
        "stepping": args.stepping,
        "echo": args.echo,
        "clock_offset_s": args.clock_offset,
        "drop_rate": args.drop_rate,
        "passes_per_frame": args.passes_per_frame,
        "stall_at_s": args.stall_at,
        "stall_for": args.stall_for.map(|d| humantime::format_duration(d).to_string()),
    })
}

fn standin_config(args: &DemoArgs, bridge_port: u16) -> anyhow::Result<StandinConfig> {
    let xml = generate_scene(&SceneOptions {
        dummies: args.dummies,
        dt_s: args.dt,
        echo: args.echo,
        ..SceneOptions::default()
    });
    let mut config =
        StandinConfig::new(parse_scene(&xml).context("the generated scene does not parse")?);
    config.remote = Some(("127.0.0.1".into(), 0));
    // In lockstep the bridge sets the pace; otherwise the stand-in runs in real time × rtf.
    config.speed = Some(if args.stepping || args.max_speed {
        Speed::MaxSpeed
    } else {
        Speed::RealTime { rtf: args.rtf }
    });
    config
        .named_params
        .insert("coppelia_bridge.port".into(), bridge_port.to_string());
    if args.tcp {
        config
            .named_params
            .insert("coppelia_bridge.transport".into(), "tcp".into());
    }
    config.faults.drop_rate = args.drop_rate;
    config.faults.clock_offset_s = args.clock_offset;
    config.faults.passes_per_frame = args.passes_per_frame;
    config.faults.stall = args
        .stall_at
        .zip(args.stall_for)
        .map(|(at_s, duration)| Stall { at_s, duration });
    Ok(config)
}

/// `run` with its own defaults (parsed by clap, so they cannot drift from `run --help`),
/// then what the demo decides: free loopback ports, the measurement length, N expected
/// dummies, stepping, and the demo's output flags. The remote endpoint is set once the
/// stand-in is bound.
fn run_args(args: &DemoArgs) -> anyhow::Result<RunArgs> {
    #[derive(clap::Parser)]
    struct RunCli {
        #[command(flatten)]
        run: RunArgs,
    }
    let mut run = <RunCli as clap::Parser>::try_parse_from(["run", "--listen", "127.0.0.1:0"])
        .context("cannot build the bridge's settings for the demo")?
        .run;
    let loopback_any = "127.0.0.1:0".parse().expect("literal address");
    run.collect.tcp_listen = args.tcp.then_some(loopback_any);
    run.stop.duration = Some(args.duration);
    run.stop.expect_dummies = Some(args.dummies as usize);
    run.output = args.output.clone();
    if run.output.scene_label.is_none() {
        run.output.scene_label = Some(demo_scene_label(args.dummies));
    }
    run.gates = args.gates.clone();
    run.sim.stepping = args.stepping;
    run.sim.target_rtf = args.target_rtf;
    Ok(run)
}
