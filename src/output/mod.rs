//! What the user sees: the live view, the run directory exports, the HTML report and the
//! Prometheus endpoint.
//!
//! # Layout
//! - [`columns`]: every per-dummy column defined once (header, unit, formatter, sort), for
//!   the end-of-run table, the live view, the report and the Markdown/CSV exports.
//! - [`compare`]: runs side by side with differences from the first (pure); the page
//!   `compare.html` is drawn by [`report::write_compare`].
//! - [`samples_csv`]: `samples.csv`, one row per received message (streaming).
//! - [`sample_file`]: either samples file on disk, buffered, errors naming the file.
//! - [`samples_bin`]: `samples.bin`, the same rows in fixed binary records
//!   (`--samples-format bin`), and their conversion to `samples.csv`.
//! - [`rtf_csv`]: `rtf.csv`, one row per snapshot interval and scope (long format).
//! - [`events`]: `events.jsonl`, state changes and warnings; [`events::diff_events`] derives
//!   them from two consecutive snapshots (pure).
//! - [`summary`]: `summary.json` (final snapshot + run metadata), written atomically.
//! - [`run_dir`]: [`RunWriter`], which owns all files of one run directory.
//! - [`log_file`]: the `bridge.log` tracing layer.
//! - [`json_stream`]: `--json-stream` lines.
//! - [`prometheus`]: text exposition format 0.0.4 and a tiny `/metrics` server.
//! - [`report`]: `report.html` from a run directory (inline SVG, no network).
//! - [`tui`]: the ratatui live view and the plain-line fallback.
//! - [`fixtures`]: hand-built snapshots for tests and examples.
//!
//! Layout and schema of the run directory: `docs/OUTPUT.md`.

pub mod columns;
pub mod compare;
pub mod events;
pub mod fixtures;
pub mod format;
pub mod json_stream;
pub mod log_file;
pub mod prometheus;
pub mod report;
pub mod rtf_csv;
pub mod run_dir;
pub mod sample_file;
pub mod samples_bin;
pub mod samples_csv;
pub mod stderr_log;
pub mod summary;
pub mod sweep;
pub mod tui;

use std::path::PathBuf;

pub use events::{diff_events, Event, EventKind};
pub use json_stream::{snapshot_json_line, LineWriter};
pub use prometheus::{render_prometheus, serve_metrics};
pub use report::{write_report, ReportError};
pub use run_dir::{default_run_dir, RunWriter, SamplesFormat};
pub use samples_csv::{SampleCsvWriter, SampleRow};
pub use summary::{write_atomic, RunMeta, Summary};
pub use tui::{plain_lines, run_tui, run_tui_with_target, RunInfo, UiAction, ViewState};

/// A failure writing one of the run directory's files.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot {op} {path}: {source} (check the --out directory exists and is writable, or pick another with --out)")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already holds a run ({file} exists): pick a new directory with --out, or move the old run away")]
    RunDirExists { path: PathBuf, file: &'static str },
    #[error("cannot encode {what} as JSON: {source} (this is a bug; please report it)")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl OutputError {
    fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// One record-oriented exporter: a file format that receives records one by one and
/// writes them to any [`std::io::Write`]. Kept this small so every format is testable on a
/// `Vec<u8>`.
pub trait RecordSink<T: ?Sized> {
    /// Appends one record.
    fn write_record(&mut self, record: &T) -> std::io::Result<()>;
    /// Pushes buffered bytes to the underlying writer.
    fn flush(&mut self) -> std::io::Result<()>;
}
