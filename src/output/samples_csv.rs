//! `samples.csv`: every received message, one row each, in arrival order, streamed as it
//! arrives.
//!
//! An empty cell means "unavailable" (legacy senders have no seq, step or sender clock).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::{RecvClock, Sample, Transport};

use super::{OutputError, RecordSink};

/// One received message as written to `samples.csv`. Column order is the
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

/// Column names, in [`SampleRow`] field order.
pub const HEADER: &str = "dummy,session,seq,step,sim_time_s,sent_unix_s,recv_unix_s,read_unix_s,latency_us,rtt_us,recv_clock,transport";

/// The CSV format of [`SampleRow`]s on any writer (header written with the first row).
///
/// Hand-formatted with `itoa`/`ryu` into one reused line buffer: the same text `csv` +
/// `serde` would write (shortest round-trip floats, empty cells for `None`), without their
/// per-row cost, because this runs once per received message.
#[derive(Debug)]
pub struct SampleCsv<W: Write> {
    inner: W,
    line: Vec<u8>,
    header_written: bool,
}

impl<W: Write> SampleCsv<W> {
    pub fn new(writer: W) -> Self {
        Self {
            inner: writer,
            line: Vec::with_capacity(256),
            header_written: false,
        }
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn format(&mut self, r: &SampleRow) {
        let line = &mut self.line;
        line.clear();
        if !self.header_written {
            line.extend_from_slice(HEADER.as_bytes());
            line.push(b'\n');
        }
        let mut ints = itoa::Buffer::new();
        let mut floats = ryu::Buffer::new();
        let mut int = |line: &mut Vec<u8>, v: Option<u64>| {
            if let Some(v) = v {
                line.extend_from_slice(ints.format(v).as_bytes());
            }
            line.push(b',');
        };
        int(line, Some(u64::from(r.dummy)));
        int(line, Some(u64::from(r.session)));
        int(line, r.seq.map(u64::from));
        int(line, r.step.map(u64::from));
        let mut float = |line: &mut Vec<u8>, v: Option<f64>| {
            if let Some(v) = v {
                line.extend_from_slice(floats.format(v).as_bytes());
            }
            line.push(b',');
        };
        float(line, Some(r.sim_time_s));
        float(line, r.sent_unix_s);
        float(line, Some(r.recv_unix_s));
        float(line, Some(r.read_unix_s));
        float(line, r.latency_us);
        int(line, r.rtt_us.map(u64::from));
        line.extend_from_slice(r.recv_clock.as_str().as_bytes());
        line.push(b',');
        line.extend_from_slice(r.transport.as_str().as_bytes());
        line.push(b'\n');
    }
}

impl<W: Write> RecordSink<SampleRow> for SampleCsv<W> {
    fn write_record(&mut self, row: &SampleRow) -> std::io::Result<()> {
        self.format(row);
        self.inner.write_all(&self.line)?;
        self.header_written = true;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Buffer of the samples file: large writes, a handful per second at 20,000 rows/s.
const FILE_BUFFER: usize = 256 * 1024;

/// Streams every row into one file (`samples.csv` in the run directory), in arrival order.
///
/// One file for all dummies: at 10,000 dummies a file each would hold 10,000 descriptors
/// and buffers open; readers group by the `dummy` column.
#[derive(Debug)]
pub struct SampleCsvWriter {
    path: PathBuf,
    csv: SampleCsv<BufWriter<File>>,
}

impl SampleCsvWriter {
    /// Creates (truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let file = File::create(path).map_err(|e| OutputError::io("create", path, e))?;
        Ok(Self {
            path: path.to_owned(),
            csv: SampleCsv::new(BufWriter::with_capacity(FILE_BUFFER, file)),
        })
    }

    /// Appends one row.
    pub fn write(&mut self, row: &SampleRow) -> Result<(), OutputError> {
        self.csv
            .write_record(row)
            .map_err(|e| OutputError::io("write", &self.path, e))
    }

    /// Pushes buffered rows to the file.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.csv
            .flush()
            .map_err(|e| OutputError::io("flush", &self.path, e))
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
    fn writer_streams_every_dummy_into_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        let mut w = SampleCsvWriter::create(&path).unwrap();
        let rows = sample_rows(&[0, 1], 4);
        for row in &rows {
            w.write(row).unwrap();
        }
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 9, "header + 8 rows");
        assert_eq!(read_sample_rows(text.as_bytes()).unwrap(), rows);
    }

    #[test]
    fn hand_formatting_writes_what_serde_csv_writes() {
        let mut rows = sample_rows(&[0, 2], 5);
        rows[1].sim_time_s = f64::NAN;
        rows[2].latency_us = Some(f64::INFINITY);
        rows[3].recv_unix_s = 1_764_470_400.123_456_7;
        rows[4].latency_us = Some(-12.5e-7);
        let mut ours = SampleCsv::new(Vec::new());
        let mut reference = csv::Writer::from_writer(Vec::new());
        for row in &rows {
            ours.write_record(row).unwrap();
            reference.serialize(row).unwrap();
        }
        let ours = String::from_utf8(ours.into_inner().unwrap()).unwrap();
        let reference = String::from_utf8(reference.into_inner().unwrap()).unwrap();
        assert_eq!(ours, reference);
    }
}
