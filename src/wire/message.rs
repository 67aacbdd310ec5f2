//! v1 messages: HELLO, STAMP, BYE, ECHO, CLOCK (see `docs/PROTOCOL.md`).

use thiserror::Error;

/// First two bytes of every v1 message: ASCII `CB`.
pub const MAGIC: [u8; 2] = *b"CB";
/// The only protocol version this codec speaks.
pub const VERSION: u8 = 1;
/// Magic, version, kind.
pub const HEADER_LEN: usize = 4;
/// HELLO without its name.
pub const HELLO_MIN_LEN: usize = 21;
/// STAMP length.
pub const STAMP_LEN: usize = 36;
/// BYE length.
pub const BYE_LEN: usize = 24;
/// ECHO length.
pub const ECHO_LEN: usize = 36;
/// CLOCK length.
pub const CLOCK_LEN: usize = 44;
/// Longest dummy name in a HELLO, bytes.
pub const MAX_NAME_LEN: usize = 64;
/// `rtt_us` value meaning "no round trip measured yet".
pub const NO_RTT: u32 = u32::MAX;
/// `last_seq` value meaning "no STAMP was sent".
pub const NO_SEQ: u32 = u32::MAX;

const KIND_HELLO: u8 = 1;
const KIND_STAMP: u8 = 2;
const KIND_BYE: u8 = 3;
const KIND_ECHO: u8 = 4;
const KIND_CLOCK: u8 = 5;

/// HELLO flag bits.
pub mod flags {
    /// The sender wants an ECHO for each STAMP.
    pub const ECHO: u16 = 1 << 0;
    /// Sent over TCP.
    pub const TCP: u16 = 1 << 1;
    /// Native `sysCall_thread` (CoppeliaSim 4.6+).
    pub const THREAD: u16 = 1 << 2;
    /// Self-made coroutine fallback (CoppeliaSim 4.3–4.5).
    pub const COROUTINE: u16 = 1 << 3;
    /// The script runs with `sim.setStepping(true)`.
    pub const STEPPING: u16 = 1 << 4;
}

/// A dummy announces itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub dummy_id: u32,
    pub dt_s: f64,
    pub script_version: u16,
    pub flags: u16,
    pub name: String,
}

/// One simulation pass, stamped by the sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub dummy_id: u32,
    pub seq: u32,
    pub step: u32,
    pub sim_time_s: f64,
    pub sent_unix_s: f64,
    /// Last round trip measured by the sender, µs; [`NO_RTT`] when none.
    pub rtt_us: u32,
}

/// A dummy says goodbye (`sysCall_cleanup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye {
    pub dummy_id: u32,
    /// Seq of the last STAMP; [`NO_SEQ`] when none was sent.
    pub last_seq: u32,
    pub stamps_sent: u32,
    pub send_errors: u32,
    pub echoes_received: u32,
}

/// Bridge → dummy acknowledgement of one STAMP, for round-trip measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    pub dummy_id: u32,
    pub seq: u32,
    pub sent_unix_s: f64,
    pub bridge_recv_unix_s: f64,
    pub bridge_send_unix_s: f64,
}

/// Dummy → bridge: the four timestamps of one ECHO exchange (NTP's t1–t4), from which the
/// bridge estimates the offset between its clock and the sender's (`metrics::clock`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub dummy_id: u32,
    /// Seq of the STAMP the ECHO acknowledged.
    pub seq: u32,
    /// t1: the STAMP's `sent_unix_s` (sender's clock).
    pub sent_unix_s: f64,
    /// t2: when the bridge received that STAMP (bridge's clock), copied from the ECHO.
    pub bridge_recv_unix_s: f64,
    /// t3: when the bridge sent the ECHO (bridge's clock), copied from the ECHO.
    pub bridge_send_unix_s: f64,
    /// t4: when the sender read the ECHO (sender's clock).
    pub echo_read_unix_s: f64,
}

/// Any v1 message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Hello),
    Stamp(Stamp),
    Bye(Bye),
    Echo(Echo),
    Clock(Clock),
}

