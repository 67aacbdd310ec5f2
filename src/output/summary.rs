//! `summary.json`: the final [`RunSnapshot`] plus run metadata. Schema:
//! `docs/summary.schema.json`, described in `docs/OUTPUT.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::{RunSnapshot, SessionRecord};
use crate::run::Verdict;

use super::{format, OutputError};

/// Version of the `summary.json` layout; bumped on incompatible changes.
pub const SUMMARY_SCHEMA_VERSION: u32 = 2;

/// What the run was: how it was started and with which settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// `std::env::args()` of the bridge.
    pub command_line: Vec<String>,
    /// The bridge's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub started_unix_s: f64,
    /// Effective settings (flag name → value), e.g. `"listen": "127.0.0.1:8888"`.
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl RunMeta {
    /// Metadata for this process: its command line and the crate version.
    pub fn for_this_process(
        started_unix_s: f64,
        settings: BTreeMap<String, serde_json::Value>,
    ) -> Self {
        Self {
            command_line: std::env::args().collect(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_unix_s,
            settings,
        }
    }
}

/// The whole of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub tool: String,
    pub version: String,
    pub command_line: Vec<String>,
    pub started_unix_s: f64,
    /// RFC 3339 UTC form of `started_unix_s`, for people.
    pub started_utc: String,
    /// `None` while the run is still going (periodic summaries).
    pub ended_unix_s: Option<f64>,
    pub ended_utc: Option<String>,
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Earlier sessions of dummies that restarted.
    pub sessions: Vec<SessionRecord>,
    /// The last snapshot of the run.
    #[serde(rename = "final")]
    pub final_snapshot: RunSnapshot,
    /// The run against its gates (`--min-rtf`, `--max-loss`, `--max-latency-p99`); `None` in
    /// a periodic summary of a run still going.
    #[serde(default)]
    pub verdict: Option<Verdict>,
}

impl Summary {
    pub fn new(
        meta: &RunMeta,
        final_snapshot: &RunSnapshot,
        sessions: &[SessionRecord],
        ended_unix_s: Option<f64>,
        verdict: Option<&Verdict>,
    ) -> Self {
        Self {
            schema_version: SUMMARY_SCHEMA_VERSION,
            tool: "coppelia-bridge".to_owned(),
            version: meta.version.clone(),
            command_line: meta.command_line.clone(),
            started_unix_s: meta.started_unix_s,
            started_utc: format::utc_rfc3339(meta.started_unix_s),
            ended_unix_s,
            ended_utc: ended_unix_s.map(format::utc_rfc3339),
            settings: meta.settings.clone(),
            sessions: sessions.to_vec(),
            final_snapshot: final_snapshot.clone(),
            verdict: verdict.cloned(),
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, OutputError> {
        let mut bytes = Vec::new();
        self.write_json(&mut bytes)
            .map_err(|source| OutputError::Json {
                what: "summary.json",
                source,
            })?;
        Ok(bytes)
    }

    /// [`Self::to_json`] streamed into `w`: at 10,000 dummies the text is about 17 MB, which
    /// a buffer would hold (and the allocator keep or return) once per periodic summary.
    pub fn write_json(&self, w: &mut dyn Write) -> Result<(), serde_json::Error> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        w.write_all(b"\n").map_err(serde_json::Error::io)
    }

    /// Writes `path` atomically ([`write_atomic_with`]), streamed.
    pub fn write_to(&self, path: &Path) -> Result<(), OutputError> {
        write_atomic_with(path, |w| self.write_json(w)).map_err(|e| match e {
            AtomicError::Output(e) => e,
            AtomicError::Content(e) if e.is_io() => OutputError::io("write", path, e.into()),
            AtomicError::Content(source) => OutputError::Json {
                what: "summary.json",
                source,
            },
        })
    }
}

/// Writes `bytes` to `path` so that readers see either the old or the new content, never
/// a partial file: write a temporary file in the same directory, fsync it, rename it over
/// `path` (rename is atomic within one file system, POSIX `rename(2)`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_with(path, |w| w.write_all(bytes)).map_err(|e| match e {
        AtomicError::Output(e) => e,
        AtomicError::Content(e) => OutputError::io("write", path, e),
    })
}

/// What [`write_atomic_with`] can fail with: the file, or the content's producer.
#[derive(Debug)]
pub enum AtomicError<E> {
    Output(OutputError),
    Content(E),
}

/// [`write_atomic`] for content streamed by `produce` (through a buffer) rather than held
/// in memory. Nothing replaces `path` unless `produce` succeeds. Its own errors, its
/// writes' included, come back as [`AtomicError::Content`]; finishing the file (flush,
/// fsync, rename) as [`AtomicError::Output`].
pub fn write_atomic_with<T, E>(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> Result<T, E>,
) -> Result<T, AtomicError<E>> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir, path).map_err(AtomicError::Output)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut tmp.file);
    let value = produce(&mut w).map_err(AtomicError::Content)?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(|e| AtomicError::Output(OutputError::io("write", &tmp.path, e)))?;
    std::fs::rename(&tmp.path, path)
        .map_err(|e| AtomicError::Output(OutputError::io("rename into place", path, e)))?;
    tmp.renamed = true;
    Ok(value)
}

/// A temporary file removed on drop unless renamed.
struct TempFile {
    file: std::fs::File,
    path: std::path::PathBuf,
    renamed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn tempfile_in(dir: &Path, target: &Path) -> Result<TempFile, OutputError> {
    let name = target
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy());
    let path = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let file = std::fs::File::create(&path).map_err(|e| OutputError::io("create", &path, e))?;
    Ok(TempFile {
        file,
        path,
        renamed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::{sample_run_snapshot, sample_sessions, RUN_START_UNIX_S};

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn atomic_write_to_a_missing_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("summary.json");
        let err = write_atomic(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        assert!(err.contains("--out"), "{err}");
    }

    #[test]
    fn summary_round_trips_and_keeps_unavailable_values_null() {
        let meta = RunMeta {
            command_line: vec!["coppelia-bridge".into(), "run".into()],
            version: "0.1.0".into(),
            started_unix_s: RUN_START_UNIX_S,
            settings: BTreeMap::new(),
        };
        let s = Summary::new(
            &meta,
            &sample_run_snapshot(),
            &sample_sessions(),
            Some(RUN_START_UNIX_S + 12.5),
            None,
        );
        let bytes = s.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["started_utc"], "2026-01-02T03:04:05Z");
        assert!(value["final"]["dummies"][2]["latency"].is_null());
        let back: Summary = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, s);
    }
}
