//! The data that crosses module boundaries, and nothing else (pure: no I/O, no clock).
//!
//! - What receivers produce and the aggregator consumes ([`ReceiverEvent`]): [`Arrival`]s,
//!   carried in batches ([`ArrivalBatch`], one allocation for many datagrams), and
//!   [`ReceiverStatus`] events (connections, kernel drops).
//! - What the bridge tells the user: [`Notice`]s of one [`EventKind`], the single vocabulary
//!   of log lines (`kind=`), `events.jsonl` and `docs/OUTPUT.md`.
//!
//! Neither `collector` (I/O) nor `metrics` (pure statistics) owns these types, so neither
//! depends on the other.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::time::UnixNanos;

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

/// One message as received (a datagram, or one TCP frame), with its timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival<'a> {
    pub source: Source,
    pub payload: &'a [u8],
    /// Kernel receive stamp (`SO_TIMESTAMPNS`), when the kernel provided one.
    pub kernel_ns: Option<UnixNanos>,
    /// When user space read it.
    pub read_ns: UnixNanos,
    /// The datagram was longer than the receive buffer and was cut.
    pub truncated: bool,
}

impl Arrival<'_> {
    /// Best arrival time: the kernel's if present, else the user-space read time.
    pub fn recv_ns(&self) -> UnixNanos {
        self.kernel_ns.unwrap_or(self.read_ns)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Meta {
    source: Source,
    end: usize,
    kernel_ns: Option<UnixNanos>,
    read_ns: UnixNanos,
    truncated: bool,
}

/// Arrivals in receive order, their payloads packed in one buffer: a receiver fills one
/// batch per read burst and hands it over whole, so there is no allocation and no channel
/// send per message. Cleared batches keep their capacity and can be reused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArrivalBatch {
    bytes: Vec<u8>,
    items: Vec<Meta>,
}

impl ArrivalBatch {
    /// An empty batch with room for `messages` messages of up to `bytes` payload in all.
    pub fn with_capacity(messages: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            items: Vec::with_capacity(messages),
        }
    }

    /// A batch of one (tests, TCP frames read one by one).
    pub fn one(arrival: Arrival<'_>) -> Self {
        let mut b = Self::default();
        b.push(arrival);
        b
    }

    /// Appends a copy of `a`.
    pub fn push(&mut self, a: Arrival<'_>) {
        self.bytes.extend_from_slice(a.payload);
        self.items.push(Meta {
            source: a.source,
            end: self.bytes.len(),
            kernel_ns: a.kernel_ns,
            read_ns: a.read_ns,
            truncated: a.truncated,
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Payload bytes held.
    pub fn payload_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Forgets every arrival, keeping the allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    /// The arrivals, in receive order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Arrival<'_>> + '_ {
        let mut start = 0;
        self.items.iter().map(move |m| {
            let payload = &self.bytes[start..m.end];
            start = m.end;
            Arrival {
                source: m.source,
                payload,
                kernel_ns: m.kernel_ns,
                read_ns: m.read_ns,
                truncated: m.truncated,
            }
        })
    }
}

/// Everything receivers report to the aggregator.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverEvent {
    Arrivals(ArrivalBatch),
    Status(ReceiverStatus),
}

/// What receivers report besides messages.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiverStatus {
    TcpOpened {
        source: Source,
    },
    TcpClosed {
        source: Source,
        cause: TcpCloseCause,
        lost_partial_bytes: usize,
    },
    /// A frame error closed the connection (oversized or empty frame).
    TcpFrameError {
        source: Source,
        error: String,
    },
    /// Cumulative datagrams dropped by the kernel for lack of receive buffer (`SO_RXQ_OVFL`).
    KernelDrops(u64),
    /// A listener turned traffic away before parsing it: `total` so far (cumulative, so an
    /// event that is merged or arrives late loses nothing), the latest from `last`.
    Refused {
        what: Refusal,
        total: u64,
        last: SocketAddr,
    },
}

/// Why a TCP connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCloseCause {
    /// The peer closed it.
    PeerClosed,
    /// A socket error (reset, ...).
    Error(String),
    /// Nothing arrived for `--tcp-idle-timeout`.
    IdleTimeout,
    /// A frame begun was not complete within `--tcp-frame-timeout` (a slow or stalled
    /// sender holding a partial frame).
    SlowFrame,
    /// The run is over.
    Stopping,
}

