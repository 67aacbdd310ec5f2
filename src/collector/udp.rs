//! UDP receiver: one socket, kernel receive timestamps, large receive buffer, read in
//! batches on its own thread.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::recvmsg::{enable_kernel_stamps, BatchReader, Received};
use super::{AllowList, BatchPool, CollectorError, BATCH_LIMIT};
use crate::event::{Arrival, ArrivalBatch, ReceiverEvent, ReceiverStatus, Refusal, Source};

/// Default `SO_RCVBUF` request, bytes: 10 s of 1,000 dummies at 20 Hz is 200,000 datagrams,
/// and Linux charges each small datagram about 1 KiB of buffer (its `skb` true size), so
/// 256 MiB holds them with margin.
pub const DEFAULT_RECV_BUFFER: usize = 256 << 20;

/// Datagrams read per `recvmmsg` call.
const PER_CALL: usize = 64;
/// How long one blocking read waits before the thread checks whether the run is over.
const WAKE_EVERY: Duration = Duration::from_millis(200);

/// When the receiver reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadCadence {
    /// After the first datagram of a burst, wait this long before draining the socket (the
    /// kernel queues and stamps what arrives meanwhile). Zero: drain at once.
    pub pause: Duration,
}

impl Default for ReadCadence {
    /// 10 ms: a pass's burst of datagrams (all dummies send in the same sensing phase) is
    /// read in one go, at most 100 wake-ups a second whatever the rate, and the live view
    /// (4 Hz) never lags by more than a tick.
    fn default() -> Self {
        Self {
            pause: Duration::from_millis(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub listen: SocketAddr,
    /// Requested `SO_RCVBUF`, bytes.
    pub recv_buffer: usize,
    pub cadence: ReadCadence,
    /// Who may send ([`AllowList::Any`] on loopback: no check at all).
    pub allow: AllowList,
}

/// A bound UDP socket, ready to receive.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: socket2::Socket,
    pub local_addr: SocketAddr,
    /// `SO_RCVBUF` as the kernel reports it after our request (Linux doubles the request
    /// for bookkeeping and caps it at `net.core.rmem_max` unless `SO_RCVBUFFORCE` works).
    pub effective_recv_buffer: usize,
    pub kernel_stamps: bool,
    pub drop_counter: bool,
    cadence: ReadCadence,
    allow: AllowList,
}

/// Binds the UDP socket and configures it.
pub fn bind_udp(cfg: &UdpConfig) -> Result<UdpReceiver, CollectorError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = cfg.listen;
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| CollectorError::bind("UDP", "--listen", addr, e))?;
    set_recv_buffer(&sock, cfg.recv_buffer);
    sock.bind(&addr.into())
        .map_err(|e| CollectorError::bind("UDP", "--listen", addr, e))?;
    // Blocking reads that give up after WAKE_EVERY, so the thread notices the end of a run.
    sock.set_read_timeout(Some(WAKE_EVERY))
        .map_err(|e| CollectorError::SockOpt {
            what: "SO_RCVTIMEO",
            addr,
            source: e,
        })?;
    let (kernel_stamps, drop_counter) = enable_kernel_stamps(sock.as_raw_fd());
    let effective_recv_buffer = sock.recv_buffer_size().unwrap_or(0);
    let local_addr = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| {
            CollectorError::bind("UDP", "--listen", addr, std::io::ErrorKind::Other.into())
        })?;
    Ok(UdpReceiver {
        socket: sock,
        local_addr,
        effective_recv_buffer,
        kernel_stamps,
        drop_counter,
        cadence: cfg.cadence,
        allow: cfg.allow.clone(),
    })
}

/// `SO_RCVBUFFORCE` (root may exceed `rmem_max`), else plain `SO_RCVBUF`.
fn set_recv_buffer(sock: &socket2::Socket, bytes: usize) {
    let val = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    if !super::recvmsg::set_int_option(sock.as_raw_fd(), libc::SO_RCVBUFFORCE, val) {
        let _ = sock.set_recv_buffer_size(val as usize);
    }
}

impl UdpReceiver {
    /// A second handle on the socket for sending replies (ECHO) from another thread.
    pub fn reply_socket(&self) -> std::io::Result<socket2::Socket> {
        self.socket.try_clone()
    }

    /// Starts the receiving thread. It ends once `tx` is closed. While `low_latency` is set
    /// (some dummy wants ECHOs, whose round trip the script measures), it never pauses.
    pub fn spawn(
        self,
        tx: mpsc::Sender<ReceiverEvent>,
        pool: BatchPool,
        low_latency: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("udp-receiver".into())
            .spawn(move || self.run(&tx, &pool, &low_latency))
    }

