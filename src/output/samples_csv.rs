//! `samples/dummy_<id>.csv`: every received message, one row each, streamed as it arrives.
//!
//! An empty cell means "unavailable" (legacy senders have no seq, step or sender clock).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::{RecvClock, Sample, Transport};

use super::{OutputError, RecordSink};

/// One received message as written to `samples/dummy_<id>.csv`. Column order is the
/// field order; `docs/OUTPUT.md` defines each column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub dummy: u32,
    pub session: u32,
    pub seq: Option<u32>,
    pub step: Option<u32>,
    pub sim_time_s: f64,
    pub sent_unix_s: Option<f64>,
    pub recv_unix_s: f64,
    pub read_unix_s: f64,
    /// Raw one-way latency `recv − sent`, µs, before any plausibility filter.
    pub latency_us: Option<f64>,
    pub rtt_us: Option<u32>,
    pub recv_clock: RecvClock,
    pub transport: Transport,
}

impl SampleRow {
    /// Maps an aggregator [`Sample`] to a row; latency is the raw `recv − sent`.
    pub fn from_sample(dummy: u32, session: u32, transport: Transport, s: &Sample) -> Self {
        let to_s = |ns: i64| ns as f64 / 1e9;
        Self {
            dummy,
            session,
            seq: s.seq,
            step: s.step,
            sim_time_s: s.sim_time_s,
            sent_unix_s: s.sent_unix_ns.map(to_s),
            recv_unix_s: to_s(s.recv_unix_ns),
            read_unix_s: to_s(s.read_unix_ns),
            latency_us: s
                .sent_unix_ns
                .map(|sent| (s.recv_unix_ns - sent) as f64 / 1e3),
            rtt_us: s.rtt_us,
            recv_clock: s.recv_clock,
            transport,
        }
    }
}

/// The CSV format of [`SampleRow`]s on any writer (header written with the first row).
#[derive(Debug)]
pub struct SampleCsv<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> SampleCsv<W> {
    pub fn new(writer: W) -> Self {
        Self {
            inner: csv::Writer::from_writer(writer),
        }
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> RecordSink<SampleRow> for SampleCsv<W> {
    fn write_record(&mut self, row: &SampleRow) -> std::io::Result<()> {
        self.inner.serialize(row).map_err(std::io::Error::from)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// File name of a dummy's sample file inside `samples/`.
pub fn sample_file_name(dummy: u32) -> String {
    format!("dummy_{dummy}.csv")
}

/// Streams rows into `samples/dummy_<id>.csv`, opening each file on its dummy's first row.
#[derive(Debug)]
pub struct SampleCsvWriter {
    dir: PathBuf,
    files: BTreeMap<u32, SampleCsv<BufWriter<File>>>,
}

impl SampleCsvWriter {
    /// Creates `dir` (the `samples/` folder) if needed.
    pub fn create(dir: &Path) -> Result<Self, OutputError> {
        std::fs::create_dir_all(dir).map_err(|e| OutputError::io("create directory", dir, e))?;
        Ok(Self {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
        })
    }

    /// Appends one row to its dummy's file.
    pub fn write(&mut self, row: &SampleRow) -> Result<(), OutputError> {
        let path = self.dir.join(sample_file_name(row.dummy));
        let sink = match self.files.entry(row.dummy) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let file = File::create(&path).map_err(|e| OutputError::io("create", &path, e))?;
                v.insert(SampleCsv::new(BufWriter::new(file)))
            }
        };
        sink.write_record(row)
            .map_err(|e| OutputError::io("write", &path, e))
    }

    /// Flushes every open file.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        for (id, sink) in &mut self.files {
            sink.flush()
                .map_err(|e| OutputError::io("flush", self.dir.join(sample_file_name(*id)), e))?;
        }
        Ok(())
    }
}

/// Reads one sample file back (used by the report).
pub fn read_sample_rows(reader: impl std::io::Read) -> Result<Vec<SampleRow>, csv::Error> {
    csv::Reader::from_reader(reader).deserialize().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_rows;

    #[test]
    fn rows_round_trip_with_empty_cells_for_unavailable_values() {
        let rows = sample_rows(&[0, 2], 3);
        let mut sink = SampleCsv::new(Vec::new());
        for row in &rows {
            sink.write_record(row).unwrap();
        }
        let bytes = sink.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("dummy,session,seq,step,sim_time_s,sent_unix_s,"));
        // Legacy dummy 2: seq, step, sent, latency, rtt empty.
        let legacy_line = text.lines().find(|l| l.starts_with("2,")).unwrap();
        assert!(legacy_line.starts_with("2,0,,,0.0,,"), "{legacy_line}");
        assert_eq!(read_sample_rows(&bytes[..]).unwrap(), rows);
    }

    #[test]
    fn from_sample_computes_raw_latency_in_microseconds() {
        let sample = Sample {
            seq: Some(7),
            step: Some(7),
            sim_time_s: 0.35,
            sent_unix_ns: Some(1_000_000_000),
            recv_unix_ns: 1_000_250_000,
            read_unix_ns: 1_000_260_000,
            recv_clock: RecvClock::Kernel,
            rtt_us: None,
        };
        let row = SampleRow::from_sample(3, 1, Transport::Udp, &sample);
        assert_eq!(row.latency_us, Some(250.0));
        assert_eq!(row.sent_unix_s, Some(1.0));
        assert_eq!((row.dummy, row.session, row.seq), (3, 1, Some(7)));
    }

    #[test]
    fn writer_opens_one_file_per_dummy() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SampleCsvWriter::create(&dir.path().join("samples")).unwrap();
        for row in sample_rows(&[0, 1], 4) {
            w.write(&row).unwrap();
        }
        w.flush().unwrap();
        for id in [0, 1] {
            let text =
                std::fs::read_to_string(dir.path().join("samples").join(sample_file_name(id)))
                    .unwrap();
            assert_eq!(text.lines().count(), 5, "header + 4 rows");
        }
    }
}
