//! Every UDP datagram the bridge can receive, from a source that did or did not register a
//! legacy id. Checks, beyond "no panic":
//! - `classify` follows the four rules of docs/PROTOCOL.md ("Legacy (notebook) format"),
//!   re-implemented here independently, in their documented order;
//! - a legacy time is the datagram's own `f64` bits, and is finite (the raw f64 path);
//! - a legacy registration is exactly the trimmed ASCII decimal text of the id;
//! - whatever decodes as v1 re-encodes to the same bytes, with `encoded_len` equal to them;
//! - `reject_label` is `Some` exactly for the rejected kinds.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run wire_datagram` (or `scripts/fuzz.sh`).
#![no_main]

use coppelia_bridge::wire::{classify, Datagram, Message, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = Message::decode(data);
    if let Ok(m) = &decoded {
        assert_eq!(m.encode(), data, "decode/encode round trip");
        assert_eq!(m.encoded_len(), data.len());
    }
    for registered in [false, true] {
        let got = classify(data, registered);
        check_rules(data, registered, &got, &decoded);
        let rejected = !matches!(
            got,
            Datagram::V1(_) | Datagram::LegacyRegister(_) | Datagram::LegacyTime(_)
        );
        assert_eq!(got.reject_label().is_some(), rejected, "{got:?}");
    }
});

/// The documented classification, rule by rule.
fn check_rules(
    data: &[u8],
    registered: bool,
    got: &Datagram,
    decoded: &Result<Message, coppelia_bridge::wire::DecodeError>,
) {
    // (1) 8 bytes from a registered address: a time, whatever the bytes look like.
    if registered && data.len() == 8 {
        let bits = u64::from_le_bytes(data.try_into().unwrap());
        match got {
            Datagram::LegacyTime(t) => {
                assert!(t.is_finite());
                assert_eq!(t.to_bits(), bits, "legacy time is the datagram's own f64");
            }
            Datagram::BadLegacyTime => assert!(!f64::from_bits(bits).is_finite()),
            other => panic!("8 bytes from a registered source gave {other:?}"),
        }
        return;
    }
    // (2) the magic: exactly what the v1 decoder says.
    if data.starts_with(&MAGIC) {
        match (got, decoded) {
            (Datagram::V1(m), Ok(d)) => assert_eq!(m, d),
            (Datagram::BadV1(e), Err(d)) => assert_eq!(e, d),
            other => panic!("v1 classification disagrees with decode: {other:?}"),
        }
        return;
    }
    // (3) 1 to 10 ASCII decimal digits with optional ASCII white space, value ≤ 2³²−1.
    let trimmed = data.trim_ascii();
    let id = ((1..=10).contains(&trimmed.len()) && trimmed.iter().all(u8::is_ascii_digit))
        .then(|| {
            // Decimal arithmetic on the text itself, independent of `str::parse`.
            let v = trimmed
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            u32::try_from(v).ok()
        })
        .flatten();
    match got {
        Datagram::LegacyRegister(x) => assert_eq!(Some(*x), id, "{data:?}"),
        // (4) anything else is rejected; 8 bytes get their own label.
        Datagram::LegacyUnregistered => assert!(id.is_none() && data.len() == 8, "{data:?}"),
        Datagram::Unrecognised => assert!(id.is_none() && data.len() != 8, "{data:?}"),
        other => panic!("{data:?} gave {other:?}"),
    }
}
