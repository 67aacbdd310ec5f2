//! The run directory (`--out`, default `runs/<UTC stamp>/`): [`RunWriter`] owns every
//! file in it. Layout: `docs/OUTPUT.md`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::metrics::{RunSnapshot, SessionRecord};

use super::events::{Event, EventLog};
use super::rtf_csv::RtfCsv;
use super::samples_bin::SampleBinWriter;
use super::samples_csv::{SampleCsvWriter, SampleRow};
use super::summary::{RunMeta, Summary};
use super::{format, OutputError, RecordSink};

pub const SUMMARY_FILE: &str = "summary.json";
pub const RTF_FILE: &str = "rtf.csv";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const SAMPLES_FILE: &str = "samples.csv";
/// The binary sample log (`--samples-format bin`); `coppelia-bridge convert` makes
/// `samples.csv` of it.
pub const SAMPLES_BIN_FILE: &str = "samples.bin";
pub const REPORT_FILE: &str = "report.html";

/// `base/<UTC stamp>`, e.g. `runs/20260102T030405Z`, for a run started at `now_unix_s`.
pub fn default_run_dir(base: &Path, now_unix_s: f64) -> PathBuf {
    base.join(format::utc_compact(now_unix_s))
}

/// How the run directory keeps every received message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplesFormat {
    /// `samples.csv`, one text row per message.
    #[default]
    Csv,
    /// `samples.bin`, one 56-byte record per message (cheaper to write; `convert` makes
    /// the CSV).
    Bin,
}

impl SamplesFormat {
    /// The file it writes in the run directory.
    pub fn file_name(self) -> &'static str {
        match self {
            SamplesFormat::Csv => SAMPLES_FILE,
            SamplesFormat::Bin => SAMPLES_BIN_FILE,
        }
    }
}

/// The samples file of a run, in its format.
#[derive(Debug)]
enum Samples {
    Csv(SampleCsvWriter),
    Bin(SampleBinWriter),
}

/// Writes one run directory. The app feeds it messages, snapshots and events, calls
/// [`RunWriter::flush`] every second (so a killed run loses at most a second), and
/// [`RunWriter::finish`] at the end.
#[derive(Debug)]
pub struct RunWriter {
    dir: PathBuf,
    meta: RunMeta,
    samples: Samples,
    rtf: RtfCsv<BufWriter<File>>,
    events: EventLog<BufWriter<File>>,
}

impl RunWriter {
    /// Creates `dir` (and parents) and opens `rtf.csv`, `events.jsonl` and `samples.csv`.
    /// Refuses a directory that already holds a run, rather than truncate its files.
    pub fn create(dir: &Path, meta: RunMeta) -> Result<Self, OutputError> {
        Self::create_with(dir, meta, SamplesFormat::Csv)
    }

