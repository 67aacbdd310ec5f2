//! `samples.csv`: every received message, one row each, in arrival order, streamed as it
//! arrives.
//!
//! An empty cell means "unavailable" (legacy senders have no seq, step or sender clock).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::{RecvClock, Sample, Transport};

use super::sample_file::{SampleEncoder, SampleFile};
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
                .map(|sent| s.recv_unix_ns.saturating_sub(sent) as f64 / 1e3),
            rtt_us: s.rtt_us,
            recv_clock: s.recv_clock,
            transport,
        }
    }
}

/// Column names, in [`SampleRow`] field order.
pub const HEADER: &str = "dummy,session,seq,step,sim_time_s,sent_unix_s,recv_unix_s,read_unix_s,latency_us,rtt_us,recv_clock,transport";

/// A time as measured (integer nanoseconds), or a float from elsewhere that nanoseconds
/// cannot hold.
#[derive(Debug, Clone, Copy)]
enum Time {
    Ns(i64),
    Float(f64),
}

impl Time {
    /// `v` units of `ns_per_unit` nanoseconds each (1e9 for seconds, 1e3 for µs): as whole
    /// nanoseconds when they fit in an i64, else kept as the float.
    fn of_float(v: f64, ns_per_unit: f64) -> Self {
        let ns = (v * ns_per_unit).round();
        if ns.is_finite() && ns.abs() < 9.0e18 {
            Time::Ns(ns as i64)
        } else {
            Time::Float(v)
        }
    }
}

/// One row as it is formatted: times as integer nanoseconds, exactly as measured.
#[derive(Debug, Clone, Copy)]
struct RowNs {
    dummy: u32,
    session: u32,
    seq: Option<u32>,
    step: Option<u32>,
    sim_time_s: f64,
    sent: Option<Time>,
    recv: Time,
    read: Time,
    latency: Option<Time>,
    rtt_us: Option<u32>,
    recv_clock: RecvClock,
    transport: Transport,
}

impl RowNs {
    fn of_sample(dummy: u32, session: u32, transport: Transport, s: &Sample) -> Self {
        Self {
            dummy,
            session,
            seq: s.seq,
            step: s.step,
            sim_time_s: s.sim_time_s,
            sent: s.sent_unix_ns.map(Time::Ns),
            recv: Time::Ns(s.recv_unix_ns),
            read: Time::Ns(s.read_unix_ns),
            // Saturating: a hostile sender's absurd clock must not overflow anything.
            latency: s
                .sent_unix_ns
                .map(|sent| Time::Ns(s.recv_unix_ns.saturating_sub(sent))),
            rtt_us: s.rtt_us,
            recv_clock: s.recv_clock,
            transport,
        }
    }

    fn of_row(r: &SampleRow) -> Self {
        let secs = |s: f64| Time::of_float(s, 1e9);
        Self {
            dummy: r.dummy,
            session: r.session,
            seq: r.seq,
            step: r.step,
            sim_time_s: r.sim_time_s,
            sent: r.sent_unix_s.map(secs),
            recv: secs(r.recv_unix_s),
            read: secs(r.read_unix_s),
            latency: r.latency_us.map(|us| Time::of_float(us, 1e3)),
            rtt_us: r.rtt_us,
            recv_clock: r.recv_clock,
            transport: r.transport,
        }
    }
}

