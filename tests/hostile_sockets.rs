//! Issue 11 §3, the cells of the hostile-input matrix that exist only on a real socket: TCP
//! length bombs, half-open and slow clients, the connection cap, and the same for the
//! Prometheus endpoint. Everything on loopback, port 0 kept by the listener under test.
//!
//! No dependence on machine speed: the timeouts under test are short (300 ms) but every wait
//! for their effect has a generous deadline (20 s) and every loop is bounded in count; what
//! is asserted is the cause and the counters, never a duration. The pure cells (datagrams,
//! ids, times) are in `tests/hostile_inputs.rs`; the matrix is in docs/RELIABILITY.md.

use std::net::SocketAddr;
use std::time::Duration;

use coppelia_bridge::collector::{spawn_tcp, ReplySink, TcpConfig};
use coppelia_bridge::commands::run::empty_snapshot;
use coppelia_bridge::event::{ReceiverEvent, ReceiverStatus, Refusal, TcpCloseCause};
use coppelia_bridge::output::prometheus::{MetricsLimits, MetricsServer};
use coppelia_bridge::wire::encode_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Longest wait for anything to happen; far above every timeout configured here.
const DEADLINE: Duration = Duration::from_secs(20);
const SHORT: Duration = Duration::from_millis(300);

/// The next receiver event, or a panic after [`DEADLINE`].
async fn next(rx: &mut mpsc::Receiver<ReceiverEvent>) -> ReceiverEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no receiver event within 20 s")
        .expect("receiver queue closed")
}

/// Events until one matches `pick`; the others are returned too (bounded: 1,000 events).
async fn until<T>(
    rx: &mut mpsc::Receiver<ReceiverEvent>,
    mut pick: impl FnMut(&ReceiverEvent) -> Option<T>,
) -> (T, Vec<ReceiverEvent>) {
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let ev = next(rx).await;
        if let Some(t) = pick(&ev) {
            return (t, seen);
        }
        seen.push(ev);
    }
    panic!("1,000 events without the one expected: {seen:?}");
}

fn peer_of(ev: &ReceiverEvent) -> Option<SocketAddr> {
    match ev {
        ReceiverEvent::Status(ReceiverStatus::TcpOpened { source }) => Some(source.addr()),
        _ => None,
    }
}

async fn listener(cfg: impl FnOnce(&mut TcpConfig)) -> (SocketAddr, mpsc::Receiver<ReceiverEvent>) {
    let mut c = TcpConfig::new("127.0.0.1:0".parse().unwrap());
    cfg(&mut c);
    let (tx, rx) = mpsc::channel(256);
    let (addr, _task) = spawn_tcp(c, tx, ReplySink::default()).await.unwrap();
    (addr, rx)
}

/// Connects and waits until the bridge reports the connection open.
async fn connect(addr: SocketAddr, rx: &mut mpsc::Receiver<ReceiverEvent>) -> TcpStream {
    let s = TcpStream::connect(addr).await.unwrap();
    let me = s.local_addr().unwrap();
    until(rx, |ev| (peer_of(ev) == Some(me)).then_some(())).await;
    s
}

/// The close of the connection from `me`: its cause and the partial bytes lost.
async fn closed(
    rx: &mut mpsc::Receiver<ReceiverEvent>,
    me: SocketAddr,
) -> (TcpCloseCause, usize, Vec<ReceiverEvent>) {
    let ((cause, lost), seen) = until(rx, |ev| match ev {
        ReceiverEvent::Status(ReceiverStatus::TcpClosed {
            source,
            cause,
            lost_partial_bytes,
        }) if source.addr() == me => Some((cause.clone(), *lost_partial_bytes)),
        _ => None,
    })
    .await;
    (cause, lost, seen)
}

/// Payloads that arrived from `me`.
fn payloads_from(events: &[ReceiverEvent], me: SocketAddr) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for ev in events {
        if let ReceiverEvent::Arrivals(b) = ev {
            out.extend(
                b.iter()
                    .filter(|a| a.source.addr() == me)
                    .map(|a| a.payload.to_vec()),
            );
        }
    }
    out
}