    /// [`Self::create`], keeping the samples in `format`.
    pub fn create_with(
        dir: &Path,
        meta: RunMeta,
        format: SamplesFormat,
    ) -> Result<Self, OutputError> {
        if dir.join(SUMMARY_FILE).exists() || dir.join(RTF_FILE).exists() {
            return Err(OutputError::RunDirExists {
                path: dir.to_owned(),
                file: if dir.join(SUMMARY_FILE).exists() {
                    SUMMARY_FILE
                } else {
                    RTF_FILE
                },
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| OutputError::io("create directory", dir, e))?;
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(BufWriter::new)
                .map_err(|e| OutputError::io("create", path, e))
        };
        Ok(Self {
            dir: dir.to_owned(),
            meta,
            samples: {
                let path = dir.join(format.file_name());
                match format {
                    SamplesFormat::Csv => Samples::Csv(SampleCsvWriter::create(&path)?),
                    SamplesFormat::Bin => Samples::Bin(SampleBinWriter::create(&path)?),
                }
            },
            rtf: RtfCsv::new(open(RTF_FILE)?),
            events: EventLog::new(open(EVENTS_FILE)?),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one received message to the samples file (the receive path's call).
    pub fn record(
        &mut self,
        dummy: u32,
        session: u32,
        transport: crate::metrics::Transport,
        s: &crate::metrics::Sample,
    ) -> Result<(), OutputError> {
        match &mut self.samples {
            Samples::Csv(w) => w.write_sample(dummy, session, transport, s),
            Samples::Bin(w) => w.write_sample(dummy, session, transport, s),
        }
    }

    /// Appends one row to `samples.csv` (tests and examples build run directories with it;
    /// a binary log is refused, as its records hold the measured nanoseconds, not rows).
    pub fn sample(&mut self, row: &SampleRow) -> Result<(), OutputError> {
        match &mut self.samples {
            Samples::Csv(w) => w.write(row),
            Samples::Bin(_) => Err(OutputError::io(
                "write a row to",
                self.dir.join(SAMPLES_BIN_FILE),
                std::io::Error::other("rows are written to samples.csv only"),
            )),
        }
    }

    /// Appends one snapshot's rows to `rtf.csv`.
    pub fn snapshot(&mut self, s: &RunSnapshot) -> Result<(), OutputError> {
        self.rtf
            .write_record(s)
            .map_err(|e| OutputError::io("write", self.dir.join(RTF_FILE), e))
    }

    /// Appends one line to `events.jsonl`.
    pub fn event(&mut self, e: &Event) -> Result<(), OutputError> {
        self.events
            .write_record(e)
            .map_err(|err| OutputError::io("write", self.dir.join(EVENTS_FILE), err))
    }

    /// Pushes every buffered byte to the files.
    /// Each file is flushed even when another fails (a full disk, one file on another
    /// device): the first error is returned, and what can be written is.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        let samples = match &mut self.samples {
            Samples::Csv(w) => w.flush(),
            Samples::Bin(w) => w.flush(),
        };
        let rtf = self
            .rtf
            .flush()
            .map_err(|e| OutputError::io("flush", self.dir.join(RTF_FILE), e));
        let events = self
            .events
            .flush()
            .map_err(|e| OutputError::io("flush", self.dir.join(EVENTS_FILE), e));
        samples.and(rtf).and(events)
    }

    /// Writes `summary.json` atomically; `ended_unix_s` is `None` for a periodic summary
    /// of a run still going.
    pub fn write_summary(
        &self,
        snapshot: &RunSnapshot,
        sessions: &[SessionRecord],
        ended_unix_s: Option<f64>,
        verdict: Option<&crate::run::Verdict>,
    ) -> Result<PathBuf, OutputError> {
        let path = self.dir.join(SUMMARY_FILE);
        let summary = Summary::new(&self.meta, snapshot, sessions, ended_unix_s, verdict);
        summary.write_to(&path)?;
        Ok(path)
    }

    /// Flushes everything and writes the final `summary.json`; returns the directory.
    pub fn finish(
        mut self,
        last: &RunSnapshot,
        sessions: &[SessionRecord],
        ended_unix_s: f64,
        verdict: Option<&crate::run::Verdict>,
    ) -> Result<PathBuf, OutputError> {
        // The summary is written even if a flush failed: it holds every figure of the run.
        let flushed = self.flush();
        let summary = self.write_summary(last, sessions, Some(ended_unix_s), verdict);
        flushed?;
        summary?;
        Ok(self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::*;

    #[test]
    fn default_dir_is_named_after_the_utc_start() {
        let dir = default_run_dir(Path::new("runs"), RUN_START_UNIX_S);
        assert_eq!(dir, Path::new("runs/20260102T030405Z"));
    }

    #[test]
    fn flush_makes_rows_visible_before_the_run_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = RunMeta::for_this_process(RUN_START_UNIX_S, Default::default());
        let mut w = RunWriter::create(&tmp.path().join("run"), meta).unwrap();
        w.snapshot(&sample_run_snapshot()).unwrap();
        w.event(&sample_events()[0]).unwrap();
        w.sample(&sample_rows(&[0], 1)[0]).unwrap();
        w.flush().unwrap();
        let read = |p: &str| std::fs::read_to_string(tmp.path().join("run").join(p)).unwrap();
        assert_eq!(
            read(RTF_FILE).lines().count(),
            5,
            "header + sim + 3 dummies"
        );
        assert_eq!(read(EVENTS_FILE).lines().count(), 1);
        assert_eq!(read(SAMPLES_FILE).lines().count(), 2);
        let dir = w
            .finish(&sample_run_snapshot(), &[], RUN_START_UNIX_S + 13.0, None)
            .unwrap();
        assert!(dir.join(SUMMARY_FILE).is_file());
    }

    /// A full disk for one file (`samples.csv` → `/dev/full`, which fails every write with
    /// ENOSPC): the other files are still flushed and the summary still written, and the
    /// error names the file and the OS's reason.
    #[test]
    fn one_file_failing_does_not_keep_the_others_or_the_summary_from_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.join(SAMPLES_FILE)).unwrap();
        let meta = RunMeta::for_this_process(RUN_START_UNIX_S, Default::default());
        let mut w = RunWriter::create(&dir, meta).unwrap();
        w.snapshot(&sample_run_snapshot()).unwrap();
        w.event(&sample_events()[0]).unwrap();
        w.sample(&sample_rows(&[0], 1)[0]).unwrap();
        let err = w.flush().unwrap_err().to_string();
        assert!(err.contains(SAMPLES_FILE), "{err}");
        assert!(err.contains("No space left on device"), "{err}");
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
        assert_eq!(read(EVENTS_FILE).lines().count(), 1);
        assert_eq!(read(RTF_FILE).lines().count(), 5);
        assert!(w
            .finish(&sample_run_snapshot(), &[], RUN_START_UNIX_S + 1.0, None)
            .is_err());
        assert!(read(SUMMARY_FILE).contains("\"final\""), "summary written");
    }

    #[test]
    fn an_existing_run_is_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let meta = RunMeta::for_this_process(RUN_START_UNIX_S, Default::default());
        let w = RunWriter::create(tmp.path(), meta.clone()).unwrap();
        w.finish(&sample_run_snapshot(), &[], RUN_START_UNIX_S + 1.0, None)
            .unwrap();
        let err = RunWriter::create(tmp.path(), meta).unwrap_err().to_string();
        assert!(err.contains("already holds a run"), "{err}");
        assert!(err.contains("--out"), "{err}");
        let summary = std::fs::read_to_string(tmp.path().join(SUMMARY_FILE)).unwrap();
        assert!(summary.contains("\"final\""), "old summary kept");
    }
}
