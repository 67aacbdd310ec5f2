//! `coppelia-bridge probe` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {}

/// Runs `coppelia-bridge probe`.
pub fn execute(_args: ProbeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`probe` is not implemented yet")
}
