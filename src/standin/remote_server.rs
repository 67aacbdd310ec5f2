//! The remote API's ZMQ REP socket, served from the simulation thread.
//!
//! Timing (a simplification of notes §5, documented in docs/STANDIN.md): while the
//! simulation runs, requests are served at each pass's add-on point for 2 ms per known
//! client (not at all when no client is known), plus as long as a stepping client holds
//! the pass; while stopped or paused, in windows of 50 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::remote::{decode_request, encode_reply, RemoteState, Reply, SimControl};

/// Serving time per known client per pass (notes §5).
pub const PER_CLIENT_WINDOW: Duration = Duration::from_millis(2);
/// Serving window while stopped or paused (notes §5).
pub const IDLE_WINDOW: Duration = Duration::from_millis(50);
/// Poll period while a stepping client holds the simulation (checks shutdown and
/// client timeouts in between).
const HOLD_POLL: Duration = Duration::from_millis(50);

/// Why the remote API could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot bind the remote API at {endpoint}: {message}: is CoppeliaSim or another stand-in using that port? Use --remote-port 0 for any free port")]
    Bind { endpoint: String, message: String },
    #[error("cannot create the remote API socket: {0}")]
    Socket(String),
}

/// The REP socket and the clients it knows.
pub struct RemoteServer {
    // Field order matters: the socket must close before its context.
    socket: zmq::Socket,
    _context: zmq::Context,
    state: RemoteState,
    endpoint: String,
}

impl std::fmt::Debug for RemoteServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteServer")
            .field("endpoint", &self.endpoint)
            .field("state", &self.state)
            .finish()
    }
}

impl RemoteServer {
    /// Binds `tcp://host:port`; port 0 picks any free port (see [`RemoteServer::endpoint`]).
    pub fn bind(host: &str, port: u16) -> Result<Self, RemoteError> {
        let context = zmq::Context::new();
        let socket = context
            .socket(zmq::REP)
            .map_err(|e| RemoteError::Socket(e.to_string()))?;
        // Do not keep undelivered replies around when the stand-in exits.
        socket
            .set_linger(0)
            .map_err(|e| RemoteError::Socket(e.to_string()))?;
        let requested = if port == 0 {
            format!("tcp://{host}:*")
        } else {
            format!("tcp://{host}:{port}")
        };
        socket.bind(&requested).map_err(|e| RemoteError::Bind {
            endpoint: requested.clone(),
            message: e.to_string(),
        })?;
        let endpoint = match socket.get_last_endpoint() {
            Ok(Ok(e)) => e,
            _ => requested,
        };
        Ok(RemoteServer {
            socket,
            _context: context,
            state: RemoteState::new(),
            endpoint,
        })
    }

    /// The bound endpoint, e.g. `tcp://127.0.0.1:23000`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Serves at the add-on point of pass `gate`: 2 ms per known client, and as long as a
    /// stepping client holds the pass (until `shutdown`).
    pub fn serve_gate(&mut self, sim: &mut dyn SimControl, gate: u64, shutdown: &AtomicBool) {
        let deadline = Instant::now() + PER_CLIENT_WINDOW * self.state.client_count() as u32;
        let holding =
            |state: &RemoteState| state.holding(gate) && !shutdown.load(Ordering::Relaxed);
        loop {
            let now = Instant::now();
            self.state.expire(now);
            let wait = if holding(&self.state) {
                HOLD_POLL
            } else {
                deadline.saturating_duration_since(now)
            };
            // At least one poll per pass, so a new client is heard even when none is known.
            self.serve_one(sim, wait);
            if !holding(&self.state) && Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Serves while stopped or paused, for [`IDLE_WINDOW`] or until a request starts the
    /// simulation (the next requests are then served at the passes' add-on points).
    pub fn serve_idle(&mut self, sim: &mut dyn SimControl) {
        let deadline = Instant::now() + IDLE_WINDOW;
        loop {
            let now = Instant::now();
            self.state.expire(now);
            if now >= deadline || sim.advancing() {
                return;
            }
            self.serve_one(sim, deadline - now);
        }
    }

    /// Waits up to `wait` for one request and answers it. Returns whether one came.
    fn serve_one(&mut self, sim: &mut dyn SimControl, wait: Duration) -> bool {
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        match self.socket.poll(zmq::POLLIN, ms) {
            Ok(n) if n > 0 => {}
            _ => return false,
        }
        let Ok(bytes) = self.socket.recv_bytes(zmq::DONTWAIT) else {
            return false;
        };
        let reply = match decode_request(&bytes) {
            Ok(request) => self.state.handle(request, Instant::now(), sim),
            Err(message) => Reply::Err(message),
        };
        // A REP socket must answer before it can receive again; a failed send only means
        // the client went away.
        let _ = self.socket.send(encode_reply(&reply), 0);
        true
    }
}
