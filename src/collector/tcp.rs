//! TCP receiver: `<u32 length><payload>` frames (docs/PROTOCOL.md), many clients at once.
//!
//! Each connection is read in chunks of up to [`READ_CHUNK`] bytes with `recvmsg`, so one
//! system call and one channel send carry every frame that arrived meanwhile, and the kernel
//! attaches its receive stamp (`SO_TIMESTAMPNS` works on stream sockets too: Linux
//! `tcp_recv_timestamp`). That stamp is the arrival of the newest segment the read consumed:
//! frames that waited in the socket behind it share it, so for them it errs late by at most
//! the read backlog (with one frame per pass and per segment, they are rare).
//!
//! What one peer can hold (docs/RELIABILITY.md): a connection is accepted only from inside
//! `--allow` and while fewer than `--tcp-max-conns` are open (others are closed at once, with
//! a reset, and counted); it is closed after `--tcp-idle-timeout` without a byte, and when a
//! frame it began is not complete within `--tcp-frame-timeout` (a slow or stalled sender).
//! So at most `max_conns × (4 + max_frame + READ_CHUNK)` bytes of partial frames and read
//! buffers are held, each for a bounded time. A zero or oversized length closes only that
//! connection.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::recvmsg::{enable_kernel_stamps, recv_one};
use super::{AllowList, CollectorError, ReplySink};
use crate::event::{
    Arrival, ArrivalBatch, ReceiverEvent, ReceiverStatus, Refusal, Source, TcpCloseCause,
};
use crate::wire::FrameDecoder;

/// Bytes read per system call and connection.
const READ_CHUNK: usize = 16 * 1024;

/// Default `--tcp-max-conns`: one connection per TCP dummy; 1,024 is also the usual soft
/// limit of open files (`ulimit -n`), past which accept would fail anyway.
pub const DEFAULT_TCP_MAX_CONNS: usize = 1024;
/// Default `--tcp-idle-timeout`: longer than a typical pause of the simulation (a paused
/// script sends nothing; when it resumes after a close it reconnects and says HELLO, which
/// starts a new session), short enough that silent connections do not pile up.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default `--tcp-frame-timeout`: a frame is at most a few KiB, written in one `send` by
/// the script; taking 10 s over one means the sender is stalled or hostile.
pub const DEFAULT_TCP_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub listen: SocketAddr,
    /// Largest accepted frame payload, bytes.
    pub max_frame: usize,
    /// Who may connect ([`AllowList::Any`] on loopback).
    pub allow: AllowList,
    /// Most connections open at once.
    pub max_conns: usize,
    /// Close a connection after this long without a byte; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose frame, once begun, is not complete after this long.
    pub frame_timeout: Duration,
}

impl TcpConfig {
    /// Defaults for everything but the address: frames up to 4 KiB, any peer, the default
    /// caps and timeouts.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_frame: crate::wire::DEFAULT_MAX_FRAME,
            allow: AllowList::Any,
            max_conns: DEFAULT_TCP_MAX_CONNS,
            idle_timeout: Some(DEFAULT_TCP_IDLE_TIMEOUT),
            frame_timeout: DEFAULT_TCP_FRAME_TIMEOUT,
        }
    }
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Binds the listener (with `SO_REUSEADDR`, so a restarted bridge can bind again at once)
/// and spawns the accept loop.
pub async fn spawn_tcp(
    cfg: TcpConfig,
    tx: mpsc::Sender<ReceiverEvent>,
    replies: ReplySink,
) -> Result<(SocketAddr, JoinHandle<()>), CollectorError> {
    let addr = cfg.listen;
    let bind = |e| CollectorError::bind("TCP", "--tcp-listen", addr, e);
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind)?;
    sock.set_reuseaddr(true).map_err(bind)?;
    sock.bind(addr).map_err(bind)?;
    let listener = sock.listen(1024).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    Ok((local, tokio::spawn(accept_loop(listener, cfg, tx, replies))))
}

/// What the accept loop refused so far.
#[derive(Debug, Default)]
struct Refused {
    outside: u64,
    over_cap: u64,
}

