//! ZeroMQ remote API client, protocol 2 (CoppeliaSim 4.6+), and the simulation driver.
//!
//! # Layout
//! - [`message`]: request/reply CBOR maps (pure, fuzzable, never panics on a reply).
//! - [`constants`]: numeric constants, [`SimState`], [`ProgramVersion`].
//! - [`error`]: [`RemoteError`], messages that name the endpoint and the fix.
//! - [`transport`]: the REQ socket behind the [`Transport`] trait (deadline, recreate).
//! - [`backoff`]: reconnection delays (pure).
//! - [`client`]: [`Client`]: the `_*wait*_`/`_*repeat*_` loop, `_*end*_`, typed calls.
//! - [`driver`]: runs a client on its own thread for `run`: start/stop, stepping, polling,
//!   reconnection, events.
//! - [`fake`]: an in-process fake server (real REP socket) for tests.
//!
//! Message shapes and behaviour: `../shared/coppeliasim-notes.md` §5–§6.

pub mod backoff;
pub mod client;
pub mod constants;
pub mod driver;
pub mod error;
pub mod fake;
pub mod message;
pub mod transport;

pub use backoff::{Backoff, BackoffConfig};
pub use client::{Client, ClientConfig};
pub use constants::{ProgramVersion, SimState, DEFAULT_ENDPOINT};
pub use error::RemoteError;
pub use transport::{Transport, TransportError, ZmqTransport, MAX_REPLY_BYTES};
