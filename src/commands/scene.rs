//! `coppelia-bridge scene` (to be written).

use std::process::ExitCode;

/// Flags of `coppelia-bridge scene`.
#[derive(Debug, clap::Args)]
pub struct SceneArgs {}

/// Runs `coppelia-bridge scene`.
pub fn execute(_args: SceneArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`scene` is not implemented yet")
}
