//! Command-line definitions (clap derive). Each subcommand's flags live beside its code in
//! `commands/`; this file only assembles them.

use clap::{Parser, Subcommand};

use crate::commands::{
    demo::DemoArgs, emit::EmitArgs, probe::ProbeArgs, report::ReportArgs, run::RunArgs,
    scene::SceneArgs, standin::StandinArgs,
};

/// Co-simulation bridge for CoppeliaSim: per-dummy RTF, latency, rate, jitter and loss.
#[derive(Debug, Parser)]
#[command(name = "coppelia-bridge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect timestamps from the dummies (and drive CoppeliaSim unless --no-remote).
    Run(RunArgs),
    /// Send the datagrams a CoppeliaSim scene would send, without CoppeliaSim.
    Emit(EmitArgs),
    /// Check a CoppeliaSim remote API endpoint and measure its call round trip.
    Probe(ProbeArgs),
    /// Generate the simple-XML scene with N dummies (or build it inside CoppeliaSim).
    Scene(SceneArgs),
    /// Run the headless CoppeliaSim stand-in.
    Standin(StandinArgs),
    /// Stand-in plus bridge in one process: the quickest way to see everything work.
    Demo(DemoArgs),
    /// Write report.html for a run directory.
    Report(ReportArgs),
}

/// Parses durations such as `10s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 10s, 500ms, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
