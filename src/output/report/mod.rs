//! `report.html` for a run directory: reads what the run wrote (summary.json, rtf.csv,
//! samples.csv, events.jsonl) and writes one self-contained page (inline CSS and SVG,
//! no script, no network).

pub(crate) mod html;
pub mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::output::events::{read_events, Event};
use crate::output::rtf_csv::RtfRow;
use crate::output::run_dir::{EVENTS_FILE, REPORT_FILE, RTF_FILE, SAMPLES_FILE, SUMMARY_FILE};
use crate::output::samples_csv::SampleRow;
use crate::output::summary::{write_atomic, Summary};
use crate::output::OutputError;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path} is not a run directory (no {SUMMARY_FILE}): pass the directory a run wrote, e.g. `coppelia-bridge report runs/20260102T030405Z`")]
    NotARunDir { path: PathBuf },
    #[error("cannot read {path}: {source} (check the file exists and is readable)")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid summary: {source} (was it written by this version of coppelia-bridge? rerun the measurement)")]
    Summary {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] OutputError),
}

/// Everything a report shows, read back from a run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    pub summary: Summary,
    pub rtf: Vec<RtfRow>,
    /// Per dummy id, in arrival order: (receive time since the run started s, raw
    /// latency µs) of every message that has a latency. Only these two numbers are kept,
    /// so a long run with many dummies fits in memory.
    pub latency: BTreeMap<u32, Vec<(f64, f64)>>,
    pub events: Vec<Event>,
    /// CSV rows that did not parse and were left out (a run killed mid-write leaves a
    /// truncated last row).
    pub skipped_rows: usize,
}

/// Reads `dir`'s exports and writes `dir/report.html`; returns its path.
pub fn write_report(dir: &Path) -> Result<PathBuf, ReportError> {
    let data = load_run(dir)?;
    let page = html::render_page(&data);
    let path = dir.join(REPORT_FILE);
    write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

/// Renders the page for already loaded data (pure).
pub fn render_report(data: &RunData) -> String {
    html::render_page(data)
}

/// Reads a run directory. Only `summary.json` is required: a run killed early may lack
/// the others, and the report then shows "no data" where they would be.
pub fn load_run(dir: &Path) -> Result<RunData, ReportError> {
    let summary_path = dir.join(SUMMARY_FILE);
    if !summary_path.is_file() {
        return Err(ReportError::NotARunDir {
            path: dir.to_owned(),
        });
    }
    let text = read(&summary_path)?;
    let summary: Summary = serde_json::from_str(&text).map_err(|source| ReportError::Summary {
        path: summary_path,
        source,
    })?;
    let start = summary.started_unix_s;
    let mut skipped_rows = 0;
    let rtf = match optional(&dir.join(RTF_FILE))? {
        Some(text) => lenient_csv(&text, &mut skipped_rows),
        None => Vec::new(),
    };
    Ok(RunData {
        summary,
        rtf,
        latency: load_latency(&dir.join(SAMPLES_FILE), start, &mut skipped_rows)?,
        events: optional(&dir.join(EVENTS_FILE))?.map_or_else(Vec::new, |t| read_events(&t)),
        skipped_rows,
    })
}

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_owned(),
        source,
    })
}

fn optional(path: &Path) -> Result<Option<String>, ReportError> {
    if path.is_file() {
        read(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Rows that parse; the others are counted in `skipped`.
fn lenient_csv<T: serde::de::DeserializeOwned>(text: &str, skipped: &mut usize) -> Vec<T> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for row in reader.deserialize() {
        match row {
            Ok(row) => rows.push(row),
            Err(_) => *skipped += 1,
        }
    }
    rows
}

fn load_latency(
    path: &Path,
    start_unix_s: f64,
    skipped: &mut usize,
) -> Result<BTreeMap<u32, Vec<(f64, f64)>>, ReportError> {
    let mut out: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(ReportError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    // Streamed row by row: the samples are the largest part of a run directory.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    for row in reader.deserialize::<SampleRow>() {
        match row {
            Ok(r) => {
                if let Some(latency_us) = r.latency_us {
                    let point = (r.recv_unix_s - start_unix_s, latency_us);
                    out.entry(r.dummy).or_default().push(point);
                }
            }
            Err(_) => *skipped += 1,
        }
    }
    Ok(out)
}