impl std::fmt::Display for TcpCloseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TcpCloseCause::PeerClosed => f.write_str("peer closed"),
            TcpCloseCause::Error(e) => write!(f, "{e}"),
            TcpCloseCause::IdleTimeout => {
                f.write_str("idle for --tcp-idle-timeout (the script reconnects if alive)")
            }
            TcpCloseCause::SlowFrame => {
                f.write_str("a frame was not complete within --tcp-frame-timeout")
            }
            TcpCloseCause::Stopping => f.write_str("bridge stopping"),
        }
    }
}

/// What a listener turned away, before parsing anything (`summary.json`: `final.refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A UDP datagram from outside `--allow`.
    UdpOutsideAllow,
    /// A TCP connection from outside `--allow`, closed at accept.
    TcpOutsideAllow,
    /// A TCP connection over `--tcp-max-conns`, closed at accept.
    TcpOverConnCap,
    /// A Prometheus connection from outside `--allow`, closed at accept.
    MetricsOutsideAllow,
    /// A Prometheus connection over the endpoint's connection cap, closed at accept.
    MetricsOverConnCap,
    /// A Prometheus request too large, too slow, or whose answer was never read.
    MetricsBadRequest,
}

impl Refusal {
    /// The counter's name in `final.refused` and Prometheus (`what` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UdpOutsideAllow => "udp_outside_allow",
            Refusal::TcpOutsideAllow => "tcp_outside_allow",
            Refusal::TcpOverConnCap => "tcp_over_conn_cap",
            Refusal::MetricsOutsideAllow => "metrics_outside_allow",
            Refusal::MetricsOverConnCap => "metrics_over_conn_cap",
            Refusal::MetricsBadRequest => "metrics_bad_requests",
        }
    }

    /// The notice kind its log line has.
    pub fn kind(self) -> EventKind {
        match self {
            Refusal::UdpOutsideAllow | Refusal::TcpOutsideAllow | Refusal::MetricsOutsideAllow => {
                EventKind::OutsideAllow
            }
            Refusal::TcpOverConnCap | Refusal::MetricsOverConnCap | Refusal::MetricsBadRequest => {
                EventKind::LimitReached
            }
        }
    }

    /// What happened, `n` more times (`total` in all), and what to do about it.
    pub fn message(self, n: u64, total: u64, last: SocketAddr) -> String {
        let (what, fix) = match self {
            Refusal::UdpOutsideAllow => (
                "UDP datagrams from outside --allow dropped unparsed",
                "if that host is one of yours, add --allow for its network",
            ),
            Refusal::TcpOutsideAllow => (
                "TCP connections from outside --allow closed at accept",
                "if that host is one of yours, add --allow for its network",
            ),
            Refusal::MetricsOutsideAllow => (
                "Prometheus connections from outside --allow closed at accept",
                "if that scraper is yours, add --allow for its network",
            ),
            Refusal::TcpOverConnCap => (
                "TCP connections refused: --tcp-max-conns connections are open",
                "raise --tcp-max-conns (and `ulimit -n`) if you have that many TCP dummies",
            ),
            Refusal::MetricsOverConnCap => (
                "Prometheus connections refused: too many scrapes at once",
                "scrape less often, or from fewer places",
            ),
            Refusal::MetricsBadRequest => (
                "Prometheus requests dropped: too large, too slow, or the answer was not read",
                "point only Prometheus (GET /metrics) at --metrics-addr",
            ),
        };
        format!("{n} {what} ({total} in all), latest from {last}: {fix}")
    }
}

