//! The remote API's ZMQ REP socket, served from the simulation thread.
//!
//! Timing as the add-on's `zmqRemoteApi.handleQueue`
//! (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua; unchanged from
//! coppeliasim-v4.6.0-rev0 to coppeliasim-v4.10.0-rev0): one zero-timeout poll; with nothing
//! queued it returns at once. Only after serving a message does it keep polling, until
//! `msgQueueTimeout_running` (2 ms) × the clients heard in this call have passed, or
//! `msgQueueTimeout_idle` (50 ms) while the simulation is not advancing. `sysCall_actuation`
//! calls it until no stepping client holds the step; `sysCall_nonSimulation` calls it while
//! stopped or paused.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::remote::{decode_request, encode_reply, RemoteState, Reply, Request, SimControl};

/// `msgQueueTimeout_running`: serving time per client heard, once a message came.
pub const PER_CLIENT_WINDOW: Duration = Duration::from_millis(2);
/// `msgQueueTimeout_idle`: serving time while not advancing, once a message came.
pub const IDLE_WINDOW: Duration = Duration::from_millis(50);
/// Blocking wait between two serving rounds while a stepping client holds the simulation or
/// the simulation is stopped (CoppeliaSim's loop spins there; waiting on the socket answers
/// as soon and spares the CPU). Shutdown and client timeouts are checked in between.
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

    /// The add-on's `sysCall_actuation`: serves the queue, again and again while a stepping
    /// client holds this step (until `shutdown`), then counts the step.
    pub fn serve_actuation(&mut self, sim: &mut dyn SimControl, shutdown: &AtomicBool) {
        loop {
            self.handle_queue(sim);
            if !self.state.holding() || shutdown.load(Ordering::Relaxed) {
                break;
            }
            self.wait_for_request(HOLD_POLL);
        }
        self.state.end_of_actuation();
    }

    /// The add-on's `sysCall_nonSimulation` (stopped or paused): waits up to [`HOLD_POLL`]
    /// for a request, then serves the queue.
    pub fn serve_idle(&mut self, sim: &mut dyn SimControl) {
        self.wait_for_request(HOLD_POLL);
        self.handle_queue(sim);
    }

    /// `sysCall_afterSimulation`: the add-on's step count restarts.
    pub fn after_simulation(&mut self) {
        self.state.after_simulation();
    }

    /// `zmqRemoteApi.handleQueue`: one zero-timeout poll; after a message, keep serving until
    /// 2 ms × the clients heard (simulation advancing) or 50 ms (not advancing) have passed
    /// since the call began. The state is looked at on every round, as the add-on does, so a
    /// `sim.startSimulation` served while stopped shortens the rest of the call to 2 ms × clients.
    fn handle_queue(&mut self, sim: &mut dyn SimControl) {
        let start = Instant::now();
        self.state.expire(start);
        let mut clients: HashSet<String> = HashSet::new();
        let mut messages = 0u32;
        loop {
            let budget = match messages {
                0 => None,
                _ if sim.advancing() => Some(PER_CLIENT_WINDOW * clients.len() as u32),
                _ => Some(IDLE_WINDOW),
            };
            if budget.is_some_and(|b| start.elapsed() >= b) {
                break;
            }
            let left = budget.map_or(Duration::ZERO, |b| b.saturating_sub(start.elapsed()));
            match self.serve_one(sim, left) {
                Some(served) => {
                    messages += 1;
                    clients.extend(served);
                }
                None if messages == 0 => break,
                None => {}
            }
        }
    }

    fn wait_for_request(&mut self, wait: Duration) {
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let _ = self.socket.poll(zmq::POLLIN, ms);
    }

    /// Waits up to `wait` for one request and answers it. Returns `None` when none came,
    /// else the uuid of the client heard (`None` inside for protocol-1 or undecodable ones).
    fn serve_one(&mut self, sim: &mut dyn SimControl, wait: Duration) -> Option<Option<String>> {
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        match self.socket.poll(zmq::POLLIN, ms) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        let bytes = self.socket.recv_bytes(zmq::DONTWAIT).ok()?;
        let (reply, uuid) = match decode_request(&bytes) {
            Ok(request) => {
                let uuid = match &request {
                    Request::Call { uuid, func, .. } if func != "_*end*_" => Some(uuid.clone()),
                    _ => None,
                };
                (self.state.handle(request, Instant::now(), sim), uuid)
            }
            Err(message) => (Reply::Err(message), None),
        };
        // A REP socket must answer before it can receive again; a failed send only means
        // the client went away.
        let _ = self.socket.send(encode_reply(&reply), 0);
        Some(uuid)
    }
}
