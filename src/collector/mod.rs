//! Receivers (I/O): UDP with kernel receive timestamps, and framed TCP.
//!
//! Receivers own no metric state: each received message becomes a [`CollectorEvent`]
//! sent over a channel to the one aggregator (`metrics::aggregator`), which may answer
//! through the [`ReplySink`] (ECHO messages).

mod error;
mod recvmsg;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use error::CollectorError;
pub use tcp::{spawn_tcp, TcpConfig};
pub use udp::{bind_udp, UdpConfig, UdpReceiver, DEFAULT_RECV_BUFFER};

use crate::metrics::{RecvClock, UnixNanos};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Udp(SocketAddr),
    /// One TCP connection; `conn` distinguishes reconnections from the same address.
    Tcp {
        peer: SocketAddr,
        conn: u64,
    },
}

impl Source {
    pub fn addr(&self) -> SocketAddr {
        match self {
            Source::Udp(a) => *a,
            Source::Tcp { peer, .. } => *peer,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Udp(a) => write!(f, "udp:{a}"),
            Source::Tcp { peer, conn } => write!(f, "tcp:{peer}#{conn}"),
        }
    }
}

/// One message as received, with its timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct RecvEvent {
    pub source: Source,
    pub payload: Vec<u8>,
    /// Kernel receive stamp (`SO_TIMESTAMPNS`), when the kernel provided one.
    pub kernel_ns: Option<UnixNanos>,
    /// When user space read it.
    pub read_ns: UnixNanos,
    /// The datagram was larger than the receive buffer and was cut.
    pub truncated: bool,
}

impl RecvEvent {
    /// Best arrival time: the kernel's if present, else the user-space read time.
    pub fn recv_ns(&self) -> UnixNanos {
        self.kernel_ns.unwrap_or(self.read_ns)
    }

    pub fn recv_clock(&self) -> RecvClock {
        if self.kernel_ns.is_some() {
            RecvClock::Kernel
        } else {
            RecvClock::User
        }
    }
}

/// Everything receivers report to the aggregator.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectorEvent {
    Message(RecvEvent),
    TcpOpened {
        source: Source,
    },
    TcpClosed {
        source: Source,
        reason: String,
        lost_partial_bytes: usize,
    },
    /// A frame error closed the connection (oversized or empty frame).
    TcpFrameError {
        source: Source,
        error: String,
    },
    /// Cumulative datagrams dropped by the kernel for lack of receive buffer (`SO_RXQ_OVFL`).
    KernelDrops(u64),
}

/// Sends replies (ECHOs) back to where a message came from.
#[derive(Debug, Clone, Default)]
pub struct ReplySink {
    udp: Option<Arc<tokio::net::UdpSocket>>,
    tcp: Arc<Mutex<HashMap<u64, tokio::sync::mpsc::Sender<Vec<u8>>>>>,
}

impl ReplySink {
    pub fn new(udp: Option<Arc<tokio::net::UdpSocket>>) -> Self {
        Self {
            udp,
            tcp: Arc::default(),
        }
    }

    pub(crate) fn register_tcp(&self, conn: u64, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
        self.tcp.lock().expect("reply map").insert(conn, tx);
    }

    pub(crate) fn unregister_tcp(&self, conn: u64) {
        self.tcp.lock().expect("reply map").remove(&conn);
    }

    /// Best effort, never blocks: a reply that cannot be sent now is dropped (an ECHO is
    /// only useful while fresh). Returns whether it was handed to the socket.
    pub fn send(&self, to: Source, payload: &[u8]) -> bool {
        match to {
            Source::Udp(addr) => self
                .udp
                .as_ref()
                .is_some_and(|s| s.try_send_to(payload, addr).is_ok()),
            Source::Tcp { conn, .. } => {
                let map = self.tcp.lock().expect("reply map");
                map.get(&conn)
                    .is_some_and(|tx| tx.try_send(crate::wire::encode_frame(payload)).is_ok())
            }
        }
    }
}

/// Wall clock now, ns since the Unix epoch.
pub fn unix_now_ns() -> UnixNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as UnixNanos
}
