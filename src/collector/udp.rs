//! UDP receiver: one socket, kernel receive timestamps, large receive buffer.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::recvmsg::{enable_kernel_stamps, recv_stamped};
use super::{unix_now_ns, CollectorError, CollectorEvent, RecvEvent, Source};

/// Default `SO_RCVBUF` request, bytes: 10 s of 1,000 dummies at 20 Hz is 200,000 datagrams,
/// and Linux charges each small datagram about 1 KiB of buffer (its `skb` true size), so
/// 256 MiB holds them with margin.
pub const DEFAULT_RECV_BUFFER: usize = 256 << 20;

/// Largest datagram read whole; anything longer is counted as truncated (v1 messages are
/// at most 85 bytes).
const MAX_DATAGRAM: usize = 2048;

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub listen: SocketAddr,
    /// Requested `SO_RCVBUF`, bytes.
    pub recv_buffer: usize,
}

/// A bound UDP socket, ready to receive.
#[derive(Debug)]
pub struct UdpReceiver {
    pub socket: Arc<UdpSocket>,
    pub local_addr: SocketAddr,
    /// `SO_RCVBUF` as the kernel reports it after our request (Linux doubles the request
    /// for bookkeeping and caps it at `net.core.rmem_max` unless `SO_RCVBUFFORCE` works).
    pub effective_recv_buffer: usize,
    pub kernel_stamps: bool,
    pub drop_counter: bool,
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
    sock.set_nonblocking(true)
        .map_err(|e| CollectorError::SockOpt {
            what: "O_NONBLOCK",
            addr,
            source: e,
        })?;
    let (kernel_stamps, drop_counter) = enable_kernel_stamps(sock.as_raw_fd());
    let effective_recv_buffer = sock.recv_buffer_size().unwrap_or(0);
    let std_sock: std::net::UdpSocket = sock.into();
    let local_addr = std_sock
        .local_addr()
        .map_err(|e| CollectorError::bind("UDP", "--listen", addr, e))?;
    let socket = UdpSocket::from_std(std_sock)
        .map_err(|e| CollectorError::bind("UDP", "--listen", addr, e))?;
    Ok(UdpReceiver {
        socket: Arc::new(socket),
        local_addr,
        effective_recv_buffer,
        kernel_stamps,
        drop_counter,
    })
}

/// `SO_RCVBUFFORCE` (root may exceed `rmem_max`), else plain `SO_RCVBUF`.
fn set_recv_buffer(sock: &socket2::Socket, bytes: usize) {
    let val = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    // SAFETY: `val` outlives the call and its size is passed.
    let forced = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    };
    if !forced {
        let _ = sock.set_recv_buffer_size(val as usize);
    }
}

impl UdpReceiver {
    /// Receives until the channel closes. Never fails on bad input: every datagram,
    /// whatever its content, is forwarded with its timestamps.
    pub async fn run(self, tx: mpsc::Sender<CollectorEvent>) {
        let fd = self.socket.as_raw_fd();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last_drops = 0u32;
        loop {
            let got = self
                .socket
                .async_io(Interest::READABLE, || recv_stamped(fd, &mut buf))
                .await;
            let read_ns = unix_now_ns();
            let r = match got {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors (e.g. ECONNREFUSED after an ECHO to a dead port) surface
                    // here on Linux; they concern one peer, never the receiver.
                    tracing::debug!(error = %e, "UDP receive error ignored");
                    continue;
                }
            };
            if let Some(d) = r.drops.filter(|&d| d != last_drops) {
                last_drops = d;
                if tx
                    .send(CollectorEvent::KernelDrops(u64::from(d)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let event = RecvEvent {
                source: Source::Udp(r.from),
                payload: buf[..r.len.min(buf.len())].to_vec(),
                kernel_ns: r.kernel_ns,
                read_ns,
                truncated: r.truncated,
            };
            if tx.send(CollectorEvent::Message(event)).await.is_err() {
                return;
            }
        }
    }
}