/// The CSV format of samples on any writer (header written with the first row).
///
/// Formatted by hand into one reused line buffer, because this runs once per received
/// message: integers with `itoa`; times, which are integer nanoseconds, as exact decimals
/// (`1764470400.123456789`, `12.345` µs; trailing zeros dropped); the simulation time, a
/// float from the wire, with `ryu` (shortest round trip). `csv` + `serde` read it back
/// (a test checks the round trip) and any CSV reader takes it.
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

    fn write_row(&mut self, r: &RowNs) -> std::io::Result<()> {
        self.format(r);
        self.inner.write_all(&self.line)?;
        self.header_written = true;
        Ok(())
    }

    fn format(&mut self, r: &RowNs) {
        let line = &mut self.line;
        line.clear();
        if !self.header_written {
            line.extend_from_slice(HEADER.as_bytes());
            line.push(b'\n');
        }
        let mut ints = itoa::Buffer::new();
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
        line.extend_from_slice(ryu::Buffer::new().format(r.sim_time_s).as_bytes());
        line.push(b',');
        let time = |line: &mut Vec<u8>, v: Option<Time>, digits: u32| {
            match v {
                Some(Time::Ns(ns)) => push_fixed(line, ns, digits),
                Some(Time::Float(f)) => {
                    line.extend_from_slice(ryu::Buffer::new().format(f).as_bytes())
                }
                None => {}
            }
            line.push(b',');
        };
        time(line, r.sent, 9);
        time(line, Some(r.recv), 9);
        time(line, Some(r.read), 9);
        time(line, r.latency, 3);
        int(line, r.rtt_us.map(u64::from));
        line.extend_from_slice(r.recv_clock.as_str().as_bytes());
        line.push(b',');
        line.extend_from_slice(r.transport.as_str().as_bytes());
        line.push(b'\n');
    }
}

/// `v / 10^digits` as an exact decimal: at least one fractional digit, trailing zeros of
/// the fraction dropped (`1.5`, `-0.25`, `3.0`).
fn push_fixed(line: &mut Vec<u8>, v: i64, digits: u32) {
    let scale = 10u64.pow(digits);
    let magnitude = v.unsigned_abs();
    if v < 0 {
        line.push(b'-');
    }
    let mut ints = itoa::Buffer::new();
    line.extend_from_slice(ints.format(magnitude / scale).as_bytes());
    line.push(b'.');
    // The fraction zero-padded to `digits`, then its trailing zeros dropped (one kept).
    let frac = ints.format(magnitude % scale).as_bytes();
    line.extend(std::iter::repeat_n(b'0', digits as usize - frac.len()));
    line.extend_from_slice(frac);
    let first_digit = line.len() - digits as usize;
    while line.len() > first_digit + 1 && line.last() == Some(&b'0') {
        line.pop();
    }
}

