//! `coppelia-bridge standin` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge standin`.
#[derive(Debug, clap::Args)]
pub struct StandinArgs {}

/// Runs `coppelia-bridge standin`.
pub fn execute(_args: StandinArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`standin` is not implemented yet")
}