    fn run(self, tx: &mpsc::Sender<ReceiverEvent>, pool: &BatchPool, low_latency: &AtomicBool) {
        let fd = self.socket.as_raw_fd();
        let mut reader = BatchReader::new(PER_CALL);
        let mut burst = Burst::new(pool.take(), self.allow.clone());
        // Wait for the first datagram; then, unless a dummy measures ECHO round trips, sleep
        // the cadence's pause so the kernel queues (and stamps) the rest of the burst, and
        // drain it in full batches. Reading a burst as it trickles in would take one system
        // call and one socket-lock handover per datagram.
        while !tx.is_closed() {
            let mut got = 0;
            let mut wait = true;
            let mut paused = false;
            loop {
                let read = reader.recv(fd, wait, |m, p| burst.push(m, p));
                wait = false;
                match read {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if got > 0 && !paused && self.pace(low_latency) {
                            paused = true;
                            continue;
                        }
                        break;
                    }
                    Err(e) => {
                        // An ICMP error concerns one peer, never the receiver.
                        tracing::debug!(error = %e, "UDP receive error ignored");
                        break;
                    }
                }
                if burst.batch.len() >= BATCH_LIMIT && !burst.send(tx, pool) {
                    return;
                }
            }
            if !burst.send(tx, pool) {
                return;
            }
        }
    }

    /// Sleeps the cadence's pause, unless it is zero or low latency is asked for; whether it
    /// slept.
    fn pace(&self, low_latency: &AtomicBool) -> bool {
        let pause = self.cadence.pause;
        if pause.is_zero() || low_latency.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(pause);
        true
    }
}

/// What one drain collected.
struct Burst {
    batch: ArrivalBatch,
    drops: Option<u32>,
    reported_drops: Option<u32>,
    /// `None` when every sender is accepted (loopback, `--allow-any`): no check per datagram.
    allow: Option<AllowList>,
    /// Datagrams from outside `--allow` so far, the latest sender, and the count reported.
    outside: u64,
    outside_last: Option<SocketAddr>,
    reported_outside: u64,
}

impl Burst {
    fn new(batch: ArrivalBatch, allow: AllowList) -> Self {
        Self {
            batch,
            drops: None,
            reported_drops: None,
            allow: (!allow.is_any()).then_some(allow),
            outside: 0,
            outside_last: None,
            reported_outside: 0,
        }
    }

    fn push(&mut self, m: Received, payload: &[u8]) {
        if m.drops.is_some() {
            self.drops = self.drops.max(m.drops);
        }
        let Some(from) = m.from else {
            return; // not an IP sender: nothing to attribute it to
        };
        // Before the datagram is copied into the batch: nothing of it is parsed or kept.
        if let Some(allow) = &self.allow {
            if !allow.allows(from.ip()) {
                self.outside += 1;
                self.outside_last = Some(from);
                return;
            }
        }
        self.batch.push(Arrival {
            source: Source::Udp(from),
            payload,
            kernel_ns: m.kernel_ns,
            read_ns: m.read_ns,
            truncated: m.truncated,
        });
    }

    /// Hands the batch (and new drop and refusal counts) over; false once the run is over.
    fn send(&mut self, tx: &mpsc::Sender<ReceiverEvent>, pool: &BatchPool) -> bool {
        if let (true, Some(last)) = (self.outside != self.reported_outside, self.outside_last) {
            self.reported_outside = self.outside;
            let status = ReceiverStatus::Refused {
                what: Refusal::UdpOutsideAllow,
                total: self.outside,
                last,
            };
            if tx.blocking_send(ReceiverEvent::Status(status)).is_err() {
                return false;
            }
        }
        if self.drops != self.reported_drops {
            self.reported_drops = self.drops;
            let n = u64::from(self.drops.unwrap_or(0));
            let status = ReceiverEvent::Status(ReceiverStatus::KernelDrops(n));
            if tx.blocking_send(status).is_err() {
                return false;
            }
        }
        if self.batch.is_empty() {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, pool.take());
        // A full channel blocks here: the kernel buffer absorbs meanwhile.
        tx.blocking_send(ReceiverEvent::Arrivals(full)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(from: &str) -> Received {
        Received {
            len: 3,
            from: Some(from.parse().unwrap()),
            kernel_ns: Some(5),
            drops: None,
            read_ns: 6,
            truncated: false,
            control_truncated: false,
        }
    }

    #[test]
    fn datagrams_from_outside_the_allow_list_never_enter_a_batch_and_are_reported() {
        let allow = AllowList::Only(vec!["10.0.0.0/24".parse().unwrap()].into_boxed_slice());
        let mut burst = Burst::new(ArrivalBatch::default(), allow);
        for from in [
            "10.0.0.7:1",
            "10.0.1.7:2",
            "127.0.0.1:3",
            "[::ffff:10.0.0.9]:4",
            "[2001:db8::1]:5",
        ] {
            burst.push(received(from), b"abc");
        }
        let kept: Vec<_> = burst.batch.iter().map(|a| a.source.addr().port()).collect();
        assert_eq!(
            kept,
            [1, 3, 4],
            "allowed network, loopback, IPv4-mapped allowed"
        );
        let (tx, mut rx) = mpsc::channel(8);
        let pool = BatchPool::default();
        assert!(burst.send(&tx, &pool));
        let Ok(ReceiverEvent::Status(ReceiverStatus::Refused { what, total, last })) =
            rx.try_recv()
        else {
            panic!("the refusal count comes first");
        };
        assert_eq!((what, total), (Refusal::UdpOutsideAllow, 2));
        assert_eq!(last, "[2001:db8::1]:5".parse().unwrap());
        assert!(matches!(rx.try_recv(), Ok(ReceiverEvent::Arrivals(b)) if b.len() == 3));
        assert!(burst.send(&tx, &pool));
        assert!(
            rx.try_recv().is_err(),
            "an unchanged count is not sent again"
        );
    }

    #[test]
    fn any_means_no_check_at_all() {
        let mut burst = Burst::new(ArrivalBatch::default(), AllowList::Any);
        assert!(burst.allow.is_none());
        burst.push(received("203.0.113.1:9"), b"x");
        assert_eq!(burst.batch.len(), 1);
    }
}
