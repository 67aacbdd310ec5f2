//! `coppelia-bridge convert PATH`: the `samples.csv` of a binary sample log
//! (`run --samples-format bin`), byte for byte what `--samples-format csv` would have
//! written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::output::run_dir::{SAMPLES_BIN_FILE, SAMPLES_FILE};
use crate::output::samples_bin::{self, Converted, ReadError};
use crate::output::summary::{write_atomic_with, AtomicError};

/// Flags of `coppelia-bridge convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// A run directory written with --samples-format bin, or its samples.bin.
    pub path: PathBuf,
    /// Where to write the CSV (`-` for standard output). Default: samples.csv beside the
    /// samples.bin, replaced atomically.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// The log to read and the CSV to write for `args`.
fn paths(args: &ConvertArgs) -> (PathBuf, PathBuf) {
    let input = if args.path.is_dir() {
        args.path.join(SAMPLES_BIN_FILE)
    } else {
        args.path.clone()
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| input.parent().unwrap_or(Path::new(".")).join(SAMPLES_FILE));
    (input, out)
}

/// Runs `coppelia-bridge convert`.
pub fn execute(args: ConvertArgs) -> anyhow::Result<ExitCode> {
    let (input, out) = paths(&args);
    let file = std::fs::File::open(&input).with_context(|| {
        format!(
            "cannot open {} (pass a run directory written with --samples-format bin, or its {SAMPLES_BIN_FILE})",
            input.display()
        )
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    let failed = |e: ReadError| {
        anyhow::anyhow!(
            "cannot convert {}: {e} (nothing was written to {})",
            input.display(),
            out.display()
        )
    };
    let done = if out == Path::new("-") {
        let stdout = std::io::stdout().lock();
        samples_bin::to_csv(reader, std::io::BufWriter::new(stdout)).map_err(failed)?
    } else {
        write_atomic_with(&out, |w| samples_bin::to_csv(reader, w)).map_err(|e| match e {
            AtomicError::Output(e) => anyhow::Error::new(e),
            AtomicError::Content(e) => failed(e),
        })?
    };
    report(&done, &input, &out);
    Ok(ExitCode::SUCCESS)
}

fn report(done: &Converted, input: &Path, out: &Path) {
    if done.partial_tail > 0 {
        tracing::warn!(
            "{}: the last {} bytes are a partial record (the run was killed while writing it) and were left out",
            input.display(),
            done.partial_tail
        );
    }
    let to = if out == Path::new("-") {
        "standard output".to_owned()
    } else {
        out.display().to_string()
    };
    eprintln!("{} rows from {} to {to}", done.rows, input.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_means_its_samples_bin_and_the_csv_goes_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let args = ConvertArgs {
            path: dir.path().to_owned(),
            out: None,
        };
        assert_eq!(
            paths(&args),
            (
                dir.path().join("samples.bin"),
                dir.path().join("samples.csv")
            )
        );
        let args = ConvertArgs {
            path: PathBuf::from("old/x.bin"),
            out: Some(PathBuf::from("-")),
        };
        assert_eq!(
            paths(&args),
            (PathBuf::from("old/x.bin"), PathBuf::from("-"))
        );
    }
}
