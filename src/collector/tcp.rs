//! TCP receiver: `<u32 length><payload>` frames (docs/PROTOCOL.md), many clients at once.
//!
//! Each connection is read in chunks of up to [`READ_CHUNK`] bytes with `recvmsg`, so one
//! system call and one channel send carry every frame that arrived meanwhile, and the kernel
//! attaches its receive stamp (`SO_TIMESTAMPNS` works on stream sockets too: Linux
//! `tcp_recv_timestamp`). That stamp is the arrival of the newest segment the read consumed:
//! frames that waited in the socket behind it share it, so for them it errs late by at most
//! the read backlog (with one frame per pass and per segment, they are rare).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::recvmsg::{enable_kernel_stamps, recv_one};
use super::{CollectorError, ReplySink};
use crate::event::{Arrival, ArrivalBatch, ReceiverEvent, ReceiverStatus, Source};
use crate::wire::FrameDecoder;

/// Bytes read per system call and connection.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub listen: SocketAddr,
    /// Largest accepted frame payload, bytes.
    pub max_frame: usize,
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

async fn accept_loop(
    listener: TcpListener,
    cfg: TcpConfig,
    tx: mpsc::Sender<ReceiverEvent>,
    replies: ReplySink,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
                let source = Source::Tcp { peer, conn };
                tokio::spawn(serve_conn(
                    stream,
                    source,
                    cfg.max_frame,
                    tx.clone(),
                    replies.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "TCP accept failed; retrying in 100 ms");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn status(s: ReceiverStatus) -> ReceiverEvent {
    ReceiverEvent::Status(s)
}

async fn serve_conn(
    stream: TcpStream,
    source: Source,
    max_frame: usize,
    tx: mpsc::Sender<ReceiverEvent>,
    replies: ReplySink,
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
    let end = read_frames(&rd, source, max_frame, &tx).await;
    replies.unregister_tcp(conn);
    writer.abort();
    let _ = tx.send(status(end)).await;
}

/// Reads frames until the peer closes or a frame error; returns the closing event.
async fn read_frames(
    rd: &tokio::net::tcp::OwnedReadHalf,
    source: Source,
    max_frame: usize,
    tx: &mpsc::Sender<ReceiverEvent>,
) -> ReceiverStatus {
    let stream: &TcpStream = rd.as_ref();
    let fd = stream.as_raw_fd();
    let mut decoder = FrameDecoder::new(max_frame);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if let Err(e) = stream.readable().await {
            return closed(source, e.to_string(), decoder.pending());
        }
        let got = match stream.try_io(Interest::READABLE, || recv_one(fd, &mut buf)) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return closed(source, e.to_string(), decoder.pending()),
        };
        if got.len == 0 {
            return closed(source, "peer closed".into(), decoder.pending());
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
        if !batch.is_empty() && tx.send(ReceiverEvent::Arrivals(batch)).await.is_err() {
            return closed(source, "bridge stopping".into(), 0);
        }
        if let Some(end) = end {
            return end;
        }
    }
}

fn closed(source: Source, reason: String, lost_partial_bytes: usize) -> ReceiverStatus {
    ReceiverStatus::TcpClosed {
        source,
        reason,
        lost_partial_bytes,
    }
}
