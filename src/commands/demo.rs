//! `coppelia-bridge demo` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

/// Runs `coppelia-bridge demo`.
pub fn execute(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`demo` is not implemented yet")
}
