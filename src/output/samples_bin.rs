//! `samples.bin`: the binary sample log (`--samples-format bin`), the same rows as
//! `samples.csv` at a fraction of the cost per message, and its converter to CSV
//! (`coppelia-bridge convert`).
//!
//! A 16-byte header, then one fixed-size little-endian record per received message, in
//! arrival order. Times are the integer nanoseconds the bridge measured and the simulation
//! time is the f64 from the wire, bit for bit, so the conversion writes exactly the CSV the
//! bridge would have written ([`SampleCsv`]); a test compares them byte for byte. Layout:
//! `docs/OUTPUT.md`, "samples.bin".
//!
//! A run killed mid-write can leave a partial last record: the reader stops before it and
//! says so ([`SampleBinReader::partial_tail`]); every complete record is still read.

use std::fs::File;
use std::io::{BufWriter, Read, Write};

use crate::metrics::{RecvClock, Sample, Transport};

use super::sample_file::{SampleEncoder, SampleFile};
use super::samples_csv::{SampleCsv, SampleRow};

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"CBSAMPLE";
/// The layout written by this version.
pub const VERSION: u16 = 1;
/// Header: magic, version (u16), record size (u16), reserved (u32, zero).
pub const HEADER_LEN: usize = 16;
/// One record of [`VERSION`] 1.
pub const RECORD_LEN: usize = 56;

const HAS_SEQ: u8 = 1;
const HAS_STEP: u8 = 2;
const HAS_SENT: u8 = 4;
const HAS_RTT: u8 = 8;

/// One received message as logged: who sent it, in which session, over what, and the
/// sample itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinRecord {
    pub dummy: u32,
    pub session: u32,
    pub transport: Transport,
    pub sample: Sample,
}

/// Why a file is not a sample log this version can read, or where it stops being one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinError {
    #[error("not a coppelia-bridge sample log (it does not start with \"CBSAMPLE\"); `convert` reads the samples.bin of a run with --samples-format bin")]
    NotASampleLog,
    #[error("sample log version {0}: this coppelia-bridge reads version {VERSION} (convert it with the version that wrote it, or upgrade)")]
    UnknownVersion(u16),
    #[error("sample log records of {0} bytes are shorter than version 1's {RECORD_LEN}: the header is damaged")]
    RecordTooShort(u16),
    #[error("record {index}: {what} code {code} is not defined in version {VERSION}")]
    BadCode {
        index: u64,
        what: &'static str,
        code: u8,
    },
}

/// The header of a version-1 file.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&(RECORD_LEN as u16).to_le_bytes());
    h
}

/// The record size a header announces (records may grow in later versions; their first
/// [`RECORD_LEN`] bytes keep this layout).
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<usize, BinError> {
    if h[..8] != MAGIC {
        return Err(BinError::NotASampleLog);
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(BinError::UnknownVersion(version));
    }
    let len = u16::from_le_bytes([h[10], h[11]]);
    if usize::from(len) < RECORD_LEN {
        return Err(BinError::RecordTooShort(len));
    }
    Ok(usize::from(len))
}

/// Writes `r` into `out` (pure; the layout of `docs/OUTPUT.md`).
pub fn encode(r: &BinRecord, out: &mut [u8; RECORD_LEN]) {
    let s = &r.sample;
    let mut flags = 0;
    let mut opt = |v: Option<u32>, bit: u8| {
        flags |= if v.is_some() { bit } else { 0 };
        v.unwrap_or(0).to_le_bytes()
    };
    let seq = opt(s.seq, HAS_SEQ);
    let step = opt(s.step, HAS_STEP);
    let rtt = opt(s.rtt_us, HAS_RTT);
    if s.sent_unix_ns.is_some() {
        flags |= HAS_SENT;
    }
    out[0..4].copy_from_slice(&r.dummy.to_le_bytes());
    out[4..8].copy_from_slice(&r.session.to_le_bytes());
    out[8..12].copy_from_slice(&seq);
    out[12..16].copy_from_slice(&step);
    out[16..24].copy_from_slice(&s.sim_time_s.to_bits().to_le_bytes());
    out[24..32].copy_from_slice(&s.sent_unix_ns.unwrap_or(0).to_le_bytes());
    out[32..40].copy_from_slice(&s.recv_unix_ns.to_le_bytes());
    out[40..48].copy_from_slice(&s.read_unix_ns.to_le_bytes());
    out[48..52].copy_from_slice(&rtt);
    out[52] = flags;
    out[53] = match s.recv_clock {
        RecvClock::Kernel => 0,
        RecvClock::User => 1,
    };
    out[54] = match r.transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::LegacyUdp => 2,
    };
    out[55] = 0;
}

