//! TCP framing: `<u32 length, LE><payload>` (see `docs/PROTOCOL.md`, "TCP framing").

use thiserror::Error;

/// Default largest accepted payload, bytes. v1 messages are at most 85 bytes.
pub const DEFAULT_MAX_FRAME: usize = 4096;

/// A framing error. The stream cannot be resynchronised after one: close it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("zero-length frame")]
    Empty,
}

/// Prefixes `payload` with its length.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Incremental decoder: feed it whatever the socket returned, take whole frames out.
///
/// Frames are handed out as slices of the decoder's buffer; consumed bytes are dropped once
/// per [`FrameDecoder::extend`], so a read holding many frames costs one copy, not one per
/// frame.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    start: usize,
    max: usize,
}

impl FrameDecoder {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max: max_frame,
        }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole payload, borrowed; `Ok(None)` if more bytes are needed.
    pub fn next_frame_ref(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let from = self.start + 4;
        self.start = from + len;
        Ok(Some(&self.buf[from..from + len]))
    }

    /// The next whole payload, owned; `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(self.next_frame_ref()?.map(<[u8]>::to_vec))
    }

    /// Bytes of an incomplete frame still held (lost if the peer closes now).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frame_layout() {
        assert_eq!(encode_frame(b"abc"), b"\x03\x00\x00\x00abc");
    }

    #[test]
    fn rejects_zero_and_oversized() {
        let mut d = FrameDecoder::new(16);
        d.extend(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::Empty));
        let mut d = FrameDecoder::new(16);
        d.extend(&17u32.to_le_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
    }

    proptest! {
        #[test]
        fn frames_survive_any_chunking(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..50), 0..20),
            cuts in prop::collection::vec(1usize..17, 1..50),
        ) {
            let stream: Vec<u8> = payloads.iter().flat_map(|p| encode_frame(p)).collect();
            let mut d = FrameDecoder::new(64);
            let mut got = Vec::new();
            let mut pos = 0;
            let mut i = 0;
            while pos < stream.len() {
                let n = cuts[i % cuts.len()].min(stream.len() - pos);
                d.extend(&stream[pos..pos + n]);
                pos += n;
                i += 1;
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            prop_assert_eq!(got, payloads);
            prop_assert_eq!(d.pending(), 0);
        }
    }
}
