//! `report.html` for a run directory: reads what the run wrote (summary.json, rtf.csv,
//! samples.csv, events.jsonl) and writes one self-contained page (inline CSS, SVG and a
//! small script for sorting tables; no network).
//!
//! - [`timeline`]: the plots' time series from the samples (pure, streaming, bounded).
//! - [`svg`]: the plots (rendering only).
//! - `html`: the page.
//! - `compare_page`: `compare.html`, several runs' plots overlaid (`coppelia-bridge compare`).

mod compare_page;
pub(crate) mod html;
#[cfg(test)]
mod proptests;
pub mod svg;
pub mod timeline;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::output::events::{read_events, Event};
use crate::output::rtf_csv::RtfRow;
use crate::output::run_dir::{
    EVENTS_FILE, REPORT_FILE, RTF_FILE, SAMPLES_BIN_FILE, SAMPLES_FILE, SUMMARY_FILE,
};
use crate::output::samples_csv::SampleRow;
use crate::output::summary::{write_atomic, Summary};
use crate::output::OutputError;

use timeline::{Timeline, TimelineData, DETAIL_LIMIT};

/// Dummies drawn one by one beside the band when there are more than [`DETAIL_LIMIT`]:
/// the 3 with the lowest worst 1 s RTF, and the one with the highest latency p99 and the
/// one with the highest loss, if others.
pub const HIGHLIGHT_BY_RTF: usize = 3;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path} is not a run directory: no such directory (check the path; runs are in runs/<UTC time>/ unless --out named another)")]
    NoSuchDir { path: PathBuf },
    #[error("{path} is not a run directory (no {SUMMARY_FILE}): pass a directory written by `coppelia-bridge run` or `demo`, e.g. runs/20260102T030405Z")]
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
    /// The time series of `samples.csv` (bounded whatever the run length).
    pub timeline: TimelineData,
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

/// Writes `compare.html` at `path` for runs already loaded with [`load_run_banded`]
/// (label, data), the first being the baseline.
pub fn write_compare(runs: &[(String, RunData)], path: &Path) -> Result<(), ReportError> {
    let page = compare_page::render_page(runs);
    write_atomic(path, page.as_bytes())?;
    Ok(())
}

/// Renders `compare.html` for already loaded runs (pure).
pub fn render_compare(runs: &[(String, RunData)]) -> String {
    compare_page::render_page(runs)
}

/// Renders the page for already loaded data (pure).
pub fn render_report(data: &RunData) -> String {
    html::render_page(data)
}

/// Reads a run directory. Only `summary.json` is required: a run killed early may lack
/// the others, and the report then shows "no data" where they would be.
pub fn load_run(dir: &Path) -> Result<RunData, ReportError> {
    load_run_with(dir, highlighted)
}

/// Reads a run directory for `compare.html`: every dummy goes into the bands (min /
/// median / max across dummies), none is drawn alone, whatever their number.
pub fn load_run_banded(dir: &Path) -> Result<RunData, ReportError> {
    load_run_with(dir, |_| Some(BTreeSet::new()))
}

fn load_run_with(
    dir: &Path,
    detailed: impl FnOnce(&Summary) -> Option<BTreeSet<u32>>,
) -> Result<RunData, ReportError> {
    if !dir.is_dir() {
        return Err(ReportError::NoSuchDir {
            path: dir.to_owned(),
        });
    }
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
    let span = summary.final_snapshot.elapsed_s;
    let timeline = Timeline::new(start, span, detailed(&summary));
    Ok(RunData {
        timeline: if dir.join(SAMPLES_FILE).exists() || !dir.join(SAMPLES_BIN_FILE).exists() {
            load_samples(&dir.join(SAMPLES_FILE), timeline, &mut skipped_rows)?
        } else {
            load_sample_log(&dir.join(SAMPLES_BIN_FILE), timeline, &mut skipped_rows)?
        },
        summary,
        rtf,
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

/// Every dummy the run saw: in the final snapshot or in an earlier session.
pub fn dummy_ids(summary: &Summary) -> BTreeSet<u32> {
    let fin = summary.final_snapshot.dummies.iter().map(|d| d.id);
    fin.chain(summary.sessions.iter().map(|s| s.dummy_id))
        .collect()
}

/// `None` when every dummy is drawn (at most [`DETAIL_LIMIT`]); else the worst few (pure).
pub fn highlighted(summary: &Summary) -> Option<BTreeSet<u32>> {
    if dummy_ids(summary).len() <= DETAIL_LIMIT {
        return None;
    }
    let mut ds: Vec<&crate::metrics::DummySnapshot> =
        summary.final_snapshot.dummies.iter().collect();
    let mut pick = BTreeSet::new();
    let rtf = crate::output::columns::column(crate::output::columns::ColumnId::RtfWorst1s);
    ds.sort_by(|a, b| rtf.compare(a, b));
    pick.extend(ds.iter().take(HIGHLIGHT_BY_RTF).map(|d| d.id));
    for id in [
        crate::output::columns::ColumnId::LatencyP99,
        crate::output::columns::ColumnId::LossPct,
    ] {
        let c = crate::output::columns::column(id);
        ds.sort_by(|a, b| c.compare(a, b));
        if let Some(d) = ds.iter().find(|d| c.value(d).number().is_some()) {
            pick.insert(d.id);
        }
    }
    Some(pick)
}

/// [`load_samples`] from `samples.bin` (`--samples-format bin`). Damaged records and a
/// partial last record are counted as skipped rows.
fn load_sample_log(
    path: &Path,
    mut timeline: Timeline,
    skipped: &mut usize,
) -> Result<TimelineData, ReportError> {
    use crate::output::samples_bin::{ReadError, SampleBinReader};
    let failed = |source: std::io::Error| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut log = SampleBinReader::new(std::io::BufReader::with_capacity(1 << 16, file))
        .map_err(failed)?
        .map_err(|e| failed(std::io::Error::other(e)))?;
    for r in log.by_ref() {
        match r {
            Ok(rec) => timeline.push(&rec.row()),
            Err(ReadError::Format(_)) => *skipped += 1,
            Err(ReadError::Io(e)) => return Err(failed(e)),
        }
    }
    if log.partial_tail() > 0 {
        *skipped += 1;
    }
    Ok(timeline.finish())
}

fn load_samples(
    path: &Path,
    mut timeline: Timeline,
    skipped: &mut usize,
) -> Result<TimelineData, ReportError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(timeline.finish()),
        Err(source) => {
            return Err(ReportError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    // Streamed row by row: the samples are the largest part of a run directory (millions
    // of rows); the timeline keeps a bounded summary of them.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let mut record = csv::StringRecord::new();
    let headers = reader
        .headers()
        .map_err(|e| ReportError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?
        .clone();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => match record.deserialize::<SampleRow>(Some(&headers)) {
                Ok(row) => timeline.push(&row),
                Err(_) => *skipped += 1,
            },
            Err(e) if e.is_io_error() => {
                return Err(ReportError::Read {
                    path: path.to_owned(),
                    source: std::io::Error::other(e),
                })
            }
            Err(_) => *skipped += 1,
        }
    }
    Ok(timeline.finish())
}
