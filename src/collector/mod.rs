//! Receivers (I/O): UDP with kernel receive timestamps read in batches, and framed TCP.
//!
//! Receivers own no metric state: what they read becomes [`ReceiverEvent`]s (batches of
//! arrivals, connection status) sent over a channel to the one aggregator, which may answer
//! through the [`ReplySink`] (ECHO messages). The event types live in [`crate::event`].
//!
//! Cost model (docs/PERFORMANCE.md): the UDP receiver runs on its own thread and drains the
//! socket with `recvmmsg`, up to 64 datagrams per system call, into one [`ArrivalBatch`] per
//! burst: no allocation, channel send or wake-up per datagram. When a burst was large (the
//! rate is high), it waits a bounded [`ReadCadence::pause`] before reading again, so the
//! kernel queues the next burst meanwhile; the kernel's receive stamps make that delay
//! invisible to every latency figure.
//!
//! Exposure (docs/RELIABILITY.md): on an address other than loopback, each receiver checks
//! the sender against the `--allow` list ([`AllowList`]) before anything is parsed: the UDP
//! thread before a datagram enters a batch, TCP at accept. What it turns away is counted and
//! reported as [`ReceiverStatus::Refused`](crate::event::ReceiverStatus::Refused).

mod allow;
mod error;
mod recvmsg;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub use allow::{AllowList, Cidr, CidrError, Exposure, ExposureError, MAX_ALLOW_ENTRIES};
pub use error::CollectorError;
pub use recvmsg::MAX_DATAGRAM;
pub use tcp::{
    spawn_tcp, TcpConfig, DEFAULT_TCP_FRAME_TIMEOUT, DEFAULT_TCP_IDLE_TIMEOUT,
    DEFAULT_TCP_MAX_CONNS,
};
pub use udp::{bind_udp, ReadCadence, UdpConfig, UdpReceiver, DEFAULT_RECV_BUFFER};

use crate::event::{ArrivalBatch, Source};

/// Most arrivals in one batch (a burst larger than this is split).
pub const BATCH_LIMIT: usize = 1024;
/// Batches kept for reuse.
const POOL_KEEP: usize = 16;

/// Reusable [`ArrivalBatch`]es: the receiver takes one, the run loop gives it back once
/// handled, so steady operation allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct BatchPool(Arc<Mutex<Vec<ArrivalBatch>>>);

impl BatchPool {
    /// An empty batch, reused if one is available.
    pub fn take(&self) -> ArrivalBatch {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| ArrivalBatch::with_capacity(BATCH_LIMIT, BATCH_LIMIT * 64))
    }

    /// Returns a handled batch for reuse.
    pub fn give(&self, mut batch: ArrivalBatch) {
        batch.clear();
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_KEEP {
            pool.push(batch);
        }
    }
}

/// Sends replies (ECHOs) back to where a message came from.
#[derive(Debug, Clone, Default)]
pub struct ReplySink {
    udp: Option<Arc<socket2::Socket>>,
    tcp: Arc<Mutex<HashMap<u64, tokio::sync::mpsc::Sender<Vec<u8>>>>>,
}

impl ReplySink {
    /// Replies to UDP sources go out through `udp` (a handle on the receiving socket).
    pub fn new(udp: Option<socket2::Socket>) -> Self {
        Self {
            udp: udp.map(Arc::new),
            tcp: Arc::default(),
        }
    }

    // A panic elsewhere while holding the map must not take the receivers down with it:
    // the map is always consistent, so a poisoned lock is simply taken over.
    fn tcp_map(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::mpsc::Sender<Vec<u8>>>> {
        self.tcp.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register_tcp(&self, conn: u64, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
        self.tcp_map().insert(conn, tx);
    }

    pub(crate) fn unregister_tcp(&self, conn: u64) {
        self.tcp_map().remove(&conn);
    }

    /// Best effort, never blocks: a reply that cannot be sent now is dropped (an ECHO is
    /// only useful while fresh). Returns whether it was handed to the socket.
    pub fn send(&self, to: Source, payload: &[u8]) -> bool {
        match to {
            Source::Udp(addr) => self.udp.as_ref().is_some_and(|s| {
                s.send_to_with_flags(payload, &addr.into(), libc::MSG_DONTWAIT)
                    .is_ok()
            }),
            Source::Tcp { conn, .. } => self
                .tcp_map()
                .get(&conn)
                .is_some_and(|tx| tx.try_send(crate::wire::encode_frame(payload)).is_ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_holding_the_reply_map_does_not_take_the_receivers_down() {
        let sink = ReplySink::new(None);
        let held = sink.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = held.tcp_map();
            panic!("poisoning the reply map on purpose");
        })
        .join();
        assert!(panicked.is_err() && sink.tcp.is_poisoned());
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        sink.register_tcp(7, tx);
        let to = Source::Tcp {
            peer: ([127, 0, 0, 1], 1).into(),
            conn: 7,
        };
        assert!(sink.send(to, b"echo"), "replies still go out");
        assert_eq!(rx.try_recv().unwrap(), crate::wire::encode_frame(b"echo"));
        sink.unregister_tcp(7);
        assert!(!sink.send(to, b"echo"));
    }

    #[test]
    fn the_pool_hands_back_cleared_batches_and_keeps_a_few() {
        let pool = BatchPool::default();
        let mut b = pool.take();
        b.push(crate::event::Arrival {
            source: Source::Udp(([127, 0, 0, 1], 1).into()),
            payload: b"x",
            kernel_ns: None,
            read_ns: 0,
            truncated: false,
        });
        pool.give(b);
        assert!(pool.take().is_empty());
        for _ in 0..2 * POOL_KEEP {
            pool.give(ArrivalBatch::default());
        }
        assert_eq!(pool.0.lock().unwrap().len(), POOL_KEEP);
    }
}
