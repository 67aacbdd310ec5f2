//! Binding the receivers and connecting the remote-API driver: the I/O a run starts with.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{CollectArgs, SimArgs};
use crate::collector::{
    bind_udp, spawn_tcp, BatchPool, ReadCadence, ReplySink, TcpConfig, UdpConfig,
};

use crate::event::ReceiverEvent;
use crate::remote_api::driver::{self, DriverEvent, DriverHandle};

/// Receiver → run loop queue depth, in batches (up to 1,024 messages and about 128 KiB
/// each), when the kernel's receive buffer is small (no root, a low `net.core.rmem_max`):
/// the queue then makes up for it while the run loop is behind.
const QUEUE_BATCHES_SMALL_KERNEL_BUFFER: usize = 256;
/// The same when the kernel granted a large buffer: it absorbs (a full queue makes the
/// receiver wait, and datagrams wait in the kernel, stamped), so the queue stays short. A
/// long one held up to 32 MiB of messages in flight while the run loop was behind, and the
/// bridge's RSS grew in steps with it (10,000 dummies, docs/PERFORMANCE.md).
const QUEUE_BATCHES_LARGE_KERNEL_BUFFER: usize = 8;
/// A kernel buffer this large (`SO_RCVBUF` as reported) counts as large: about 64,000 small
/// datagrams (Linux charges about 1 KiB each), 3 s of 1,000 dummies at 20 Hz.
const LARGE_KERNEL_BUFFER: usize = 64 << 20;
const _: () = assert!(QUEUE_BATCHES_LARGE_KERNEL_BUFFER < QUEUE_BATCHES_SMALL_KERNEL_BUFFER);

/// Depth of the receiver → run loop queue for a UDP socket whose kernel buffer is
/// `kernel_buffer` bytes.
fn queue_batches(kernel_buffer: usize) -> usize {
    if kernel_buffer >= LARGE_KERNEL_BUFFER {
        QUEUE_BATCHES_LARGE_KERNEL_BUFFER
    } else {
        QUEUE_BATCHES_SMALL_KERNEL_BUFFER
    }
}

/// Bound receivers, already receiving into their queue.
#[derive(Debug)]
pub struct Receivers {
    /// When the sockets were bound (wall clock): the start of the run.
    pub bound_ns: crate::time::UnixNanos,
    pub udp_addr: SocketAddr,
    pub tcp_addr: Option<SocketAddr>,
    pub(super) rx: mpsc::Receiver<ReceiverEvent>,
    /// For other listeners' status (Prometheus refusals). Weak: the queue still closes
    /// when the receivers end, as the run loop expects.
    pub(super) tx: mpsc::WeakSender<ReceiverEvent>,
    pub(super) replies: ReplySink,
    pub(super) pool: BatchPool,
    pub(super) low_latency: Arc<AtomicBool>,
    pub(super) drop_counter: bool,
}

impl Receivers {
    /// A weak sender into the receivers' queue, for status events of other listeners.
    pub fn status_sender(&self) -> mpsc::WeakSender<ReceiverEvent> {
        self.tx.clone()
    }
}

