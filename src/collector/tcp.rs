//! TCP receiver: `<u32 length><payload>` frames (docs/PROTOCOL.md), many clients at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{unix_now_ns, CollectorError, CollectorEvent, RecvEvent, ReplySink, Source};
use crate::wire::FrameDecoder;

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
    tx: mpsc::Sender<CollectorEvent>,
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
    tx: mpsc::Sender<CollectorEvent>,
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

async fn serve_conn(
    stream: TcpStream,
    source: Source,
    max_frame: usize,
    tx: mpsc::Sender<CollectorEvent>,
    replies: ReplySink,
) {
    let Source::Tcp { conn, .. } = source else {
        return;
    };
    let (mut rd, mut wr) = stream.into_split();
    let (reply_tx, mut reply_rx) = mpsc::channel::<Vec<u8>>(256);
    replies.register_tcp(conn, reply_tx);
    let writer = tokio::spawn(async move {
        while let Some(frame) = reply_rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send(CollectorEvent::TcpOpened { source }).await;
    let end = read_frames(&mut rd, source, max_frame, &tx).await;
    replies.unregister_tcp(conn);
    writer.abort();
    let _ = tx.send(end).await;
}

/// Reads frames until the peer closes or a frame error; returns the closing event.
async fn read_frames(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    source: Source,
    max_frame: usize,
    tx: &mpsc::Sender<CollectorEvent>,
) -> CollectorEvent {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) => {
                return closed(source, e.to_string(), decoder.pending());
            }
        };
        if n == 0 {
            return closed(source, "peer closed".into(), decoder.pending());
        }
        let read_ns = unix_now_ns();
        decoder.extend(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(payload)) => {
                    let ev = RecvEvent {
                        source,
                        payload,
                        kernel_ns: None,
                        read_ns,
                        truncated: false,
                    };
                    if tx.send(CollectorEvent::Message(ev)).await.is_err() {
                        return closed(source, "bridge stopping".into(), 0);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return CollectorEvent::TcpFrameError {
                        source,
                        error: e.to_string(),
                    }
                }
            }
        }
    }
}

fn closed(source: Source, reason: String, lost_partial_bytes: usize) -> CollectorEvent {
    CollectorEvent::TcpClosed {
        source,
        reason,
        lost_partial_bytes,
    }
}
