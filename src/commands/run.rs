//! `coppelia-bridge run` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs `coppelia-bridge run`.
pub fn execute(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`run` is not implemented yet")
}
