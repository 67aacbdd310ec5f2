//! `coppelia-bridge standin`: the headless CoppeliaSim stand-in (docs/STANDIN.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::remote_api::ProgramVersion;
use crate::scene::parse::{parse_scene_for, Scene};
use crate::standin::api::{V4_10, V4_3};
use crate::standin::{spawn, Faults, LogSink, Speed, Stall, StandinConfig};

/// Flags of `coppelia-bridge standin`.
#[derive(Debug, clap::Args)]
pub struct StandinArgs {
    /// Simple XML scene to run (`.simscene.xml`): every object with a child script runs it.
    #[arg(long, value_name = "PATH")]
    pub scene: PathBuf,
    /// Remote API (ZeroMQ, protocol 2) port; 0 = any free port (the bound endpoint is printed).
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 23000,
        env = "COPPELIA_BRIDGE_REMOTE_PORT"
    )]
    pub remote_port: u16,
    /// Address the remote API binds to.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub remote_host: String,
    /// Do not serve the remote API at all.
    #[arg(long)]
    pub no_remote: bool,
    /// Simulation time step (0.05, 50ms) [default: the scene's simTimeStep, else 0.05 s].
    #[arg(long, value_name = "SECONDS", value_parser = crate::cli::parse::time_step)]
    pub dt: Option<f64>,
    /// Real-time mode: a pass runs only when simulation time lags wall time
    /// [default: the scene's realTime switch; off = as fast as possible].
    #[arg(long, conflicts_with_all = ["rtf", "max_speed"])]
    pub realtime: bool,
    /// Real-time mode scaled: simulation time runs X times as fast as wall time (e.g. 0.5).
    #[arg(long, value_name = "X", conflicts_with = "max_speed")]
    pub rtf: Option<f64>,
    /// Run passes back-to-back with no sleeping.
    #[arg(long)]
    pub max_speed: bool,
    /// Named string parameter for sim.getNamedStringParam, as CoppeliaSim's -Gkey=value.
    #[arg(short = 'G', value_name = "KEY=VALUE", value_parser = parse_named)]
    pub named: Vec<(String, String)>,
    /// Start the simulation at once (CoppeliaSim's -s0) instead of waiting for a remote
    /// sim.startSimulation.
    #[arg(long)]
    pub start: bool,
    /// Fault: stall the simulation thread (wall clock) once at this simulation time
    /// (simulated seconds: 3, 3s, 500ms).
    #[arg(long, value_name = "SECONDS", requires = "stall_for", value_parser = crate::cli::parse::sim_seconds)]
    pub stall_at: Option<f64>,
    /// Fault: how long the stall lasts (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration, requires = "stall_at")]
    pub stall_for: Option<Duration>,
    /// Fault: fraction (0..1) of the scripts' UDP sends silently dropped while reporting success.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Fault: the scripts' clock (socket.gettime) runs this many seconds ahead of this
    /// host's, negative: behind (e.g. -0.25), as on a host whose clock is not synchronised.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, allow_hyphen_values = true,
          value_parser = crate::cli::parse::clock_offset)]
    pub clock_offset: f64,
    /// Seed of the drop-rate random generator.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Fault: run N passes back-to-back, then wait for N passes (bursts, as with a GUI).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub passes_per_frame: u32,
    /// Fault: raise a Lua error in every script at this simulation time (simulated seconds).
    #[arg(long, value_name = "SECONDS", value_parser = crate::cli::parse::sim_seconds)]
    pub crash_script_at: Option<f64>,
    /// CoppeliaSim version to behave as, 4.3 to 4.10 (e.g. 4.7, 4.7.0-rev2): which sim.*
    /// functions exist, how the scene is read (4.7+: script objects), log origins. Below 4.6
    /// there is no remote API (protocol 1 is not served): add --no-remote.
    #[arg(long, value_name = "X.Y[.Z][-revN]", default_value = "4.6.0", value_parser = parse_version)]
    pub version: ProgramVersion,
}

/// Parses `4.7`, `4.7.0`, `4.7.0-rev2` (or CoppeliaSim's number, 40700) within 4.3..=4.10.
pub fn parse_version(s: &str) -> Result<ProgramVersion, String> {
    let bad = || format!("{s:?} is not a CoppeliaSim version such as 4.7 or 4.7.0-rev2");
    let (numbers, revision) = match s.split_once("-rev") {
        Some((n, r)) => (n, r.parse::<i64>().map_err(|_| bad())?),
        None => (s, 0),
    };
    let parts: Vec<i64> = numbers
        .split('.')
        .map(|p| p.parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let raw = match parts[..] {
        [raw] if raw >= 10000 => raw,
        [major, minor] => major * 10000 + minor * 100,
        [major, minor, patch] => major * 10000 + minor * 100 + patch,
        _ => return Err(bad()),
    };
    if !(V4_3..V4_10 + 100).contains(&raw) {
        return Err(format!(
            "version {s}: the stand-in behaves as CoppeliaSim 4.3 to 4.10 (Lua 5.3)"
        ));
    }
    Ok(ProgramVersion { raw, revision })
}

/// Parses `key=value` for `-G`.
fn parse_named(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!(
            "{s:?} is not key=value (example: -GcoppeliaBridge.port=8888)"
        )),
    }
}

