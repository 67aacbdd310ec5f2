//! `coppelia-bridge report` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

/// Runs `coppelia-bridge report`.
pub fn execute(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`report` is not implemented yet")
}