/// How loud a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// What kind of thing happened: the one set of names used in log lines (`kind=`),
/// `events.jsonl` and `docs/OUTPUT.md`. Adding a kind is adding a variant; a typo does not
/// compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The bridge started measuring.
    RunStarted,
    /// The run ended (the message says why).
    RunEnded,
    /// The live view's statistics were reset (`r`); saved results still cover the whole run.
    StatsReset,
    /// The remote API answered (at start and after each reconnection).
    SimConnected,
    /// The bridge started the simulation (and will stop it at the end).
    SimStarted,
    /// CoppeliaSim's state changed (running, paused, stopped, unreachable).
    SimState,
    /// Simulation time went back: a new simulation run.
    SimRestarted,
    /// CoppeliaSim stopped answering; collection goes on.
    SimDisconnected,
    /// CoppeliaSim answers again.
    SimReconnected,
    /// The remote API driver gave up (the message says why).
    SimFailed,
    /// The driver's last word: the simulation stopped by the bridge or left as it was.
    SimFinished,
    /// A dummy was seen for the first time.
    DummyRegistered,
    /// A STAMP came before any HELLO (the bridge started after the simulation).
    DummyUnannounced,
    /// A dummy's state changed (active, idle, ended).
    DummyState,
    /// A dummy said goodbye (BYE), with its own counts.
    DummyBye,
    /// A dummy restarted its seq or simulation time, or announced itself again.
    SessionStarted,
    /// Two sources speak for one dummy id.
    DuplicateId,
    /// A dummy now sends from another address (its old one had gone quiet).
    SourceChanged,
    /// Messages of a dummy were found lost since the previous snapshot.
    Loss,
    /// A dummy's 1 s RTF left the tolerance band around the target.
    OffTarget,
    /// A dummy's 1 s RTF came back inside the tolerance band.
    BackOnTarget,
    /// Latencies were rejected as negative or implausible (clocks disagree).
    ClockWarning,
    /// Messages from a source were rejected (malformed, duplicate id, ...).
    Rejected,
    /// The kernel dropped datagrams for lack of receive buffer.
    KernelDrops,
    /// Traffic from outside `--allow` was dropped before parsing (counted in `refused`).
    OutsideAllow,
    /// A limit turned something away: `--max-dummies`, a connection cap, the sessions or
    /// sources kept (counted in `refused`).
    LimitReached,
    TcpOpened,
    TcpClosed,
    /// Anything else worth a line.
    Info,
    Warning,
    Error,
    /// A kind written by a newer version; kept readable.
    #[serde(other)]
    Other,
}

impl EventKind {
    /// Every kind, in documentation order.
    pub const ALL: [EventKind; 32] = [
        EventKind::RunStarted,
        EventKind::RunEnded,
        EventKind::StatsReset,
        EventKind::SimConnected,
        EventKind::SimStarted,
        EventKind::SimState,
        EventKind::SimRestarted,
        EventKind::SimDisconnected,
        EventKind::SimReconnected,
        EventKind::SimFailed,
        EventKind::SimFinished,
        EventKind::DummyRegistered,
        EventKind::DummyUnannounced,
        EventKind::DummyState,
        EventKind::DummyBye,
        EventKind::SessionStarted,
        EventKind::DuplicateId,
        EventKind::SourceChanged,
        EventKind::Loss,
        EventKind::OffTarget,
        EventKind::BackOnTarget,
        EventKind::ClockWarning,
        EventKind::Rejected,
        EventKind::KernelDrops,
        EventKind::OutsideAllow,
        EventKind::LimitReached,
        EventKind::TcpOpened,
        EventKind::TcpClosed,
        EventKind::Info,
        EventKind::Warning,
        EventKind::Error,
        EventKind::Other,
    ];

