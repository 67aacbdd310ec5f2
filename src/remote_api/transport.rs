//! The REQ transport: one request out, one reply back, within a deadline.
//!
//! Behind the [`Transport`] trait so the client logic runs against a fake in tests.
//! The ZeroMQ implementation recreates its socket after a missed reply: a REQ socket that
//! sent a request must receive before it may send again, so after a lost reply it is
//! unusable (ZeroMQ guide, "Client-side reliability (Lazy Pirate pattern)").
//!
//! A call never waits longer than its deadline; backoff between reconnection attempts is
//! the caller's choice (the driver uses [`super::backoff`]), so `probe` fails fast.

use std::time::{Duration, Instant};

use thiserror::Error;

/// Failure of one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    /// No reply before the deadline; the connection was dropped.
    #[error("no reply within the deadline")]
    Timeout,
    /// The endpoint is not valid for ZeroMQ.
    #[error("invalid endpoint: {0}")]
    BadEndpoint(String),
    /// Any other ZeroMQ failure.
    #[error("{operation}: {reason}")]
    Zmq {
        operation: &'static str,
        reason: String,
    },
}

/// One request/reply exchange at a time.
pub trait Transport {
    /// Sends `request` and waits up to `timeout` for the reply.
    fn round_trip(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError>;

    /// True when the next round trip goes over a new connection, which the server may not
    /// know yet (first message, or after a missed reply): the client then sends its hello.
    fn is_fresh(&self) -> bool;

    /// The endpoint, for error messages.
    fn endpoint(&self) -> &str;
}

/// A ZeroMQ REQ socket, created lazily and recreated after a missed reply.
pub struct ZmqTransport {
    endpoint: String,
    context: zmq::Context,
    socket: Option<zmq::Socket>,
    /// Set once a reply arrived on the current socket.
    answered: bool,
}

impl std::fmt::Debug for ZmqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqTransport")
            .field("endpoint", &self.endpoint)
            .field("connected", &self.socket.is_some())
            .field("answered", &self.answered)
            .finish()
    }
}

/// Largest remote API reply accepted, bytes (`ZMQ_MAXMSGSIZE`). The bridge's calls get
/// replies of a few hundred bytes; reading a scene's scripts back (`scene --build-remote`)
/// some kilobytes. 16 MiB leaves room for any of that and bounds what a hostile or confused
/// server can make the bridge hold.
pub const MAX_REPLY_BYTES: usize = 16 << 20;

impl ZmqTransport {
    /// Checks the endpoint by creating the first socket (ZeroMQ connects in the background:
    /// this succeeds even if nothing listens, which only a round trip can tell).
    pub fn new(endpoint: &str) -> Result<Self, TransportError> {
        let mut transport = Self {
            endpoint: endpoint.to_owned(),
            context: zmq::Context::new(),
            socket: None,
            answered: false,
        };
        transport.socket = Some(transport.open_socket()?);
        Ok(transport)
    }

    fn open_socket(&self) -> Result<zmq::Socket, TransportError> {
        let zmq_err = |operation| {
            move |e: zmq::Error| TransportError::Zmq {
                operation,
                reason: e.to_string(),
            }
        };
        let socket = self
            .context
            .socket(zmq::REQ)
            .map_err(zmq_err("create REQ socket"))?;
        // Linger 0: closing a socket with an unanswered request must not block.
        socket.set_linger(0).map_err(zmq_err("set ZMQ_LINGER"))?;
        // A reply larger than this is refused by ZeroMQ before it is held in memory (it drops
        // the connection; the call then times out as unreachable and the socket is replaced).
        socket
            .set_maxmsgsize(MAX_REPLY_BYTES as i64)
            .map_err(zmq_err("set ZMQ_MAXMSGSIZE"))?;
        socket.connect(&self.endpoint).map_err(|e| match e {
            zmq::Error::EINVAL | zmq::Error::EPROTONOSUPPORT | zmq::Error::ENOCOMPATPROTO => {
                TransportError::BadEndpoint(e.to_string())
            }
            other => zmq_err("connect")(other),
        })?;
        Ok(socket)
    }

    /// Drops the current socket so the next round trip starts on a new one.
    fn reset(&mut self) {
        self.socket = None;
        self.answered = false;
    }

    fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError> {
        if self.socket.is_none() {
            self.socket = Some(self.open_socket()?);
        }
        let Some(socket) = self.socket.as_ref() else {
            return Err(TransportError::Timeout);
        };
        let deadline = Instant::now() + timeout;
        // REQ queues the message even without a peer (ZMQ_IMMEDIATE off), so this returns
        // at once; DONTWAIT guards against a full queue.
        socket.send(request, zmq::DONTWAIT).map_err(|e| match e {
            // Nothing can take the message now: the same as no answer.
            zmq::Error::EAGAIN => TransportError::Timeout,
            other => TransportError::Zmq {
                operation: "send",
                reason: other.to_string(),
            },
        })?;
        wait_readable(socket, deadline)?;
        socket.recv_bytes(0).map_err(|e| TransportError::Zmq {
            operation: "receive",
            reason: e.to_string(),
        })
    }
}

/// Polls until the socket has a message or the deadline passes (EINTR is retried).
fn wait_readable(socket: &zmq::Socket, deadline: Instant) -> Result<(), TransportError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TransportError::Timeout);
        }
        let left_ms = i64::try_from(left.as_millis().max(1)).unwrap_or(i64::MAX);
        match socket.poll(zmq::POLLIN, left_ms) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(zmq::Error::EINTR) => continue,
            Err(e) => {
                return Err(TransportError::Zmq {
                    operation: "poll",
                    reason: e.to_string(),
                })
            }
        }
    }
}

impl Transport for ZmqTransport {
    fn round_trip(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, TransportError> {
        match self.exchange(request, timeout) {
            Ok(reply) => {
                self.answered = true;
                Ok(reply)
            }
            Err(e) => {
                // Whatever failed, this REQ socket is now mid-exchange: start over.
                self.reset();
                Err(e)
            }
        }
    }

    fn is_fresh(&self) -> bool {
        !self.answered
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
