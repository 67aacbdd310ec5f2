//! Which format a datagram is in: v1, legacy registration, legacy time, or garbage.
//! The order of the rules is specified in `docs/PROTOCOL.md` ("Legacy format").

use super::message::{DecodeError, Message, MAGIC};

/// What one received datagram turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Datagram {
    /// A valid v1 message.
    V1(Message),
    /// A v1 message that was rejected.
    BadV1(DecodeError),
    /// Notebook format: the sender registers its address as this dummy id.
    LegacyRegister(u32),
    /// Notebook format: one simulation time (s) from a registered address.
    LegacyTime(f64),
    /// A legacy time that is NaN or infinite.
    BadLegacyTime,
    /// 8 bytes from an address that never registered.
    LegacyUnregistered,
    /// Anything else.
    Unrecognised,
}

impl Datagram {
    /// Stable counter label for a rejected datagram, `None` for accepted ones.
    pub fn reject_label(&self) -> Option<&'static str> {
        match self {
            Datagram::V1(_) | Datagram::LegacyRegister(_) | Datagram::LegacyTime(_) => None,
            Datagram::BadV1(e) => Some(e.label()),
            Datagram::BadLegacyTime => Some("legacy_not_finite"),
            Datagram::LegacyUnregistered => Some("legacy_unregistered"),
            Datagram::Unrecognised => Some("unrecognised"),
        }
    }
}

/// Classifies one datagram. `legacy_registered` tells whether its source address has
/// registered with a legacy id before.
pub fn classify(buf: &[u8], legacy_registered: bool) -> Datagram {
    if buf.len() == 8 && legacy_registered {
        let t = f64::from_le_bytes(buf.try_into().expect("length checked"));
        return if t.is_finite() {
            Datagram::LegacyTime(t)
        } else {
            Datagram::BadLegacyTime
        };
    }
    if buf.len() >= 2 && buf[..2] == MAGIC {
        return match Message::decode(buf) {
            Ok(m) => Datagram::V1(m),
            Err(e) => Datagram::BadV1(e),
        };
    }
    if let Some(id) = parse_ascii_id(buf) {
        return Datagram::LegacyRegister(id);
    }
    if buf.len() == 8 {
        return Datagram::LegacyUnregistered;
    }
    Datagram::Unrecognised
}

/// ASCII decimal digits with optional surrounding ASCII white space, fitting in u32.
fn parse_ascii_id(buf: &[u8]) -> Option<u32> {
    let trimmed = buf.trim_ascii();
    if trimmed.is_empty() || trimmed.len() > 10 || !trimmed.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(trimmed).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Stamp, NO_RTT};
    use proptest::prelude::*;

    #[test]
    fn notebook_registration_and_times() {
        for (text, id) in [
            (&b"0"[..], 0),
            (b"3", 3),
            (b" 12\n", 12),
            (b"4294967295", u32::MAX),
        ] {
            assert_eq!(classify(text, false), Datagram::LegacyRegister(id));
        }
        assert_eq!(classify(b"4294967296", false), Datagram::Unrecognised);
        assert_eq!(classify(b"-1", false), Datagram::Unrecognised);
        assert_eq!(classify(b"", false), Datagram::Unrecognised);
        assert_eq!(
            classify(&0.05f64.to_le_bytes(), true),
            Datagram::LegacyTime(0.05)
        );
        assert_eq!(
            classify(&0.05f64.to_le_bytes(), false),
            Datagram::LegacyUnregistered
        );
        assert_eq!(
            classify(&f64::NAN.to_le_bytes(), true),
            Datagram::BadLegacyTime
        );
    }

    #[test]
    fn a_registration_is_at_most_ten_characters_of_digits() {
        // docs/PROTOCOL.md: 1 to 10 digits, so leading zeros cannot make a long number.
        assert_eq!(classify(b"0000000003", false), Datagram::LegacyRegister(3));
        assert_eq!(classify(b"00000000003", false), Datagram::Unrecognised);
        assert_eq!(
            classify(b"\t0000000003\r\n", false),
            Datagram::LegacyRegister(3)
        );
    }

    #[test]
    fn an_eight_digit_id_from_a_registered_source_is_a_time() {
        // Documented ambiguity: 8 bytes from a registered address are always a time.
        assert!(matches!(
            classify(b"12345678", true),
            Datagram::LegacyTime(_)
        ));
        assert_eq!(
            classify(b"12345678", false),
            Datagram::LegacyRegister(12345678)
        );
    }

    #[test]
    fn legacy_time_that_starts_with_the_magic_is_still_a_time() {
        let mut bytes = [0u8; 8];
        bytes[..2].copy_from_slice(b"CB");
        bytes[7] = 0x3f;
        assert!(matches!(classify(&bytes, true), Datagram::LegacyTime(_)));
    }

    #[test]
    fn v1_is_recognised_whatever_the_registration() {
        let stamp = crate::wire::Message::Stamp(Stamp {
            dummy_id: 1,
            seq: 0,
            step: 0,
            sim_time_s: 0.0,
            sent_unix_s: 1.0,
            rtt_us: NO_RTT,
        })
        .encode();
        for reg in [false, true] {
            assert!(matches!(classify(&stamp, reg), Datagram::V1(_)));
        }
        assert_eq!(
            classify(b"CB\x07\x02", false).reject_label(),
            Some("bad_version")
        );
    }

    proptest! {
        #[test]
        fn classify_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80), reg: bool) {
            let _ = classify(&bytes, reg);
        }
    }
}
