//! Command-line definitions (clap derive). Each subcommand's flags live beside its code in
//! `commands/`; this file only assembles them, and [`parse`] holds the one parser of each
//! kind of value (durations, simulation times, addresses, sizes) every flag shares.

pub mod parse;

use clap::{Parser, Subcommand};

use crate::commands::{
    compare::CompareArgs, demo::DemoArgs, emit::EmitArgs, probe::ProbeArgs, report::ReportArgs,
    run::RunArgs, scene::SceneArgs, standin::StandinArgs, sweep::SweepArgs,
};

/// Co-simulation bridge for CoppeliaSim: per-dummy RTF, latency, rate, jitter and loss.
#[derive(Debug, Parser)]
#[command(
    name = "coppelia-bridge",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 success, 1 error, 2 usage error, 3 a gate \
                  (--min-rtf, --max-loss, --max-latency-p99) was not met."
)]
pub struct Cli {
    /// Colour in log lines and messages: auto (only on a terminal, and not when NO_COLOR
    /// is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour a stream that is (`terminal`) or is not a terminal, with the
    /// `NO_COLOR` environment variable as given (any non-empty value turns colour off in
    /// `auto`, as <https://no-color.org> asks).
    pub fn enabled(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
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
    /// Compare runs: figures side by side with differences, and compare.html.
    Compare(CompareArgs),
    /// Write samples.csv from a binary sample log (run --samples-format bin).
    Convert(crate::commands::convert::ConvertArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the man page, or write one per command into a directory.
    Man(crate::commands::completions::ManArgs),
    /// One measured run per combination of dummies × dt × transport, and a table and plots
    /// of RTF, passes/s, latency, loss and bridge CPU against them.
    Sweep(SweepArgs),
}

/// Parses wall-clock durations such as `10s`, `500ms`, `2m` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    parse::duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn colour_only_on_a_terminal_unless_told() {
        use std::ffi::OsStr;
        assert!(ColorWhen::Auto.enabled(true, None));
        assert!(
            !ColorWhen::Auto.enabled(false, None),
            "redirected: no colour"
        );
        assert!(
            !ColorWhen::Auto.enabled(true, Some(OsStr::new("1"))),
            "NO_COLOR"
        );
        assert!(
            ColorWhen::Auto.enabled(true, Some(OsStr::new(""))),
            "empty NO_COLOR"
        );
        assert!(ColorWhen::Always.enabled(false, Some(OsStr::new("1"))));
        assert!(!ColorWhen::Never.enabled(true, None));
    }
}