/// Reads and parses a scene file as CoppeliaSim `version` loads it; errors name the path.
pub fn load_scene_file(path: &Path, version: ProgramVersion) -> anyhow::Result<Scene> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read scene {}: check the path (see `coppelia-bridge scene`)",
            path.display()
        )
    })?;
    let scene = parse_scene_for(&text, version.raw)
        .with_context(|| format!("cannot load scene {}", path.display()))?;
    for warning in &scene.warnings {
        tracing::warn!(target: "standin", "{}: {warning}", path.display());
    }
    Ok(scene)
}

impl StandinArgs {
    fn speed(&self) -> anyhow::Result<Option<Speed>> {
        Ok(match (self.realtime, self.rtf, self.max_speed) {
            (true, _, _) => Some(Speed::RealTime { rtf: 1.0 }),
            (_, Some(x), _) if x.is_finite() && x > 0.0 => Some(Speed::RealTime { rtf: x }),
            (_, Some(x), _) => bail!("--rtf {x}: expected a positive factor such as 0.5 or 2"),
            (_, _, true) => Some(Speed::MaxSpeed),
            _ => None,
        })
    }

    fn faults(&self) -> anyhow::Result<Faults> {
        if !(0.0..=1.0).contains(&self.drop_rate) {
            bail!(
                "--drop-rate {}: expected a fraction between 0 and 1",
                self.drop_rate
            );
        }
        if self.passes_per_frame == 0 {
            bail!("--passes-per-frame 0: expected at least 1");
        }
        let stall = match (self.stall_at, self.stall_for) {
            (Some(at_s), Some(duration)) => Some(Stall { at_s, duration }),
            _ => None,
        };
        Ok(Faults {
            drop_rate: self.drop_rate,
            clock_offset_s: self.clock_offset,
            seed: self.seed,
            stall,
            crash_at_s: self.crash_script_at,
            passes_per_frame: self.passes_per_frame,
        })
    }

    /// Builds the stand-in configuration (pure apart from reading the scene).
    pub fn config(&self) -> anyhow::Result<StandinConfig> {
        if let Some(dt) = self.dt {
            if !(dt.is_finite() && dt > 0.0) {
                bail!("--dt {dt}: expected a positive time step in seconds, e.g. 0.05");
            }
        }
        let mut config = StandinConfig::new(load_scene_file(&self.scene, self.version)?);
        config.version = self.version;
        config.dt_s = self.dt;
        config.speed = self.speed()?;
        config.named_params = self.named.iter().cloned().collect();
        config.remote = (!self.no_remote).then(|| (self.remote_host.clone(), self.remote_port));
        config.start = self.start;
        config.faults = self.faults()?;
        config.log = LogSink::default();
        Ok(config)
    }
}

/// Runs `coppelia-bridge standin` until Ctrl-C or SIGTERM, then stops the simulation
/// properly (stop passes, cleanup) and exits.
pub fn execute(args: StandinArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let scripts = config.scene.script_order().len();
    let standin = spawn(config)?;
    let mut out = std::io::stdout();
    match standin.endpoint() {
        Some(endpoint) => writeln!(out, "stand-in: remote API listening on {endpoint}")?,
        None => writeln!(out, "stand-in: remote API disabled")?,
    }
    writeln!(
        out,
        "stand-in: {} ({scripts} child scripts); Ctrl-C to stop",
        args.scene.display()
    )?;
    out.flush()?;
    wait_for_signal()?;
    let summary = standin.shutdown()?;
    writeln!(
        out,
        "stand-in: {} in {}, {}",
        crate::output::format::count(summary.passes, "pass"),
        crate::output::format::count(summary.runs, "run"),
        crate::output::format::count(summary.script_errors, "script error")
    )?;
    Ok(ExitCode::SUCCESS)
}

fn wait_for_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler runtime")?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_params_need_key_and_value() {
        assert_eq!(parse_named("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_named("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_named("=v").is_err());
        assert!(parse_named("novalue").is_err());
    }

    #[test]
    fn versions_parse_within_the_supported_range() {
        let v = |s| parse_version(s).map(|v| (v.raw, v.revision));
        assert_eq!(v("4.7"), Ok((40700, 0)));
        assert_eq!(v("4.7.0-rev2"), Ok((40700, 2)));
        assert_eq!(v("4.5.1"), Ok((40501, 0)));
        assert_eq!(v("41000"), Ok((41000, 0)));
        assert!(v("4.11").is_err());
        assert!(v("4.2").is_err());
        assert!(v("four").is_err());
        assert_eq!(crate::standin::DEFAULT_VERSION.raw, 40600);
    }
}
