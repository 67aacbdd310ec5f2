//! A TCP byte stream cut anywhere: the frame decoder must never panic, never hand out a frame
//! over the limit, and never buffer more than one frame plus one read.
#![no_main]

use coppelia_bridge::wire::FrameDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new(256);
    for chunk in data.chunks(7) {
        d.extend(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => assert!(!f.is_empty() && f.len() <= 256),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(d.pending() < 4 + 256 + 7);
    }
});
