//! `coppelia-bridge compare RUN_DIR RUN_DIR…`: prints the runs' figures side by side with
//! differences from the first, and writes `compare.html` with their plots overlaid.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::output::compare::{compare, text_table};
use crate::output::report::{load_run_banded, write_compare};

/// Flags of `coppelia-bridge compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Run directories written by `run` or `demo` (each holds summary.json); the first is
    /// the baseline every difference is taken from.
    #[arg(required = true, num_args = 2.., value_name = "RUN_DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where to write the page with the plots overlaid.
    #[arg(long, short, default_value = "compare.html", value_name = "FILE")]
    pub output: PathBuf,
}

/// Runs `coppelia-bridge compare`.
pub fn execute(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let labels = labels(&args.dirs);
    let mut runs = Vec::with_capacity(args.dirs.len());
    for (dir, label) in args.dirs.iter().zip(labels) {
        let data =
            load_run_banded(dir).with_context(|| format!("cannot compare {}", dir.display()))?;
        runs.push((label, data));
    }
    let snaps: Vec<(String, &crate::metrics::RunSnapshot)> = runs
        .iter()
        .map(|(l, d)| (l.clone(), &d.summary.final_snapshot))
        .collect();
    let table = text_table(&compare(&snaps));
    // The file first: a reader of the table that stops early (`| head`) must not cost it.
    write_compare(&runs, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    super::print_for_reader(table.as_bytes()).context("cannot print the table")?;
    eprintln!("plots: {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Short names for the columns: each directory's last component, or the whole path where
/// two would read the same.
pub fn labels(dirs: &[PathBuf]) -> Vec<String> {
    let short = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let names: Vec<String> = dirs.iter().map(|d| short(d)).collect();
    dirs.iter()
        .zip(&names)
        .map(|(d, n)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                d.display().to_string()
            } else {
                n.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_unless_ambiguous() {
        let dirs: Vec<PathBuf> = ["runs/a", "runs/b", "x/a"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(labels(&dirs), ["runs/a", "b", "x/a"]);
        let dirs: Vec<PathBuf> = ["runs/a/", "b"].iter().map(PathBuf::from).collect();
        assert_eq!(labels(&dirs), ["a", "b"]);
    }
}
