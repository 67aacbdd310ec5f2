//! `coppelia-bridge emit` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge emit`.
#[derive(Debug, clap::Args)]
pub struct EmitArgs {}

/// Runs `coppelia-bridge emit`.
pub fn execute(_args: EmitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`emit` is not implemented yet")
}