async fn accept_loop(
    listener: TcpListener,
    cfg: TcpConfig,
    tx: mpsc::Sender<ReceiverEvent>,
    replies: ReplySink,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_conns));
    let mut refused = Refused::default();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(permit) = admit(&stream, peer, &cfg, &slots, &mut refused, &tx).await
                else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                let source = Source::Tcp { peer, conn };
                tokio::spawn(serve_conn(
                    stream,
                    source,
                    cfg.clone(),
                    tx.clone(),
                    replies.clone(),
                    permit,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "TCP accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// A connection slot for `stream`, or `None` when it must be closed: its peer is outside
/// `--allow`, or `--tcp-max-conns` are open. Refused connections are reset (no TIME_WAIT
/// kept for them) and counted.
async fn admit(
    stream: &TcpStream,
    peer: SocketAddr,
    cfg: &TcpConfig,
    slots: &Arc<Semaphore>,
    refused: &mut Refused,
    tx: &mpsc::Sender<ReceiverEvent>,
) -> Option<OwnedSemaphorePermit> {
    let (what, total) = if !cfg.allow.allows(peer.ip()) {
        refused.outside += 1;
        (Refusal::TcpOutsideAllow, refused.outside)
    } else {
        match slots.clone().try_acquire_owned() {
            Ok(permit) => return Some(permit),
            Err(_) => {
                refused.over_cap += 1;
                (Refusal::TcpOverConnCap, refused.over_cap)
            }
        }
    };
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
    let status = ReceiverStatus::Refused {
        what,
        total,
        last: peer,
    };
    let _ = tx.send(ReceiverEvent::Status(status)).await;
    None
}

fn status(s: ReceiverStatus) -> ReceiverEvent {
    ReceiverEvent::Status(s)
}

async fn serve_conn(
    stream: TcpStream,
    source: Source,
    cfg: TcpConfig,
    tx: mpsc::Sender<ReceiverEvent>,
    replies: ReplySink,
    slot: OwnedSemaphorePermit,
) {
    let Source::Tcp { conn, .. } = source else {
        return;
    };
    enable_kernel_stamps(stream.as_raw_fd());
    let (reply_tx, mut reply_rx) = mpsc::channel::<Vec<u8>>(256);
    replies.register_tcp(conn, reply_tx);
    let (rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = reply_rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send(status(ReceiverStatus::TcpOpened { source })).await;
    let end = read_frames(&rd, source, &cfg, &tx).await;
    replies.unregister_tcp(conn);
    writer.abort();
    // The slot is free before the close is reported: whoever sees the close can connect.
    drop(slot);
    let _ = tx.send(status(end)).await;
}

/// When a connection must be closed if nothing more arrives.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    idle: Option<Duration>,
    frame: Duration,
    last_byte: Instant,
    /// When the frame now held in part began.
    partial_since: Option<Instant>,
}

impl Deadlines {
    /// The earliest deadline and the cause it stands for.
    fn next(&self) -> Option<(Instant, TcpCloseCause)> {
        let idle = self
            .idle
            .map(|d| (self.last_byte + d, TcpCloseCause::IdleTimeout));
        let frame = self
            .partial_since
            .map(|t| (t + self.frame, TcpCloseCause::SlowFrame));
        match (idle, frame) {
            (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// After a read at `now` that completed `frames` frames and left `pending` bytes.
    fn read(&mut self, now: Instant, frames: usize, pending: usize) {
        self.last_byte = now;
        if pending == 0 {
            self.partial_since = None;
        } else if frames > 0 || self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }
}

/// Reads frames until the peer closes, a frame error or a timeout; returns the closing event.
async fn read_frames(
    rd: &tokio::net::tcp::OwnedReadHalf,
    source: Source,
    cfg: &TcpConfig,
    tx: &mpsc::Sender<ReceiverEvent>,
) -> ReceiverStatus {
    let stream: &TcpStream = rd.as_ref();
    let fd = stream.as_raw_fd();
    let mut decoder = FrameDecoder::new(cfg.max_frame);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut deadlines = Deadlines {
        idle: cfg.idle_timeout,
        frame: cfg.frame_timeout,
        last_byte: Instant::now(),
        partial_since: None,
    };
    loop {
        let ready = match deadlines.next() {
            Some((at, cause)) => match tokio::time::timeout_at(at, stream.readable()).await {
                Ok(r) => r,
                Err(_) => return closed(source, cause, decoder.pending()),
            },
            None => stream.readable().await,
        };
        if let Err(e) = ready {
            return closed(
                source,
                TcpCloseCause::Error(e.to_string()),
                decoder.pending(),
            );
        }
        let got = match stream.try_io(Interest::READABLE, || recv_one(fd, &mut buf)) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                return closed(
                    source,
                    TcpCloseCause::Error(e.to_string()),
                    decoder.pending(),
                )
            }
        };
        if got.len == 0 {
            return closed(source, TcpCloseCause::PeerClosed, decoder.pending());
        }
        let read_ns = got.read_ns;
        decoder.extend(&buf[..got.len]);
        let mut batch = ArrivalBatch::default();
        let end = loop {
            match decoder.next_frame_ref() {
                Ok(Some(payload)) => batch.push(Arrival {
                    source,
                    payload,
                    kernel_ns: got.kernel_ns,
                    read_ns,
                    truncated: false,
                }),
                Ok(None) => break None,
                Err(e) => {
                    break Some(ReceiverStatus::TcpFrameError {
                        source,
                        error: e.to_string(),
                    })
                }
            }
        };
        deadlines.read(Instant::now(), batch.len(), decoder.pending());
        if !batch.is_empty() && tx.send(ReceiverEvent::Arrivals(batch)).await.is_err() {
            return closed(source, TcpCloseCause::Stopping, 0);
        }
        if let Some(end) = end {
            return end;
        }
    }
}

fn closed(source: Source, cause: TcpCloseCause, lost_partial_bytes: usize) -> ReceiverStatus {
    ReceiverStatus::TcpClosed {
        source,
        cause,
        lost_partial_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_deadline_wins_and_a_partial_frame_keeps_its_start() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Deadlines {
            idle: Some(300 * s),
            frame: 10 * s,
            last_byte: t0,
            partial_since: None,
        };
        assert!(matches!(d.next(), Some((at, TcpCloseCause::IdleTimeout)) if at == t0 + 300 * s));
        // Half a frame arrives, then a byte a second: the frame deadline stays at its start.
        d.read(t0 + s, 0, 3);
        d.read(t0 + 2 * s, 0, 4);
        assert!(matches!(d.next(), Some((at, TcpCloseCause::SlowFrame)) if at == t0 + 11 * s));
        // A frame completes and another begins in the same read: a new start.
        d.read(t0 + 5 * s, 1, 2);
        assert!(matches!(d.next(), Some((at, TcpCloseCause::SlowFrame)) if at == t0 + 15 * s));
        // Nothing held: only idleness counts.
        d.read(t0 + 6 * s, 1, 0);
        assert!(matches!(d.next(), Some((at, TcpCloseCause::IdleTimeout)) if at == t0 + 306 * s));
        d.idle = None;
        assert!(
            d.next().is_none(),
            "--tcp-idle-timeout 0 and nothing held: no deadline"
        );
    }
}
