//! Every UDP datagram the bridge can receive: v1 decode and legacy classification must never
//! panic, and whatever decodes must re-encode to the same bytes.
#![no_main]

use coppelia_bridge::wire::{classify, Datagram, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for registered in [false, true] {
        if let Datagram::V1(m) = classify(data, registered) {
            assert_eq!(m.encode(), data, "decode/encode round trip");
        }
    }
    let _ = Message::decode(data);
});