/// The receive path's call: no [`SampleRow`] needed.
impl<W: Write> SampleEncoder for SampleCsv<W> {
    fn write_sample(
        &mut self,
        dummy: u32,
        session: u32,
        transport: Transport,
        s: &Sample,
    ) -> std::io::Result<()> {
        self.write_row(&RowNs::of_sample(dummy, session, transport, s))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> RecordSink<SampleRow> for SampleCsv<W> {
    fn write_record(&mut self, row: &SampleRow) -> std::io::Result<()> {
        self.write_row(&RowNs::of_row(row))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `samples.csv` in the run directory.
pub type SampleCsvWriter = SampleFile<SampleCsv<BufWriter<File>>>;

impl SampleCsvWriter {
    /// Creates (truncates) `samples.csv` at `path`.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        Self::create_with(path, SampleCsv::new)
    }

    /// Appends one row.
    pub fn write(&mut self, row: &SampleRow) -> Result<(), OutputError> {
        let r = self.encoder_mut().write_record(row);
        r.map_err(|e| self.failed("write", e))
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

    /// Equal within one unit in the last place: times are written as exact nanoseconds, so a
    /// value that started as an f64 of seconds comes back as the f64 nearest to its
    /// nanosecond, at most one ulp away (~0.24 µs at today's epoch).
    fn same(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 2.0 * a.abs().max(b.abs()) * f64::EPSILON
    }

    fn assert_rows_match(back: &[SampleRow], rows: &[SampleRow]) {
        assert_eq!(back.len(), rows.len());
        for (b, r) in back.iter().zip(rows) {
            let opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => same(x, y),
                (x, y) => x.is_none() && y.is_none(),
            };
            assert!(
                same(b.recv_unix_s, r.recv_unix_s)
                    && same(b.read_unix_s, r.read_unix_s)
                    && opt(b.sent_unix_s, r.sent_unix_s)
                    && opt(b.latency_us, r.latency_us)
                    && b.sim_time_s == r.sim_time_s,
                "{b:?} != {r:?}"
            );
            assert_eq!(
                (
                    b.dummy,
                    b.session,
                    b.seq,
                    b.step,
                    b.rtt_us,
                    b.recv_clock,
                    b.transport
                ),
                (
                    r.dummy,
                    r.session,
                    r.seq,
                    r.step,
                    r.rtt_us,
                    r.recv_clock,
                    r.transport
                )
            );
        }
    }

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
        assert_rows_match(&read_sample_rows(&bytes[..]).unwrap(), &rows);
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
        assert_rows_match(&read_sample_rows(text.as_bytes()).unwrap(), &rows);
    }

    #[test]
    fn fixed_decimals_are_exact_and_short() {
        let f = |v: i64, d: u32| {
            let mut line = Vec::new();
            push_fixed(&mut line, v, d);
            String::from_utf8(line).unwrap()
        };
        assert_eq!(f(1_764_470_400_123_456_789, 9), "1764470400.123456789");
        assert_eq!(f(1_500_000_000, 9), "1.5");
        assert_eq!(f(3_000_000_000, 9), "3.0");
        assert_eq!(f(5, 9), "0.000000005");
        assert_eq!(f(-250, 3), "-0.25");
        assert_eq!(f(12_345, 3), "12.345");
        assert_eq!(f(0, 3), "0.0");
        assert_eq!(f(i64::MIN, 9), "-9223372036.854775808");
    }

    proptest::proptest! {
        /// The same text as a plain formatter: zero-padded fraction, trailing zeros dropped.
        #[test]
        fn fixed_decimals_match_a_plain_formatter(v in proptest::num::i64::ANY, d in 1u32..=9) {
            let (scale, m) = (10i128.pow(d), i128::from(v).abs());
            let frac = format!("{:0w$}", m % scale, w = d as usize);
            let frac = match frac.trim_end_matches('0') {
                "" => "0",
                f => f,
            };
            let sign = if v < 0 { "-" } else { "" };
            let mut line = Vec::new();
            push_fixed(&mut line, v, d);
            proptest::prop_assert_eq!(
                String::from_utf8(line).unwrap(),
                format!("{sign}{}.{frac}", m / scale)
            );
        }
    }

    proptest::proptest! {
        /// What is written from a receiver's sample reads back through `csv` + `serde` as the
        /// same values (times to the nanosecond, latency to the nanosecond in µs).
        #[test]
        fn samples_read_back_through_serde(
            recv in 1_000_000_000_000_000_000i64..2_000_000_000_000_000_000,
            transit in -5_000_000i64..50_000_000,
            backlog in 0i64..20_000_000,
            sim in proptest::num::f64::ANY,
            seq in proptest::option::of(proptest::num::u32::ANY),
            rtt in proptest::option::of(proptest::num::u32::ANY),
            legacy in proptest::bool::ANY,
        ) {
            let sample = Sample {
                seq,
                step: seq,
                sim_time_s: sim,
                sent_unix_ns: (!legacy).then_some(recv - transit),
                recv_unix_ns: recv,
                read_unix_ns: recv + backlog,
                recv_clock: RecvClock::Kernel,
                rtt_us: rtt,
            };
            let mut w = SampleCsv::new(Vec::new());
            w.write_sample(7, 2, Transport::Udp, &sample).unwrap();
            let bytes = w.into_inner().unwrap();
            let back = &read_sample_rows(&bytes[..]).unwrap()[0];
            let expected = SampleRow::from_sample(7, 2, Transport::Udp, &sample);
            // Times come back as the f64 nearest to the exact nanosecond.
            proptest::prop_assert!(same(back.recv_unix_s, expected.recv_unix_s));
            proptest::prop_assert!(same(back.read_unix_s, expected.read_unix_s));
            proptest::prop_assert_eq!(back.sent_unix_s.is_some(), !legacy);
            if let (Some(a), Some(b)) = (back.latency_us, expected.latency_us) {
                // ns → µs with three decimals is exact: the same f64 as transit / 1e3.
                proptest::prop_assert!(same(a, b), "{} vs {}", a, b);
            }
            proptest::prop_assert!(back.sim_time_s == sim || (sim.is_nan() && back.sim_time_s.is_nan()));
            proptest::prop_assert_eq!((back.seq, back.rtt_us, back.dummy, back.session), (seq, rtt, 7, 2));
        }
    }
}