/// Why a v1 message was rejected. Each variant is counted separately.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("message too short for a header ({len} bytes, need 4)")]
    TooShort { len: usize },
    #[error("bad magic {0:02x?} (expected \"CB\")")]
    BadMagic([u8; 2]),
    #[error("unsupported protocol version {0} (this bridge speaks version 1)")]
    UnsupportedVersion(u8),
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("{kind} must be {expected} bytes, got {len}")]
    BadLength {
        kind: &'static str,
        expected: usize,
        len: usize,
    },
    #[error("{field} is not finite")]
    NotFinite { field: &'static str },
    #[error("dummy name is longer than 64 bytes or not UTF-8")]
    BadName,
}

impl DecodeError {
    /// Short stable label, used as a counter key and in CSV/JSON.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadMagic(_) => "bad_magic",
            DecodeError::UnsupportedVersion(_) => "bad_version",
            DecodeError::UnknownKind(_) => "unknown_kind",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::NotFinite { .. } => "not_finite",
            DecodeError::BadName => "bad_name",
        }
    }
}

impl Message {
    /// Decodes one whole v1 message. Never panics, whatever the input.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: buf.len() });
        }
        if buf[0..2] != MAGIC {
            return Err(DecodeError::BadMagic([buf[0], buf[1]]));
        }
        if buf[2] != VERSION {
            return Err(DecodeError::UnsupportedVersion(buf[2]));
        }
        let mut r = Reader {
            buf,
            pos: HEADER_LEN,
        };
        match buf[3] {
            KIND_HELLO => decode_hello(&mut r),
            KIND_STAMP => decode_stamp(&mut r),
            KIND_BYE => decode_bye(&mut r),
            KIND_ECHO => decode_echo(&mut r),
            KIND_CLOCK => decode_clock(&mut r),
            k => Err(DecodeError::UnknownKind(k)),
        }
    }

    /// Encodes into a fresh buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        match self {
            Message::Hello(h) => {
                out.push(KIND_HELLO);
                out.extend_from_slice(&h.dummy_id.to_le_bytes());
                out.extend_from_slice(&h.dt_s.to_le_bytes());
                out.extend_from_slice(&h.script_version.to_le_bytes());
                out.extend_from_slice(&h.flags.to_le_bytes());
                let name = truncate_utf8(&h.name, MAX_NAME_LEN);
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
            }
            Message::Stamp(s) => {
                out.push(KIND_STAMP);
                for v in [s.dummy_id, s.seq, s.step] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&s.sim_time_s.to_le_bytes());
                out.extend_from_slice(&s.sent_unix_s.to_le_bytes());
                out.extend_from_slice(&s.rtt_us.to_le_bytes());
            }
            Message::Bye(b) => {
                out.push(KIND_BYE);
                for v in [
                    b.dummy_id,
                    b.last_seq,
                    b.stamps_sent,
                    b.send_errors,
                    b.echoes_received,
                ] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Message::Echo(e) => {
                out.push(KIND_ECHO);
                out.extend_from_slice(&e.dummy_id.to_le_bytes());
                out.extend_from_slice(&e.seq.to_le_bytes());
                for v in [e.sent_unix_s, e.bridge_recv_unix_s, e.bridge_send_unix_s] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Message::Clock(c) => {
                out.push(KIND_CLOCK);
                out.extend_from_slice(&c.dummy_id.to_le_bytes());
                out.extend_from_slice(&c.seq.to_le_bytes());
                for v in [
                    c.sent_unix_s,
                    c.bridge_recv_unix_s,
                    c.bridge_send_unix_s,
                    c.echo_read_unix_s,
                ] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }

    /// Length of the encoding, bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Hello(h) => HELLO_MIN_LEN + truncate_utf8(&h.name, MAX_NAME_LEN).len(),
            Message::Stamp(_) => STAMP_LEN,
            Message::Bye(_) => BYE_LEN,
            Message::Echo(_) => ECHO_LEN,
            Message::Clock(_) => CLOCK_LEN,
        }
    }

    /// The dummy this message is about.
    pub fn dummy_id(&self) -> u32 {
        match self {
            Message::Hello(h) => h.dummy_id,
            Message::Stamp(s) => s.dummy_id,
            Message::Bye(b) => b.dummy_id,
            Message::Echo(e) => e.dummy_id,
            Message::Clock(c) => c.dummy_id,
        }
    }
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn expect_len(buf: &[u8], kind: &'static str, expected: usize) -> Result<(), DecodeError> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(DecodeError::BadLength {
            kind,
            expected,
            len: buf.len(),
        })
    }
}

