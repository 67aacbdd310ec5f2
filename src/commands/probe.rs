//! `coppelia-bridge probe`: is CoppeliaSim's remote API there, which version, what state,
//! and how long does a remote call take?

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::{LatencyHistogram, LatencyStats};
use crate::remote_api::driver::DriverOptions;
use crate::remote_api::error::format_duration;
use crate::remote_api::{Client, ClientConfig, RemoteError, Transport, DEFAULT_ENDPOINT};

/// Where CoppeliaSim's ZMQ remote API is, shared by `probe`, `run` and `scene`
/// (`#[command(flatten)]`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RemoteArgs {
    /// ZMQ remote API endpoint of CoppeliaSim (the add-on listens on port 23000, or on
    /// the named parameter zmqRemoteApi.rpcPort in 4.7+).
    #[arg(
        long = "remote",
        env = "COPPELIA_BRIDGE_REMOTE",
        default_value = DEFAULT_ENDPOINT,
        value_name = "URL"
    )]
    pub remote: String,

    /// Deadline for each remote API reply; without a reply by then CoppeliaSim counts as
    /// unreachable (e.g. 3s, 500ms).
    #[arg(
        long = "remote-timeout",
        default_value = "3s",
        value_parser = crate::cli::parse_duration,
        value_name = "DURATION"
    )]
    pub remote_timeout: Duration,
}

impl RemoteArgs {
    /// Client settings for these flags.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            timeout: self.remote_timeout,
            ..ClientConfig::default()
        }
    }

    /// Driver settings for these flags (other fields at their defaults: start if stopped,
    /// no stepping, 10 Hz polls); `run` adjusts the rest from its own flags.
    pub fn driver_options(&self) -> DriverOptions {
        DriverOptions {
            timeout: self.remote_timeout,
            ..DriverOptions::new(self.remote.clone())
        }
    }
}

/// Flags of `coppelia-bridge probe`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,

    /// Number of sim.getSimulationTime calls whose round trip is measured. While the
    /// simulation runs, CoppeliaSim serves remote calls once per pass, so this can take
    /// up to calls × dt seconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000), value_name = "N")]
    pub calls: u32,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `probe` found (the `--json` output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    pub endpoint: String,
    /// Always true here (a failed probe prints `{endpoint, reachable, error}`).
    pub reachable: bool,
    /// e.g. "4.6.0" (from intparam_program_version 40600).
    pub version: String,
    pub version_raw: i64,
    pub revision: i64,
    /// e.g. "running".
    pub simulation_state: String,
    pub simulation_state_raw: i64,
    /// sim.getSimulationTimeStep, seconds.
    pub dt_s: f64,
    /// boolparam_realtime_simulation.
    pub real_time: bool,
    /// Round trip of sim.getSimulationTime, µs, over `calls` calls.
    /// `None` only if no call completed (cannot happen with --calls ≥ 1).
    pub call_rtt_us: Option<LatencyStats>,
    /// Wall time the measurement took, seconds.
    pub measured_s: f64,
}

/// Runs `coppelia-bridge probe`.
pub fn execute(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let report = match connect_and_probe(&args) {
        Ok(report) => report,
        Err(e) => {
            if args.json {
                // Scripts get a parseable answer on stdout too; the exit code stays non-zero.
                let failure = ProbeFailure {
                    endpoint: &args.remote.remote,
                    reachable: e.server_answered(),
                    error: e.to_string(),
                };
                println!("{}", serde_json::to_string_pretty(&failure)?);
            }
            return Err(e.into());
        }
    };
    let out = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render_text(&report)
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// The `--json` output when the probe fails.
#[derive(Debug, Serialize)]
struct ProbeFailure<'a> {
    endpoint: &'a str,
    /// True when something answered (the error is about its answer).
    reachable: bool,
    error: String,
}

fn connect_and_probe(args: &ProbeArgs) -> Result<ProbeReport, RemoteError> {
    let mut client = Client::connect(&args.remote.remote, args.remote.client_config())?;
    let report = probe(&mut client, args.calls)?;
    if let Err(e) = client.close() {
        tracing::debug!("{e}");
    }
    Ok(report)
}