/// Binds UDP (and TCP) as `--listen`/`--tcp-listen` say and starts receiving. Listeners on
/// anything but loopback need `--allow` or `--allow-any` (an error says so), filter their
/// senders, and are logged as exposed.
pub async fn bind_receivers(args: &CollectArgs) -> anyhow::Result<Receivers> {
    let udp_allow = args.filter_for("--listen", args.listen)?;
    let tcp_allow = match args.tcp_listen {
        Some(a) => Some(args.filter_for("--tcp-listen", a)?),
        None => None,
    };
    let bound_ns = crate::time::unix_now_ns();
    let udp = bind_udp(&UdpConfig {
        listen: args.listen,
        recv_buffer: args.recv_buffer,
        cadence: ReadCadence::default(),
        allow: udp_allow,
    })?;
    let (tx, rx) = mpsc::channel(queue_batches(udp.effective_recv_buffer));
    let weak = tx.downgrade();
    if let Some(line) = args.exposure().describe("UDP", udp.local_addr) {
        tracing::warn!(kind = "warning", "{line}");
    }
    tracing::info!(
        listen = %udp.local_addr,
        recv_buffer_bytes = udp.effective_recv_buffer,
        kernel_drop_counter = udp.drop_counter,
        "listening for UDP datagrams on {} ({} receive timestamps)",
        udp.local_addr,
        if udp.kernel_stamps { "kernel SO_TIMESTAMPNS" } else { "user-space" },
    );
    let (udp_addr, drop_counter) = (udp.local_addr, udp.drop_counter);
    let replies = ReplySink::new(udp.reply_socket().ok());
    let pool = BatchPool::default();
    let low_latency = Arc::new(AtomicBool::new(false));
    udp.spawn(tx.clone(), pool.clone(), low_latency.clone())
        .map_err(|e| anyhow::anyhow!("cannot start the UDP receiver thread: {e}"))?;
    let mut tcp_addr = None;
    if let (Some(listen), Some(allow)) = (args.tcp_listen, tcp_allow) {
        let cfg = TcpConfig {
            listen,
            max_frame: args.max_frame,
            allow,
            max_conns: args.tcp_max_conns,
            idle_timeout: (!args.tcp_idle_timeout.is_zero()).then_some(args.tcp_idle_timeout),
            frame_timeout: args.tcp_frame_timeout,
        };
        let (local, _task) = spawn_tcp(cfg, tx.clone(), replies.clone()).await?;
        if let Some(line) = args.exposure().describe("TCP", local) {
            tracing::warn!(kind = "warning", "{line}");
        }
        tracing::info!("listening for framed TCP connections on {local}");
        tcp_addr = Some(local);
    }
    Ok(Receivers {
        bound_ns,
        udp_addr,
        tcp_addr,
        rx,
        tx: weak,
        replies,
        pool,
        low_latency,
        drop_counter,
    })
}

/// The running remote-API driver and its events.
#[derive(Debug)]
pub struct SimLink {
    pub(super) events: mpsc::UnboundedReceiver<DriverEvent>,
    pub(super) handle: DriverHandle,
    /// Events read while connecting, replayed into the run.
    pub(super) early: Vec<DriverEvent>,
}

/// Starts the driver and waits for CoppeliaSim to answer: an unreachable endpoint or an
/// unusable server (protocol 1, scene not found...) is an error, within the call deadline.
pub async fn connect_sim(sim: &SimArgs) -> anyhow::Result<SimLink> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let handle = driver::spawn(sim.driver_options(), tx)?;
    let mut early = Vec::new();
    // Setup makes a handful of calls, each bounded by the deadline.
    let wait = sim.remote.remote_timeout * 6 + Duration::from_secs(1);
    let connected = tokio::time::timeout(wait, async {
        while let Some(ev) = events.recv().await {
            let verdict = match &ev {
                DriverEvent::Connected { .. } => Some(Ok(())),
                DriverEvent::Disconnected { error, .. } | DriverEvent::Failed { error } => {
                    Some(Err(error.clone()))
                }
                _ => None,
            };
            early.push(ev);
            if let Some(v) = verdict {
                return v;
            }
        }
        Err("the remote API driver ended unexpectedly".to_owned())
    })
    .await;
    let result = match connected {
        Ok(r) => r,
        Err(_) => Err(format!(
            "CoppeliaSim at {} did not finish answering the setup calls within {}",
            sim.remote.remote,
            humantime::format_duration(wait)
        )),
    };
    if let Err(e) = result {
        tokio::task::spawn_blocking(move || handle.shutdown())
            .await
            .ok();
        anyhow::bail!("{e}");
    }
    Ok(SimLink {
        events,
        handle,
        early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_short_only_where_the_kernel_buffer_absorbs() {
        // Root's default: 256 MiB requested, reported doubled.
        assert_eq!(queue_batches(512 << 20), QUEUE_BATCHES_LARGE_KERNEL_BUFFER);
        assert_eq!(
            queue_batches(LARGE_KERNEL_BUFFER),
            QUEUE_BATCHES_LARGE_KERNEL_BUFFER
        );
        // Without root: capped at net.core.rmem_max (Debian's default 212,992, doubled).
        assert_eq!(queue_batches(425_984), QUEUE_BATCHES_SMALL_KERNEL_BUFFER);
        assert_eq!(queue_batches(0), QUEUE_BATCHES_SMALL_KERNEL_BUFFER);
    }
}