fn finite(v: f64, field: &'static str) -> Result<f64, DecodeError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DecodeError::NotFinite { field })
    }
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    if r.buf.len() < HELLO_MIN_LEN {
        return Err(DecodeError::BadLength {
            kind: "HELLO",
            expected: HELLO_MIN_LEN,
            len: r.buf.len(),
        });
    }
    let dummy_id = r.u32();
    let dt_s = finite(r.f64(), "dt_s")?;
    let script_version = r.u16();
    let flags = r.u16();
    let name_len = r.u8() as usize;
    if name_len > MAX_NAME_LEN {
        return Err(DecodeError::BadName);
    }
    expect_len(r.buf, "HELLO", HELLO_MIN_LEN + name_len)?;
    let name = std::str::from_utf8(&r.buf[HELLO_MIN_LEN..])
        .map_err(|_| DecodeError::BadName)?
        .to_owned();
    Ok(Message::Hello(Hello {
        dummy_id,
        dt_s,
        script_version,
        flags,
        name,
    }))
}

fn decode_stamp(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    expect_len(r.buf, "STAMP", STAMP_LEN)?;
    Ok(Message::Stamp(Stamp {
        dummy_id: r.u32(),
        seq: r.u32(),
        step: r.u32(),
        sim_time_s: finite(r.f64(), "sim_time_s")?,
        sent_unix_s: finite(r.f64(), "sent_unix_s")?,
        rtt_us: r.u32(),
    }))
}

fn decode_bye(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    expect_len(r.buf, "BYE", BYE_LEN)?;
    Ok(Message::Bye(Bye {
        dummy_id: r.u32(),
        last_seq: r.u32(),
        stamps_sent: r.u32(),
        send_errors: r.u32(),
        echoes_received: r.u32(),
    }))
}

fn decode_echo(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    expect_len(r.buf, "ECHO", ECHO_LEN)?;
    Ok(Message::Echo(Echo {
        dummy_id: r.u32(),
        seq: r.u32(),
        sent_unix_s: finite(r.f64(), "sent_unix_s")?,
        bridge_recv_unix_s: finite(r.f64(), "bridge_recv_unix_s")?,
        bridge_send_unix_s: finite(r.f64(), "bridge_send_unix_s")?,
    }))
}

fn decode_clock(r: &mut Reader<'_>) -> Result<Message, DecodeError> {
    expect_len(r.buf, "CLOCK", CLOCK_LEN)?;
    Ok(Message::Clock(Clock {
        dummy_id: r.u32(),
        seq: r.u32(),
        sent_unix_s: finite(r.f64(), "sent_unix_s")?,
        bridge_recv_unix_s: finite(r.f64(), "bridge_recv_unix_s")?,
        bridge_send_unix_s: finite(r.f64(), "bridge_send_unix_s")?,
        echo_read_unix_s: finite(r.f64(), "echo_read_unix_s")?,
    }))
}