    /// The snake_case name, as in `events.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "run_started",
            EventKind::RunEnded => "run_ended",
            EventKind::StatsReset => "stats_reset",
            EventKind::SimConnected => "sim_connected",
            EventKind::SimStarted => "sim_started",
            EventKind::SimState => "sim_state",
            EventKind::SimRestarted => "sim_restarted",
            EventKind::SimDisconnected => "sim_disconnected",
            EventKind::SimReconnected => "sim_reconnected",
            EventKind::SimFailed => "sim_failed",
            EventKind::SimFinished => "sim_finished",
            EventKind::DummyRegistered => "dummy_registered",
            EventKind::DummyUnannounced => "dummy_unannounced",
            EventKind::DummyState => "dummy_state",
            EventKind::DummyBye => "dummy_bye",
            EventKind::SessionStarted => "session_started",
            EventKind::DuplicateId => "duplicate_id",
            EventKind::SourceChanged => "source_changed",
            EventKind::Loss => "loss",
            EventKind::OffTarget => "off_target",
            EventKind::BackOnTarget => "back_on_target",
            EventKind::ClockWarning => "clock_warning",
            EventKind::Rejected => "rejected",
            EventKind::KernelDrops => "kernel_drops",
            EventKind::OutsideAllow => "outside_allow",
            EventKind::LimitReached => "limit_reached",
            EventKind::TcpOpened => "tcp_opened",
            EventKind::TcpClosed => "tcp_closed",
            EventKind::Info => "info",
            EventKind::Warning => "warning",
            EventKind::Error => "error",
            EventKind::Other => "other",
        }
    }

    /// How loud a notice of this kind is in the log.
    pub fn level(self) -> Level {
        use EventKind::*;
        match self {
            SimFailed | Error => Level::Error,
            SimRestarted | SimDisconnected | SimReconnected | DummyUnannounced | SessionStarted
            | DuplicateId | SourceChanged | Loss | OffTarget | ClockWarning | Rejected
            | KernelDrops | OutsideAllow | LimitReached | Warning => Level::Warn,
            _ => Level::Info,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something worth telling the user and writing to `events.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: EventKind,
    /// The dummy concerned, if any.
    pub dummy: Option<u32>,
    pub message: String,
}

impl Notice {
    /// A notice; control and bidirectional-override characters in `message` (which may quote
    /// received bytes: a name, an error text) are written as `\u{..}` escapes, so one notice
    /// is one log line and no sender can move the cursor or recolour a terminal.
    pub fn new(kind: EventKind, dummy: Option<u32>, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.chars().any(is_unsafe_char) {
            message = message
                .chars()
                .map(|c| {
                    if is_unsafe_char(c) {
                        c.escape_unicode().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
        }
        Self {
            kind,
            dummy,
            message,
        }
    }

    pub fn level(&self) -> Level {
        self.kind.level()
    }
}

/// Characters that must not reach a terminal or a line-based log raw: C0/C1 controls (escape
/// sequences, line breaks) and the bidirectional overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069) that reorder what is displayed (CVE-2021-42574, "Trojan Source").
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`is_unsafe_char`] replaced by U+FFFD (for names: they are shown, not
/// quoted).
pub fn displayable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_unsafe_char) {
        text.chars()
            .map(|c| if is_unsafe_char(c) { '\u{fffd}' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(port: u16) -> Source {
        Source::Udp(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn a_batch_gives_back_what_was_pushed_in_order() {
        let mut b = ArrivalBatch::with_capacity(4, 64);
        let payloads: [&[u8]; 3] = [b"ab", b"", b"cdef"];
        for (i, p) in payloads.iter().enumerate() {
            b.push(Arrival {
                source: src(1000 + i as u16),
                payload: p,
                kernel_ns: (i != 1).then_some(i as i64 * 10),
                read_ns: 100 + i as i64,
                truncated: i == 2,
            });
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.payload_bytes(), 6);
        let back: Vec<_> = b.iter().collect();
        assert_eq!(back[0].payload, b"ab");
        assert_eq!(back[1].payload, b"");
        assert_eq!(back[2].payload, b"cdef");
        assert_eq!(back[1].source, src(1001));
        assert_eq!(back[1].recv_ns(), 101, "no kernel stamp: read time");
        assert_eq!(back[2].recv_ns(), 20);
        assert!(back[2].truncated);
        let cap = b.items.capacity();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.iter().count(), 0);
        assert_eq!(b.items.capacity(), cap, "clear keeps the allocation");
    }

    #[test]
    fn kind_names_are_the_serde_names_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert!(seen.insert(k.as_str()), "duplicate name {k}");
        }
        let unknown: EventKind = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, EventKind::Other);
    }

    #[test]
    fn notices_never_carry_raw_control_characters() {
        let n = Notice::new(EventKind::Rejected, None, "name \u{1b}[2J\nx\u{202e}y é");
        assert_eq!(n.message, "name \\u{1b}[2J\\u{a}x\\u{202e}y é");
        let plain = Notice::new(EventKind::Info, None, "nothing to escape: µs, ±");
        assert_eq!(plain.message, "nothing to escape: µs, ±");
        assert_eq!(displayable("a\u{7}b\u{2066}c"), "a\u{fffd}b\u{fffd}c");
        assert!(matches!(
            displayable("Dummy0"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn refusals_name_their_counter_kind_and_fix() {
        let last: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let m = Refusal::UdpOutsideAllow.message(3, 10, last);
        assert!(
            m.contains("3 UDP datagrams") && m.contains("10 in all"),
            "{m}"
        );
        assert!(m.contains("192.0.2.1:9") && m.contains("--allow"), "{m}");
        assert_eq!(Refusal::TcpOverConnCap.kind(), EventKind::LimitReached);
        assert_eq!(
            Refusal::MetricsOutsideAllow.as_str(),
            "metrics_outside_allow"
        );
        assert!(TcpCloseCause::IdleTimeout
            .to_string()
            .contains("--tcp-idle-timeout"));
    }

    #[test]
    fn levels() {
        assert_eq!(EventKind::Rejected.level(), Level::Warn);
        assert_eq!(EventKind::DummyRegistered.level(), Level::Info);
        assert_eq!(EventKind::SimFailed.level(), Level::Error);
        assert_eq!(
            Notice::new(EventKind::Loss, Some(1), "x").level(),
            Level::Warn
        );
    }
}
