//! Fuzzes the decoders of what a remote API server sends (and what a server receives):
//! any bytes must give `Ok` or `Err`, never a panic, overflow or runaway allocation.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run remote_api_reply`

#![no_main]

use coppelia_bridge::remote_api::message::{classify_reply, decode_reply, decode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = decode_reply(data) {
        // Classifying the decoded value must agree with decoding (compared in debug form:
        // NaN floats are not equal to themselves).
        if let Ok(value) = ciborium_value(data) {
            let again = classify_reply(&value).ok();
            assert_eq!(format!("{again:?}"), format!("{:?}", Some(reply)));
        }
    }
    let _ = decode_request(data);
});

fn ciborium_value(data: &[u8]) -> Result<ciborium::Value, ()> {
    ciborium::from_reader(data).map_err(|_| ())
}