/// Little-endian cursor. Callers check the length first, so reads never run past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn f64(&mut self) -> f64 {
        f64::from_le_bytes(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Byte vectors written by hand from the tables in docs/PROTOCOL.md.
    #[test]
    fn stamp_matches_protocol_table() {
        let bytes: Vec<u8> = [
            &b"CB"[..],
            &[1, 2],
            &[3, 0, 0, 0],                   // dummy_id 3
            &[10, 0, 0, 0],                  // seq 10
            &[20, 0, 0, 0],                  // step 20
            &[0, 0, 0, 0, 0, 0, 0xf0, 0x3f], // 1.0 s
            &[0, 0, 0, 0, 0, 0, 0x10, 0x40], // 4.0 s
            &[0xff, 0xff, 0xff, 0xff],       // no rtt
        ]
        .concat();
        let expected = Message::Stamp(Stamp {
            dummy_id: 3,
            seq: 10,
            step: 20,
            sim_time_s: 1.0,
            sent_unix_s: 4.0,
            rtt_us: NO_RTT,
        });
        assert_eq!(Message::decode(&bytes), Ok(expected.clone()));
        assert_eq!(expected.encode(), bytes);
    }

    #[test]
    fn hello_matches_protocol_table() {
        let bytes: Vec<u8> = [
            &b"CB"[..],
            &[1, 1],
            &[7, 0, 0, 0],                                     // dummy_id 7
            &[0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xa9, 0x3f], // 0.05
            &[1, 0],                                           // script version 1
            &[0x05, 0],                                        // ECHO | THREAD
            &[6],
            &b"Dummy7"[..],
        ]
        .concat();
        let expected = Message::Hello(Hello {
            dummy_id: 7,
            dt_s: 0.05,
            script_version: 1,
            flags: flags::ECHO | flags::THREAD,
            name: "Dummy7".into(),
        });
        assert_eq!(Message::decode(&bytes), Ok(expected.clone()));
        assert_eq!(expected.encode(), bytes);
    }

    #[test]
    fn bye_and_echo_match_protocol_tables() {
        let bye: Vec<u8> = [
            &b"CB"[..],
            &[1, 3],
            &[1, 0, 0, 0],
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 0],
            &[2, 0, 0, 0],
            &[0, 1, 0, 0],
        ]
        .concat();
        assert_eq!(
            Message::decode(&bye),
            Ok(Message::Bye(Bye {
                dummy_id: 1,
                last_seq: NO_SEQ,
                stamps_sent: 0,
                send_errors: 2,
                echoes_received: 256,
            }))
        );
        let echo = Message::Echo(Echo {
            dummy_id: 2,
            seq: 5,
            sent_unix_s: 1.0,
            bridge_recv_unix_s: 2.0,
            bridge_send_unix_s: -2.0,
        });
        let bytes = echo.encode();
        assert_eq!(bytes.len(), ECHO_LEN);
        assert_eq!(&bytes[..4], b"CB\x01\x04");
        assert_eq!(&bytes[12..20], &1.0f64.to_le_bytes());
        assert_eq!(&bytes[28..36], &[0, 0, 0, 0, 0, 0, 0, 0xc0]);
        assert_eq!(Message::decode(&bytes), Ok(echo));
    }

    #[test]
    fn clock_matches_protocol_table() {
        let bytes: Vec<u8> = [
            &b"CB"[..],
            &[1, 5],
            &[3, 0, 0, 0],
            &[9, 0, 0, 0],
            &1.5f64.to_le_bytes(),
            &2.0f64.to_le_bytes(),
            &2.25f64.to_le_bytes(),
            &[0, 0, 0, 0, 0, 0, 0x08, 0x40],
        ]
        .concat();
        assert_eq!(bytes.len(), CLOCK_LEN);
        let clock = Message::Clock(Clock {
            dummy_id: 3,
            seq: 9,
            sent_unix_s: 1.5,
            bridge_recv_unix_s: 2.0,
            bridge_send_unix_s: 2.25,
            echo_read_unix_s: 3.0,
        });
        assert_eq!(Message::decode(&bytes), Ok(clock.clone()));
        assert_eq!(clock.encode(), bytes);
        let mut nan = bytes.clone();
        nan[36..44].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(
            Message::decode(&nan),
            Err(DecodeError::NotFinite {
                field: "echo_read_unix_s"
            })
        );
        assert!(matches!(
            Message::decode(&bytes[..43]),
            Err(DecodeError::BadLength { kind: "CLOCK", .. })
        ));
    }

    #[test]
    fn rejects_bad_headers_and_lengths() {
        assert_eq!(
            Message::decode(b"CB"),
            Err(DecodeError::TooShort { len: 2 })
        );
        assert_eq!(
            Message::decode(b"XY\x01\x02"),
            Err(DecodeError::BadMagic(*b"XY"))
        );
        assert_eq!(
            Message::decode(b"CB\x02\x02"),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(
            Message::decode(b"CB\x01\x09"),
            Err(DecodeError::UnknownKind(9))
        );
        let mut stamp = Message::Stamp(Stamp {
            dummy_id: 0,
            seq: 0,
            step: 0,
            sim_time_s: 0.0,
            sent_unix_s: 0.0,
            rtt_us: 0,
        })
        .encode();
        stamp.push(0);
        assert_eq!(
            Message::decode(&stamp),
            Err(DecodeError::BadLength {
                kind: "STAMP",
                expected: 36,
                len: 37
            })
        );
        stamp.truncate(30);
        assert!(matches!(
            Message::decode(&stamp),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn rejects_non_finite_times() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut bytes = Message::Stamp(Stamp {
                dummy_id: 0,
                seq: 0,
                step: 0,
                sim_time_s: 0.0,
                sent_unix_s: 0.0,
                rtt_us: 0,
            })
            .encode();
            bytes[16..24].copy_from_slice(&bad.to_le_bytes());
            assert_eq!(
                Message::decode(&bytes),
                Err(DecodeError::NotFinite {
                    field: "sim_time_s"
                })
            );
        }
    }

    #[test]
    fn hello_name_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(40); // 80 bytes
        let msg = Message::Hello(Hello {
            dummy_id: 1,
            dt_s: 0.05,
            script_version: 1,
            flags: 0,
            name: long,
        });
        let bytes = msg.encode();
        assert_eq!(bytes.len(), HELLO_MIN_LEN + 64);
        match Message::decode(&bytes).unwrap() {
            Message::Hello(h) => assert_eq!(h.name, "é".repeat(32)),
            other => panic!("decoded {other:?}"),
        }
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL
    }

    fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                any::<u32>(),
                finite_f64(),
                any::<u16>(),
                any::<u16>(),
                "[a-zA-Z0-9_é]{0,20}"
            )
                .prop_map(|(dummy_id, dt_s, script_version, flags, name)| {
                    Message::Hello(Hello {
                        dummy_id,
                        dt_s,
                        script_version,
                        flags,
                        name,
                    })
                }),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                finite_f64(),
                finite_f64(),
                any::<u32>()
            )
                .prop_map(|(dummy_id, seq, step, sim_time_s, sent_unix_s, rtt_us)| {
                    Message::Stamp(Stamp {
                        dummy_id,
                        seq,
                        step,
                        sim_time_s,
                        sent_unix_s,
                        rtt_us,
                    })
                }),
            any::<[u32; 5]>().prop_map(|v| Message::Bye(Bye {
                dummy_id: v[0],
                last_seq: v[1],
                stamps_sent: v[2],
                send_errors: v[3],
                echoes_received: v[4],
            })),
            (
                any::<u32>(),
                any::<u32>(),
                finite_f64(),
                finite_f64(),
                finite_f64()
            )
                .prop_map(|(dummy_id, seq, a, b, c)| Message::Echo(Echo {
                    dummy_id,
                    seq,
                    sent_unix_s: a,
                    bridge_recv_unix_s: b,
                    bridge_send_unix_s: c,
                })),
            (
                any::<[u32; 2]>(),
                [finite_f64(), finite_f64(), finite_f64(), finite_f64()]
            )
                .prop_map(|(ids, t)| Message::Clock(Clock {
                    dummy_id: ids[0],
                    seq: ids[1],
                    sent_unix_s: t[0],
                    bridge_recv_unix_s: t[1],
                    bridge_send_unix_s: t[2],
                    echo_read_unix_s: t[3],
                })),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(msg in any_message()) {
            let bytes = msg.encode();
            prop_assert_eq!(bytes.len(), msg.encoded_len());
            prop_assert_eq!(Message::decode(&bytes), Ok(msg));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_with_valid_header(
            kind in 0u8..8,
            rest in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut bytes = vec![b'C', b'B', 1, kind];
            bytes.extend(rest);
            let _ = Message::decode(&bytes);
        }
    }
}