/// Asks the server what `probe` reports, then measures `calls` round trips.
pub fn probe<T: Transport>(client: &mut Client<T>, calls: u32) -> Result<ProbeReport, RemoteError> {
    let version = client.program_version()?;
    let state = client.get_simulation_state()?;
    let dt_s = client.get_simulation_time_step()?;
    let real_time = client.real_time_mode()?;
    let started = Instant::now();
    let mut rtt = LatencyHistogram::new();
    for _ in 0..calls {
        let t0 = Instant::now();
        client.get_simulation_time()?;
        rtt.record(t0.elapsed().as_secs_f64() * 1e6);
    }
    Ok(ProbeReport {
        endpoint: client.endpoint().to_owned(),
        reachable: true,
        version: version.to_string(),
        version_raw: version.raw,
        revision: version.revision,
        simulation_state: state.name().to_owned(),
        simulation_state_raw: state.raw(),
        dt_s,
        real_time,
        call_rtt_us: rtt.stats(),
        measured_s: started.elapsed().as_secs_f64(),
    })
}

/// The text report (pure).
pub fn render_text(r: &ProbeReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "CoppeliaSim remote API at {}: reachable", r.endpoint);
    let _ = writeln!(
        out,
        "  version          {} (revision {})",
        r.version, r.revision
    );
    let _ = writeln!(
        out,
        "  simulation       {} ({})",
        r.simulation_state, r.simulation_state_raw
    );
    let _ = writeln!(out, "  time step        {:.3} s", r.dt_s);
    let _ = writeln!(
        out,
        "  real-time mode   {}",
        if r.real_time { "on" } else { "off" }
    );
    let Some(s) = &r.call_rtt_us else {
        out.push_str("  call round trip  no call completed\n");
        return out;
    };
    let _ = writeln!(
        out,
        "  call round trip  sim.getSimulationTime x {} in {}, µs:",
        s.count,
        format_duration(Duration::from_secs_f64(r.measured_s.max(0.0)))
    );
    let _ = writeln!(
        out,
        "                   p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}",
        s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        probe: ProbeArgs,
    }

    #[test]
    fn defaults_match_the_documentation() {
        let args = Cli::try_parse_from(["probe"]).unwrap().probe;
        // The env variable may be set by a user running the tests; only check it if not.
        if std::env::var_os("COPPELIA_BRIDGE_REMOTE").is_none() {
            assert_eq!(args.remote.remote, "tcp://127.0.0.1:23000");
        }
        assert_eq!(args.remote.remote_timeout, Duration::from_secs(3));
        assert_eq!(args.calls, 1000);
        assert!(!args.json);
    }

    #[test]
    fn flags_parse() {
        let args = Cli::try_parse_from([
            "probe",
            "--remote",
            "tcp://10.0.0.2:23050",
            "--remote-timeout",
            "500ms",
            "--calls",
            "20",
            "--json",
        ])
        .unwrap()
        .probe;
        assert_eq!(args.remote.remote, "tcp://10.0.0.2:23050");
        assert_eq!(
            args.remote.client_config().timeout,
            Duration::from_millis(500)
        );
        assert_eq!(args.calls, 20);
        assert!(args.json);
        assert!(Cli::try_parse_from(["probe", "--calls", "0"]).is_err());
        assert!(Cli::try_parse_from(["probe", "--remote-timeout", "soon"]).is_err());
    }

    #[test]
    fn text_report_lists_every_field_with_units() {
        let report = ProbeReport {
            endpoint: "tcp://127.0.0.1:23000".into(),
            reachable: true,
            version: "4.6.0".into(),
            version_raw: 40600,
            revision: 18,
            simulation_state: "running".into(),
            simulation_state_raw: 17,
            dt_s: 0.05,
            real_time: false,
            call_rtt_us: Some(LatencyStats {
                count: 1000,
                min_us: 80.0,
                mean_us: 120.0,
                p50_us: 110.0,
                p90_us: 150.0,
                p99_us: 300.0,
                p999_us: 450.0,
                max_us: 1200.0,
                relative_error: 1.0 / 1024.0,
            }),
            measured_s: 0.25,
        };
        assert_eq!(
            render_text(&report),
            "CoppeliaSim remote API at tcp://127.0.0.1:23000: reachable\n\
             \x20 version          4.6.0 (revision 18)\n\
             \x20 simulation       running (17)\n\
             \x20 time step        0.050 s\n\
             \x20 real-time mode   off\n\
             \x20 call round trip  sim.getSimulationTime x 1000 in 250 ms, µs:\n\
             \x20                  p50 110  p90 150  p99 300  p99.9 450  max 1200\n"
        );
    }
}