/// Reads one record (`index` only names it in errors). Unknown flag bits are ignored, so
/// a later version may add optional fields.
pub fn decode(b: &[u8; RECORD_LEN], index: u64) -> Result<BinRecord, BinError> {
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let flags = b[52];
    let when = |bit: u8, v: u32| (flags & bit != 0).then_some(v);
    let recv_clock = match b[53] {
        0 => RecvClock::Kernel,
        1 => RecvClock::User,
        code => {
            return Err(BinError::BadCode {
                index,
                what: "recv_clock",
                code,
            })
        }
    };
    let transport = match b[54] {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::LegacyUdp,
        code => {
            return Err(BinError::BadCode {
                index,
                what: "transport",
                code,
            })
        }
    };
    Ok(BinRecord {
        dummy: u32_at(0),
        session: u32_at(4),
        transport,
        sample: Sample {
            seq: when(HAS_SEQ, u32_at(8)),
            step: when(HAS_STEP, u32_at(12)),
            sim_time_s: f64::from_bits(u64_at(16)),
            sent_unix_ns: (flags & HAS_SENT != 0).then_some(u64_at(24) as i64),
            recv_unix_ns: u64_at(32) as i64,
            read_unix_ns: u64_at(40) as i64,
            recv_clock,
            rtt_us: when(HAS_RTT, u32_at(48)),
        },
    })
}

/// The binary log on any writer (header written with the first record).
#[derive(Debug)]
pub struct SampleBin<W: Write> {
    inner: W,
    header_written: bool,
}

impl<W: Write> SampleBin<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            header_written: false,
        }
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Reads a sample log record by record.
#[derive(Debug)]
pub struct SampleBinReader<R: Read> {
    inner: R,
    record_len: usize,
    buf: Vec<u8>,
    index: u64,
    partial_tail: usize,
    /// No more records: end of input, a partial tail or a read error.
    done: bool,
}

impl<R: Read> SampleBinReader<R> {
    /// Reads and checks the header. An empty input is a log without records (a run that
    /// received nothing writes no header).
    pub fn new(mut inner: R) -> std::io::Result<Result<Self, BinError>> {
        let mut h = [0u8; HEADER_LEN];
        let got = read_full(&mut inner, &mut h)?;
        let record_len = match got {
            0 => RECORD_LEN,
            HEADER_LEN => match parse_header(&h) {
                Ok(len) => len,
                Err(e) => return Ok(Err(e)),
            },
            _ => return Ok(Err(BinError::NotASampleLog)),
        };
        Ok(Ok(Self {
            inner,
            record_len,
            buf: vec![0; record_len],
            index: 0,
            partial_tail: 0,
            done: got == 0,
        }))
    }

    /// Bytes after the last complete record (a run killed mid-write); 0 for a whole file.
    pub fn partial_tail(&self) -> usize {
        self.partial_tail
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.index
    }
}

/// Fills `buf` as far as the input goes; returns how many bytes it got.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// What reading a record can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Format(#[from] BinError),
}

impl<R: Read> Iterator for SampleBinReader<R> {
    type Item = Result<BinRecord, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let got = match read_full(&mut self.inner, &mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(e.into()));
            }
        };
        if got < self.record_len {
            self.partial_tail = got;
            self.done = true;
            return None;
        }
        let rec: &[u8; RECORD_LEN] = self.buf[..RECORD_LEN].try_into().expect("record length");
        // Records have a fixed size, so a damaged one does not misalign the next: the
        // caller decides whether to go on.
        let r = decode(rec, self.index).map_err(ReadError::from);
        self.index += 1;
        Some(r)
    }
}

impl BinRecord {
    /// The row `samples.csv` holds for this record.
    pub fn row(&self) -> SampleRow {
        SampleRow::from_sample(self.dummy, self.session, self.transport, &self.sample)
    }
}

/// `samples.bin` in the run directory.
pub type SampleBinWriter = SampleFile<SampleBin<BufWriter<File>>>;

impl SampleBinWriter {
    /// Creates (truncates) `samples.bin` at `path`.
    pub fn create(path: &std::path::Path) -> Result<Self, super::OutputError> {
        Self::create_with(path, SampleBin::new)
    }
}

impl<W: Write> SampleEncoder for SampleBin<W> {
    fn write_sample(
        &mut self,
        dummy: u32,
        session: u32,
        transport: Transport,
        sample: &Sample,
    ) -> std::io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&header())?;
            self.header_written = true;
        }
        let mut rec = [0u8; RECORD_LEN];
        encode(
            &BinRecord {
                dummy,
                session,
                transport,
                sample: *sample,
            },
            &mut rec,
        );
        self.inner.write_all(&rec)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What [`to_csv`] converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converted {
    pub rows: u64,
    /// Bytes after the last complete record, left out (a run killed mid-write).
    pub partial_tail: usize,
}

