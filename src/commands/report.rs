//! `coppelia-bridge report DIR`: writes `report.html` for a run directory (also done at
//! the end of every `run`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Flags of `coppelia-bridge report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run directory written by `coppelia-bridge run --out DIR` (holds summary.json).
    pub dir: PathBuf,
}

/// Runs `coppelia-bridge report`.
pub fn execute(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let path = crate::output::write_report(&args.dir)
        .with_context(|| format!("cannot write the report for {}", args.dir.display()))?;
    super::print_for_reader(format!("{}\n", path.display()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
