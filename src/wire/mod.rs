//! Wire codecs: v1 binary messages, the legacy notebook format, and TCP framing.
//!
//! Pure: bytes in, values out. No sockets, no clocks. The byte layout is specified in
//! `docs/PROTOCOL.md`; every table there has a test with hand-written bytes here.

mod classify;
mod frame;
mod message;

pub use classify::{classify, Datagram};
pub use frame::{encode_frame, FrameDecoder, FrameError, DEFAULT_MAX_FRAME};
pub use message::{
    flags, Bye, Clock, DecodeError, Echo, Hello, Message, Stamp, BYE_LEN, CLOCK_LEN, ECHO_LEN,
    HEADER_LEN, HELLO_MIN_LEN, MAGIC, MAX_NAME_LEN, NO_RTT, NO_SEQ, STAMP_LEN, VERSION,
};