/// Converts a sample log to `samples.csv`'s exact bytes. Fails at the first damaged record
/// (the bridge never writes one), after writing every record before it.
pub fn to_csv(input: impl Read, output: impl Write) -> Result<Converted, ReadError> {
    let mut reader = SampleBinReader::new(input)??;
    let mut csv = SampleCsv::new(output);
    for r in reader.by_ref() {
        let r = r?;
        csv.write_sample(r.dummy, r.session, r.transport, &r.sample)?;
    }
    csv.into_inner()?;
    Ok(Converted {
        rows: reader.records(),
        partial_tail: reader.partial_tail(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(k: u32) -> BinRecord {
        BinRecord {
            dummy: k % 7,
            session: k % 3,
            transport: [Transport::Udp, Transport::Tcp, Transport::LegacyUdp][k as usize % 3],
            sample: Sample {
                seq: (k % 5 != 0).then_some(k),
                step: (k % 4 != 0).then_some(k * 2),
                sim_time_s: f64::from(k) * 0.05,
                sent_unix_ns: (k % 3 != 2).then_some(1_764_000_000_000_000_000 + i64::from(k)),
                recv_unix_ns: 1_764_000_000_000_050_000 + i64::from(k),
                read_unix_ns: 1_764_000_000_000_090_000 + i64::from(k),
                recv_clock: if k % 2 == 0 {
                    RecvClock::Kernel
                } else {
                    RecvClock::User
                },
                rtt_us: (k % 6 == 1).then_some(k * 10),
            },
        }
    }

    fn log_of(records: &[BinRecord]) -> Vec<u8> {
        let mut w = SampleBin::new(Vec::new());
        for r in records {
            w.write_sample(r.dummy, r.session, r.transport, &r.sample)
                .unwrap();
        }
        w.into_inner().unwrap()
    }

    fn csv_of(records: &[BinRecord]) -> Vec<u8> {
        let mut w = SampleCsv::new(Vec::new());
        for r in records {
            w.write_sample(r.dummy, r.session, r.transport, &r.sample)
                .unwrap();
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        // docs/OUTPUT.md "samples.bin": offsets and codes, written out by hand.
        let r = BinRecord {
            dummy: 0x0403_0201,
            session: 2,
            transport: Transport::Tcp,
            sample: Sample {
                seq: Some(7),
                step: None,
                sim_time_s: 1.5,
                sent_unix_ns: Some(-1),
                recv_unix_ns: 0x0102_0304_0506_0708,
                read_unix_ns: 9,
                recv_clock: RecvClock::User,
                rtt_us: Some(300),
            },
        };
        let mut b = [0xAA; RECORD_LEN];
        encode(&r, &mut b);
        let mut want = Vec::new();
        want.extend([1, 2, 3, 4, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        want.extend(1.5f64.to_bits().to_le_bytes());
        want.extend([0xFF; 8]);
        want.extend([8, 7, 6, 5, 4, 3, 2, 1]);
        want.extend([9, 0, 0, 0, 0, 0, 0, 0]);
        want.extend(300u32.to_le_bytes());
        want.extend([HAS_SEQ | HAS_SENT | HAS_RTT, 1, 1, 0]);
        assert_eq!(b.to_vec(), want);
        assert_eq!(decode(&b, 0), Ok(r));
        assert_eq!(&header()[..12], b"CBSAMPLE\x01\x00\x38\x00");
    }

    #[test]
    fn conversion_is_byte_for_byte_the_csv_writer() {
        let records: Vec<BinRecord> = (0..500).map(record).collect();
        let mut csv = Vec::new();
        let done = to_csv(&log_of(&records)[..], &mut csv).unwrap();
        assert_eq!(
            done,
            Converted {
                rows: 500,
                partial_tail: 0
            }
        );
        assert_eq!(csv, csv_of(&records));
    }

    #[test]
    fn a_run_that_received_nothing_converts_to_what_csv_mode_writes() {
        // Both are empty files: the header comes with the first row in either format.
        let mut csv = Vec::new();
        assert_eq!(to_csv(&[][..], &mut csv).unwrap().rows, 0);
        assert_eq!(csv, csv_of(&[]));
        assert!(csv.is_empty());
    }

    #[test]
    fn a_partial_last_record_is_left_out_and_counted() {
        let records: Vec<BinRecord> = (0..10).map(record).collect();
        let mut log = log_of(&records);
        log.truncate(log.len() - 20);
        let mut csv = Vec::new();
        let done = to_csv(&log[..], &mut csv).unwrap();
        assert_eq!(done.rows, 9);
        assert_eq!(done.partial_tail, RECORD_LEN - 20);
        assert_eq!(csv, csv_of(&records[..9]));
    }

    #[test]
    fn foreign_files_and_newer_versions_are_refused_with_a_reason() {
        let refused = |bytes: &[u8]| SampleBinReader::new(bytes).unwrap().expect_err("refused");
        assert_eq!(
            refused(b"dummy,session,seq,step,sim_time_s\n"),
            BinError::NotASampleLog
        );
        assert_eq!(refused(b"CBSAMP"), BinError::NotASampleLog);
        let mut h = header();
        h[8] = 2;
        assert_eq!(refused(&h), BinError::UnknownVersion(2));
        let mut h = header();
        h[10] = 40;
        assert_eq!(refused(&h), BinError::RecordTooShort(40));
        let e = BinError::UnknownVersion(2).to_string();
        assert!(e.contains("upgrade"), "{e}");
    }

    #[test]
    fn longer_records_of_a_later_layout_are_read_by_their_first_bytes() {
        let records: Vec<BinRecord> = (0..5).map(record).collect();
        let mut log = header().to_vec();
        log[10] = (RECORD_LEN + 8) as u8;
        for r in &records {
            let mut b = [0u8; RECORD_LEN];
            encode(r, &mut b);
            log.extend(b);
            log.extend([0xEE; 8]);
        }
        let back: Vec<BinRecord> = SampleBinReader::new(&log[..])
            .unwrap()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, records);
    }

    #[test]
    fn a_damaged_record_fails_the_conversion_and_does_not_misalign_the_reader() {
        let records: Vec<BinRecord> = (0..4).map(record).collect();
        let mut log = log_of(&records);
        log[HEADER_LEN + 2 * RECORD_LEN + 54] = 9;
        let mut csv = Vec::new();
        let err = to_csv(&log[..], &mut csv).unwrap_err();
        assert!(
            err.to_string().contains("record 2: transport code 9"),
            "{err}"
        );
        let read: Vec<_> = SampleBinReader::new(&log[..]).unwrap().unwrap().collect();
        assert_eq!(read.len(), 4);
        assert!(read[2].is_err());
        assert_eq!(read[3].as_ref().unwrap(), &records[3]);
    }

    fn any_sample() -> impl Strategy<Value = Sample> {
        (
            (any::<Option<u32>>(), any::<Option<u32>>(), any::<f64>()),
            (any::<Option<i64>>(), any::<i64>(), any::<i64>()),
            (any::<bool>(), any::<Option<u32>>()),
        )
            .prop_map(
                |((seq, step, sim), (sent, recv, read), (kernel, rtt))| Sample {
                    seq,
                    step,
                    sim_time_s: sim,
                    sent_unix_ns: sent,
                    recv_unix_ns: recv,
                    read_unix_ns: read,
                    recv_clock: if kernel {
                        RecvClock::Kernel
                    } else {
                        RecvClock::User
                    },
                    rtt_us: rtt,
                },
            )
    }

    fn any_record() -> impl Strategy<Value = BinRecord> {
        (any::<u32>(), any::<u32>(), 0..3usize, any_sample()).prop_map(|(d, s, t, sample)| {
            BinRecord {
                dummy: d,
                session: s,
                transport: [Transport::Udp, Transport::Tcp, Transport::LegacyUdp][t],
                sample,
            }
        })
    }

    proptest! {
        /// Whatever was received (NaN simulation times, clocks before 1970 or near the end
        /// of i64, every optional field absent or present), the log converts to the bytes
        /// the CSV writer produces.
        #[test]
        fn every_sample_round_trips_and_converts_to_the_same_csv(
            records in proptest::collection::vec(any_record(), 0..40)
        ) {
            let log = log_of(&records);
            let back: Vec<BinRecord> = SampleBinReader::new(&log[..])
                .unwrap()
                .unwrap()
                .map(Result::unwrap)
                .collect();
            prop_assert_eq!(back.len(), records.len());
            for (b, r) in back.iter().zip(&records) {
                // NaN != NaN: the simulation time is compared by its bits, the rest by value.
                prop_assert_eq!(b.sample.sim_time_s.to_bits(), r.sample.sim_time_s.to_bits());
                let (mut b, mut r) = (*b, *r);
                b.sample.sim_time_s = 0.0;
                r.sample.sim_time_s = 0.0;
                prop_assert_eq!(b, r);
            }
            let mut csv = Vec::new();
            to_csv(&log[..], &mut csv).unwrap();
            prop_assert_eq!(csv, csv_of(&records));
        }

        /// Arbitrary bytes never panic the reader: it reads, refuses, or stops.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut with_header = header().to_vec();
            with_header.extend(&bytes);
            for input in [&bytes[..], &with_header[..]] {
                let _ = to_csv(input, std::io::sink());
            }
        }
    }
}
