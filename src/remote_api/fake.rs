//! An in-process fake remote API server: a real ZeroMQ REP socket on loopback, answering
//! with scripted replies from a thread. For tests (here, in `tests/`, and for whoever wires
//! the driver into `run`); it is not a CoppeliaSim stand-in.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ciborium::Value;

use super::message::{decode_request, encode_value, ParsedRequest};

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeAction {
    /// Send these bytes (use `message::encode_ret`, `encode_err`, `encode_func`, or garbage).
    Reply(Vec<u8>),
    /// Wait, then send the bytes. A REP socket must answer before it can receive again; a
    /// reply to a client that has given up and closed its socket is dropped by ZeroMQ.
    Delay(Duration, Vec<u8>),
}

/// A request as the fake saw it (`None` when the bytes were not a CBOR map).
pub type Seen = Option<ParsedRequest>;

type Handler = Box<dyn FnMut(&Seen) -> FakeAction + Send>;

/// A running fake server; stops (and unbinds) on drop.
pub struct FakeServer {
    endpoint: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    replies_sent: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Binds `tcp://127.0.0.1:*` (a free port) and serves with `handler`.
    pub fn start(
        handler: impl FnMut(&Seen) -> FakeAction + Send + 'static,
    ) -> Result<Self, zmq::Error> {
        Self::start_at("tcp://127.0.0.1:*", handler)
    }

    /// Binds a given endpoint (e.g. the one of a previous fake, to play a server that
    /// comes back) and serves with `handler`.
    pub fn start_at(
        bind: &str,
        handler: impl FnMut(&Seen) -> FakeAction + Send + 'static,
    ) -> Result<Self, zmq::Error> {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REP)?;
        socket.set_linger(0)?;
        socket.bind(bind)?;
        let endpoint = socket
            .get_last_endpoint()?
            .map_err(|_| zmq::Error::EINVAL)?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let replies_sent = Arc::new(AtomicUsize::new(0));
        let serve = Serve {
            socket,
            stop: stop.clone(),
            seen: seen.clone(),
            replies_sent: replies_sent.clone(),
            handler: Box::new(handler),
        };
        let thread = std::thread::Builder::new()
            .name("fake-remote-api".into())
            .spawn(move || serve.run(context))
            .map_err(|_| zmq::Error::EFAULT)?;
        Ok(Self {
            endpoint,
            stop,
            seen,
            replies_sent,
            thread: Some(thread),
        })
    }

    /// The bound endpoint, e.g. `tcp://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Function names of the requests received so far.
    pub fn funcs(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| r.map(|r| r.func).unwrap_or_default())
            .collect()
    }

    /// Replies sent so far (including delayed ones nobody received).
    pub fn replies_sent(&self) -> usize {
        self.replies_sent.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `replies_sent() >= n`; false on timeout.
    pub fn wait_replies(&self, n: usize, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.replies_sent() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.replies_sent() >= n
    }

    /// Stops serving and unbinds (the port can be bound again).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Serve {
    socket: zmq::Socket,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    replies_sent: Arc<AtomicUsize>,
    handler: Handler,
}

impl Serve {
    /// Serves until asked to stop; polls in short slices so a stop is noticed quickly.
    fn run(mut self, context: zmq::Context) {
        while !self.stop.load(Ordering::SeqCst) {
            match self.socket.poll(zmq::POLLIN, 10) {
                Ok(n) if n > 0 => {
                    if !self.serve_one() {
                        break;
                    }
                }
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(_) => break,
            }
        }
        drop(self.socket);
        drop(context);
    }

    fn serve_one(&mut self) -> bool {
        let Ok(bytes) = self.socket.recv_bytes(0) else {
            return false;
        };
        let seen = decode_request(&bytes).ok();
        if let Ok(mut log) = self.seen.lock() {
            log.push(seen.clone());
        }
        let (delay, reply) = match (self.handler)(&seen) {
            FakeAction::Reply(b) => (Duration::ZERO, b),
            FakeAction::Delay(d, b) => (d, b),
        };
        self.sleep_unless_stopped(delay);
        let ok = self.socket.send(reply, 0).is_ok();
        self.replies_sent.fetch_add(1, Ordering::SeqCst);
        ok
    }

    fn sleep_unless_stopped(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
        }
    }
}

/// `{}`: the reply to `_*end*_`.
pub fn empty_map() -> Vec<u8> {
    encode_value(&Value::Map(vec![]))
}