/// Whether the peer closed `s` (end of stream or reset) within [`DEADLINE`], sending nothing.
async fn is_closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(DEADLINE, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn tcp_length_bombs_close_only_their_connection() {
    let (addr, mut rx) = listener(|_| {}).await;
    let mut good = connect(addr, &mut rx).await;
    let good_me = good.local_addr().unwrap();
    for (bomb, what) in [
        (u32::MAX.to_le_bytes(), "4 GiB"),
        (4097u32.to_le_bytes(), "one byte over --max-frame"),
        (0u32.to_le_bytes(), "zero"),
    ] {
        let mut s = connect(addr, &mut rx).await;
        let me = s.local_addr().unwrap();
        s.write_all(&bomb).await.unwrap();
        // Followed by bytes the bridge must never parse.
        let _ = s.write_all(&[0xAB; 64]).await;
        // The frame error is the connection's last event (it stands for its close).
        let (error, seen) = until(&mut rx, |ev| match ev {
            ReceiverEvent::Status(ReceiverStatus::TcpFrameError { source, error })
                if source.addr() == me =>
            {
                Some(error.clone())
            }
            _ => None,
        })
        .await;
        assert!(!error.is_empty(), "{what}");
        assert!(
            payloads_from(&seen, me).is_empty(),
            "{what}: nothing parsed"
        );
        assert!(
            is_closed_by_peer(&mut s).await,
            "{what}: the bomb's connection is closed"
        );
    }
    // The well-behaved connection opened before the bombs is still served.
    good.write_all(&encode_frame(b"still here")).await.unwrap();
    let (payload, _) = until(&mut rx, |ev| {
        payloads_from(std::slice::from_ref(ev), good_me).pop()
    })
    .await;
    assert_eq!(payload, b"still here");
}

#[tokio::test]
async fn a_half_open_client_is_closed_after_the_idle_timeout() {
    let (addr, mut rx) = listener(|c| c.idle_timeout = Some(SHORT)).await;
    // Connects and never sends a byte (nor closes).
    let mut s = connect(addr, &mut rx).await;
    let me = s.local_addr().unwrap();
    let (cause, lost, _) = closed(&mut rx, me).await;
    assert_eq!((cause, lost), (TcpCloseCause::IdleTimeout, 0));
    assert!(is_closed_by_peer(&mut s).await);
}

#[tokio::test]
async fn a_slow_sender_is_closed_when_its_frame_is_late_and_its_partial_frame_dropped() {
    let (addr, mut rx) = listener(|c| {
        c.idle_timeout = Some(DEADLINE * 10);
        c.frame_timeout = SHORT;
    })
    .await;
    let mut s = connect(addr, &mut rx).await;
    let me = s.local_addr().unwrap();
    // A 100-byte frame, one byte every 50 ms: each byte resets the idle timer, never the
    // frame's. Bounded: at most 100 writes; the bridge closes long before.
    let frame = encode_frame(&[7u8; 100]);
    let writer = tokio::spawn(async move {
        for b in frame {
            if s.write_all(&[b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    let (cause, lost, seen) = closed(&mut rx, me).await;
    assert_eq!(cause, TcpCloseCause::SlowFrame);
    assert!(lost > 0 && lost < 104, "partial bytes dropped: {lost}");
    assert!(payloads_from(&seen, me).is_empty());
    writer.abort();
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_counted_and_the_slot_comes_back() {
    let (addr, mut rx) = listener(|c| c.max_conns = 2).await;
    let first = connect(addr, &mut rx).await;
    let _second = connect(addr, &mut rx).await;
    for n in 1..=3u64 {
        let mut over = TcpStream::connect(addr).await.unwrap();
        let me = over.local_addr().unwrap();
        let ((what, total, last), _) = until(&mut rx, |ev| match ev {
            ReceiverEvent::Status(ReceiverStatus::Refused { what, total, last }) => {
                Some((*what, *total, *last))
            }
            _ => None,
        })
        .await;
        assert_eq!((what, total, last), (Refusal::TcpOverConnCap, n, me));
        assert!(is_closed_by_peer(&mut over).await, "closed at accept");
    }
    let first_me = first.local_addr().unwrap();
    drop(first);
    let (cause, _, _) = closed(&mut rx, first_me).await;
    assert_eq!(cause, TcpCloseCause::PeerClosed);
    // Its slot was given back before the close was reported.
    let mut again = connect(addr, &mut rx).await;
    again.write_all(&encode_frame(b"in")).await.unwrap();
    let me = again.local_addr().unwrap();
    let (payload, _) = until(&mut rx, |ev| {
        payloads_from(std::slice::from_ref(ev), me).pop()
    })
    .await;
    assert_eq!(payload, b"in");
}

/// A `/metrics` endpoint with one slot and the given read timeout; its refusals in `rx`.
async fn metrics_endpoint(
    read_timeout: Duration,
) -> (
    SocketAddr,
    mpsc::Receiver<ReceiverEvent>,
    mpsc::Sender<ReceiverEvent>,
    watch::Sender<coppelia_bridge::metrics::RunSnapshot>,
) {
    let (tx, rx) = mpsc::channel(64);
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_limits(MetricsLimits {
            max_conns: 1,
            read_timeout,
            write_timeout: SHORT,
        })
        .with_status(tx.downgrade());
    let addr = server.local_addr();
    let (snap_tx, snap_rx) = watch::channel(empty_snapshot());
    tokio::spawn(server.serve(snap_rx, "test".to_owned()));
    (addr, rx, tx, snap_tx)
}

async fn refusal(rx: &mut mpsc::Receiver<ReceiverEvent>) -> (Refusal, u64) {
    until(rx, |ev| match ev {
        ReceiverEvent::Status(ReceiverStatus::Refused { what, total, .. }) => Some((*what, *total)),
        _ => None,
    })
    .await
    .0
}

async fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(DEADLINE, s.read_to_string(&mut out))
        .await
        .expect("answer within 20 s")
        .unwrap();
    out
}

/// Sends a whole request on `s` and reads the answer ("" when the bridge closed it).
async fn request_on(s: &mut TcpStream) -> String {
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut out = String::new();
    let _ = tokio::time::timeout(DEADLINE, s.read_to_string(&mut out)).await;
    out
}

#[tokio::test]
async fn the_metrics_endpoint_drops_huge_and_silent_requests() {
    let (addr, mut rx, _tx, _snap) = metrics_endpoint(SHORT).await;
    assert!(scrape(addr).await.starts_with("HTTP/1.1 200"));

    // A head that never ends: cut at 8 KiB, closed unanswered.
    let mut huge = TcpStream::connect(addr).await.unwrap();
    let _ = huge.write_all(b"GET /metrics HTTP/1.1\r\n").await;
    let _ = huge.write_all(&[b'a'; 9000]).await;
    assert!(is_closed_by_peer(&mut huge).await);
    assert_eq!(refusal(&mut rx).await, (Refusal::MetricsBadRequest, 1));

    // A client that connects and says nothing is dropped at the read timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(is_closed_by_peer(&mut silent).await);
    assert_eq!(refusal(&mut rx).await, (Refusal::MetricsBadRequest, 2));

    // Well-behaved scrapes still work (the slot was freed before the refusal was reported).
    assert!(scrape(addr).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn the_metrics_endpoint_refuses_connections_over_its_cap() {
    // One slot, held by whichever of two silent clients is accepted first (for up to 60 s,
    // far longer than the test): the other is refused at accept.
    let (addr, mut rx, _tx, _snap) = metrics_endpoint(Duration::from_secs(60)).await;
    // The refused one may even see its reset before `connect` returns.
    let a = TcpStream::connect(addr).await;
    let b = TcpStream::connect(addr).await;
    assert_eq!(refusal(&mut rx).await, (Refusal::MetricsOverConnCap, 1));
    let mut answers = Vec::new();
    for s in [a, b] {
        answers.push(match s {
            Ok(mut s) => request_on(&mut s).await,
            Err(_) => String::new(),
        });
    }
    let served = answers
        .iter()
        .filter(|r| r.starts_with("HTTP/1.1 200"))
        .count();
    let refused = answers.iter().filter(|r| r.is_empty()).count();
    assert_eq!((served, refused), (1, 1), "{answers:?}");
}
