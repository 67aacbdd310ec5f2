//! A TCP byte stream cut into reads of a fuzzer-chosen size. Checks, beyond "no panic":
//! - the frames (and the error, if any) are the same whatever the read size: they equal a
//!   one-pass reference parse of the whole stream (docs/PROTOCOL.md, "TCP framing");
//! - no frame is empty or over the limit, and `encode_frame` gives back the exact bytes;
//! - the decoder never holds more than one frame plus one read (bounded memory per peer).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run tcp_frames` (or `scripts/fuzz.sh`).
#![no_main]

use coppelia_bridge::wire::{encode_frame, FrameDecoder, FrameError};
use libfuzzer_sys::fuzz_target;

/// Small, so lengths over the limit are easy to reach; the logic does not depend on it.
const MAX: usize = 256;

fuzz_target!(|input: &[u8]| {
    let Some((&read_size, stream)) = input.split_first() else {
        return;
    };
    let read_size = usize::from(read_size % 32) + 1;
    let (expected, expected_err) = reference(stream);

    let mut d = FrameDecoder::new(MAX);
    let mut got = Vec::new();
    let mut err = None;
    'reads: for chunk in stream.chunks(read_size) {
        d.extend(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(!f.is_empty() && f.len() <= MAX);
                    got.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    // The collector closes the connection here: stop reading.
                    err = Some(e);
                    break 'reads;
                }
            }
        }
        assert!(d.pending() < 4 + MAX + read_size, "held {}", d.pending());
    }
    assert_eq!(got, expected);
    assert_eq!(err, expected_err);
    let consumed: Vec<u8> = got.iter().flat_map(|f| encode_frame(f)).collect();
    assert_eq!(&stream[..consumed.len()], &consumed[..]);
});

/// Frames read from the whole stream at once, and the error that ends it, if any.
fn reference(mut s: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut frames = Vec::new();
    while s.len() >= 4 {
        let len = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
        if len == 0 {
            return (frames, Some(FrameError::Empty));
        }
        if len > MAX {
            return (frames, Some(FrameError::TooLarge { len, max: MAX }));
        }
        if s.len() < 4 + len {
            break;
        }
        frames.push(s[4..4 + len].to_vec());
        s = &s[4 + len..];
    }
    (frames, None)
}
