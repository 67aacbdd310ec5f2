//! The aggregator: the one owner of metric state.
//!
//! Receivers send it [`Arrival`]s and [`ReceiverStatus`] events; it classifies each payload (v1, legacy, garbage),
//! routes it to the dummy's [`DummyMetrics`], counts rejects per source, and says what to
//! answer (ECHO), what to record (raw sample rows) and what to tell the user (notices).
//! Pure: the current time is passed in.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::{
    DummyInfo, DummyMetrics, DummyTable, LatencyHistogram, MetricsConfig, RecvClock, RunSnapshot,
    Sample, SessionRecord, SimSnapshot, SourceErrors, Transport,
};
use crate::event::{Arrival, EventKind, Notice, ReceiverStatus, Source};
use crate::time::UnixNanos;
use crate::wire::{classify, flags, Datagram, Echo, Hello, Message, Stamp, NO_RTT};

/// Rejected datagrams from one source are logged individually up to this many per window.
const REJECT_LOG_BURST: u32 = 5;
/// Length of the reject-log window.
const REJECT_LOG_WINDOW_NS: i64 = 10_000_000_000;
/// A dummy's source that has been silent this long may be replaced by another address
/// without a HELLO (a restarted script whose HELLO was lost); before that, a second address
/// sending for the same id is a second script with the same id.
const OWNER_QUIET_NS: i64 = 2_000_000_000;

/// One accepted STAMP or legacy time, as written to `samples/<dummy>.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRecord {
    pub dummy_id: u32,
    pub session: u32,
    pub transport: Transport,
    pub sample: Sample,
    /// Receive − sender wall time, µs (raw, may be negative); `None` for legacy.
    pub latency_us: Option<f64>,
    /// Excluded from the summary (warm-up or before all expected dummies arrived).
    pub excluded: bool,
}

/// What handling one event produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// A datagram or frame payload to send back (ECHO).
    pub reply: Option<(Source, Vec<u8>)>,
    pub record: Option<SampleRecord>,
    pub notices: Vec<Notice>,
}

impl Outcome {
    fn notice(&mut self, kind: EventKind, dummy: Option<u32>, message: String) {
        self.notices.push(Notice::new(kind, dummy, message));
    }

    /// Whether this outcome registered a dummy seen for the first time.
    pub fn registered_new_dummy(&self) -> bool {
        self.notices
            .iter()
            .any(|n| n.kind == EventKind::DummyRegistered)
    }
}

/// The source that speaks for a v1 dummy id, and when it last did.
#[derive(Debug, Clone, Copy)]
struct Owner {
    source: Source,
    last_ns: UnixNanos,
}

/// How messages of one dummy id are routed.
#[derive(Debug, Clone, Copy, Default)]
struct Route {
    owner: Option<Owner>,
    /// Its HELLO asked for ECHOs.
    echo: bool,
}

#[derive(Debug, Clone, Default)]
struct RejectLog {
    window_start_ns: UnixNanos,
    logged: u32,
    suppressed: u64,
}

/// Owner of every dummy's statistics.
#[derive(Debug, Clone)]
pub struct Aggregator {
    cfg: MetricsConfig,
    /// When the bridge started; `elapsed_s` counts from here.
    started_ns: UnixNanos,
    /// Every dummy: its route (owner, ECHO wish) and its statistics.
    dummies: DummyTable<Route>,
    legacy_sources: HashMap<SocketAddr, u32>,
    rejected: BTreeMap<String, SourceErrors>,
    reject_log: HashMap<String, RejectLog>,
    sessions: Vec<SessionRecord>,
    recv_clock: RecvClock,
    kernel_drops: Option<u64>,
    /// Read − kernel receive time of every kernel-stamped message (docs/METRICS.md).
    backlog: LatencyHistogram,
    sim: Option<SimSnapshot>,
}

impl Aggregator {
    pub fn new(cfg: MetricsConfig) -> Self {
        Self {
            started_ns: cfg.run_start_ns,
            cfg,
            dummies: DummyTable::default(),
            legacy_sources: HashMap::new(),
            rejected: BTreeMap::new(),
            reject_log: HashMap::new(),
            sessions: Vec::new(),
            recv_clock: RecvClock::User,
            kernel_drops: None,
            backlog: LatencyHistogram::new(),
            sim: None,
        }
    }

    pub fn config(&self) -> &MetricsConfig {
        &self.cfg
    }

    /// Moves the start of measurement (e.g. once all expected dummies have arrived):
    /// samples before `start + warm-up` are excluded from the summary.
    pub fn set_measurement_start(&mut self, start_ns: UnixNanos) {
        self.cfg.run_start_ns = start_ns;
    }

    /// Ids of every dummy seen so far.
    pub fn dummy_ids(&self) -> Vec<u32> {
        self.dummies.ids().collect()
    }

    /// Per dummy (in id order): newest simulation time, and whether it said BYE. Cheap:
    /// what the stop rules need between snapshots.
    pub fn progress(&self, out: &mut Vec<(Option<f64>, bool)>) {
        out.clear();
        out.extend(self.dummies.iter().map(DummyMetrics::progress));
    }

    /// Whether any dummy asked for ECHOs (its script measures round trips).
    pub fn echo_wanted(&self) -> bool {
        self.dummies.routes().any(|r| r.echo)
    }

    /// Earlier sessions (a dummy restarted).
    pub fn sessions(&self) -> &[SessionRecord] {
        &self.sessions
    }

    /// Latest simulation-wide figures from the remote API.
    pub fn set_sim(&mut self, sim: Option<SimSnapshot>) {
        self.sim = sim;
    }

    /// Clears every dummy's statistics (live view `r`).
    pub fn reset(&mut self, now_ns: UnixNanos) {
        self.backlog.reset();
        for d in self.dummies.iter_mut() {
            d.reset(now_ns);
        }
    }

    /// Handles one receiver status event at wall time `now_ns`.
    pub fn status(&mut self, ev: &ReceiverStatus, now_ns: UnixNanos) -> Outcome {
        let mut out = Outcome::default();
        match ev {
            ReceiverStatus::TcpOpened { source } => {
                out.notice(
                    EventKind::TcpOpened,
                    None,
                    format!("TCP connection from {source}"),
                );
            }
            ReceiverStatus::TcpClosed {
                source,
                reason,
                lost_partial_bytes,
            } => {
                let lost = if *lost_partial_bytes > 0 {
                    format!(" ({lost_partial_bytes} bytes of an unfinished frame discarded)")
                } else {
                    String::new()
                };
                out.notice(
                    EventKind::TcpClosed,
                    None,
                    format!("TCP connection {source} closed: {reason}{lost}"),
                );
            }
            ReceiverStatus::TcpFrameError { source, error } => {
                self.reject(*source, "frame_error", error, now_ns, &mut out);
            }
            &ReceiverStatus::KernelDrops(n) => {
                let before = self.kernel_drops.replace(n).unwrap_or(0);
                if n > before {
                    out.notice(
                        EventKind::KernelDrops,
                        None,
                        format!(
                            "the kernel dropped {} for lack of receive buffer ({n} in all): raise --recv-buffer or net.core.rmem_max",
                            crate::output::format::count(n - before, "datagram")
                        ),
                    );
                }
            }
        }
        out
    }

    /// The prefetch plan of `batch` (see `metrics::table`), into `slots`.
    pub fn prefetch_plan(&self, batch: &crate::event::ArrivalBatch, slots: &mut Vec<usize>) {
        self.dummies.slots_of(batch, slots);
    }

    /// Before handling arrival `i` of a planned batch: hints the CPU to load the state of
    /// the next dummies. The same results, fewer stalls.
    pub fn prefetch_ahead(&self, slots: &[usize], i: usize) {
        self.dummies.prefetch_ahead(slots, i);
    }

    /// Handles one received message at wall time `now_ns`: classifies it (v1, legacy,
    /// garbage) and routes it to its dummy.
    pub fn arrival(&mut self, m: Arrival<'_>, now_ns: UnixNanos) -> Outcome {
        let mut out = Outcome::default();
        self.on_message(&m, now_ns, &mut out);
        out
    }

    fn on_message(&mut self, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        if m.truncated {
            return self.reject(
                m.source,
                "oversized",
                "datagram longer than 2048 bytes",
                now_ns,
                out,
            );
        }
        if let Some(kernel_ns) = m.kernel_ns {
            if let Source::Udp(_) = m.source {
                self.recv_clock = RecvClock::Kernel;
            }
            // Negative only if the two clocks were read inconsistently: then unknown, not 0.
            self.backlog
                .record(m.read_ns.saturating_sub(kernel_ns) as f64 / 1e3);
        }
        let registered = matches!(m.source, Source::Udp(a) if self.legacy_sources.contains_key(&a));
        match classify(m.payload, registered) {
            Datagram::V1(Message::Hello(h)) => self.on_hello(h, m, now_ns, out),
            Datagram::V1(Message::Stamp(s)) => self.on_stamp(s, m, now_ns, out),
            Datagram::V1(Message::Bye(b)) => {
                if !self.claim(b.dummy_id, m, now_ns, out) {
                    return;
                }
                if let Some(d) = self.dummies.get_mut(b.dummy_id) {
                    d.on_bye(&b, now_ns);
                    out.notice(
                        EventKind::DummyBye,
                        Some(b.dummy_id),
                        format!(
                            "{} said goodbye: {} sent, {}, {}",
                            d.info().name,
                            crate::output::format::count(b.stamps_sent.into(), "stamp"),
                            crate::output::format::count(b.send_errors.into(), "send error"),
                            crate::output::format::count(b.echoes_received.into(), "echo")
                        ),
                    );
                }
            }
            Datagram::V1(Message::Echo(_)) => {
                self.reject(
                    m.source,
                    "unexpected_echo",
                    "ECHO is sent by the bridge, not to it",
                    now_ns,
                    out,
                );
            }
            Datagram::LegacyRegister(id) => self.on_legacy_register(id, m, now_ns, out),
            Datagram::LegacyTime(t) => self.on_legacy_time(t, m, now_ns, out),
            other => {
                let label = other.reject_label().unwrap_or("unrecognised");
                let detail = match &other {
                    Datagram::BadV1(e) => e.to_string(),
                    Datagram::LegacyUnregistered => {
                        "8-byte legacy time from an address that never sent its id".into()
                    }
                    Datagram::BadLegacyTime => "legacy time is NaN or infinite".into(),
                    _ => format!("{} bytes in no known format", m.payload.len()),
                };
                self.reject(m.source, label, &detail, now_ns, out);
            }
        }
    }

    fn transport_of(source: Source) -> Transport {
        match source {
            Source::Udp(_) => Transport::Udp,
            Source::Tcp { .. } => Transport::Tcp,
        }
    }

    fn on_hello(&mut self, h: Hello, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        let at = m.recv_ns();
        let route = &mut self.dummies.slot_or_default(h.dummy_id).route;
        let previous = route.owner.replace(Owner {
            source: m.source,
            last_ns: at,
        });
        route.echo = h.flags & flags::ECHO != 0;
        if let Some(old) =
            previous.filter(|o| o.source != m.source && at - o.last_ns < OWNER_QUIET_NS)
        {
            out.notice(
                EventKind::DuplicateId,
                Some(h.dummy_id),
                format!(
                    "dummy {} announced itself from {} while {} still sends for it: two scripts with the same id? \
                     Give each dummy a unique alias number or id{{N}} in its extension string",
                    h.dummy_id, m.source, old.source
                ),
            );
        }
        let info = DummyInfo {
            id: h.dummy_id,
            name: h.name.clone(),
            transport: Self::transport_of(m.source),
            dt_s: Some(h.dt_s),
            source: m.source.addr().to_string(),
        };
        self.register(info, now_ns, out);
    }

    fn register(&mut self, info: DummyInfo, now_ns: UnixNanos, out: &mut Outcome) {
        let id = info.id;
        let text = format!(
            "{} (id {id}, {}) registered from {}",
            info.name, info.transport, info.source
        );
        match self.dummies.get_mut(id) {
            Some(d) => {
                if let Some(old) = d.on_hello(info, now_ns) {
                    out.notice(
                        EventKind::SessionStarted,
                        Some(id),
                        format!(
                            "dummy {id} announced itself again: session {} begins",
                            old.session + 1
                        ),
                    );
                    self.sessions.push(old);
                }
            }
            None => {
                self.dummies.insert(id, DummyMetrics::new(info, &self.cfg));
                out.notice(EventKind::DummyRegistered, Some(id), text);
            }
        }
    }

    /// Whether `source` may speak for v1 dummy `id` now; adopts it when the id is new or its
    /// previous source has gone quiet. A second active source is rejected and named.
    fn claim(&mut self, id: u32, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) -> bool {
        let at = m.recv_ns();
        let owner = &mut self.dummies.slot_or_default(id).route.owner;
        match owner {
            Some(o) if o.source == m.source => o.last_ns = at,
            Some(o) if at - o.last_ns < OWNER_QUIET_NS => {
                let detail = format!(
                    "dummy {id} already sends from {}: two scripts share id {id}; give each dummy a unique \
                     alias number or id{{N}} in its extension string",
                    o.source
                );
                self.reject(m.source, "duplicate_id", &detail, now_ns, out);
                return false;
            }
            Some(o) => {
                out.notice(
                    EventKind::SourceChanged,
                    Some(id),
                    format!(
                        "dummy {id} now sends from {} (was {}, silent since)",
                        m.source, o.source
                    ),
                );
                *o = Owner {
                    source: m.source,
                    last_ns: at,
                };
            }
            None => {
                *owner = Some(Owner {
                    source: m.source,
                    last_ns: at,
                });
            }
        }
        true
    }

    fn on_stamp(&mut self, s: Stamp, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        if !self.claim(s.dummy_id, m, now_ns, out) {
            return;
        }
        if !self.dummies.contains(s.dummy_id) {
            // The bridge started after the scene: accept the dummy without its HELLO.
            let info = DummyInfo {
                id: s.dummy_id,
                name: format!("Dummy{}", s.dummy_id),
                transport: Self::transport_of(m.source),
                dt_s: None,
                source: m.source.addr().to_string(),
            };
            out.notice(
                EventKind::DummyUnannounced,
                Some(s.dummy_id),
                format!("STAMP from dummy {} before any HELLO (bridge started after the simulation?): accepted without its name and dt", s.dummy_id),
            );
            self.register(info, now_ns, out);
        }
        let sample = Sample {
            seq: Some(s.seq),
            step: Some(s.step),
            sim_time_s: s.sim_time_s,
            sent_unix_ns: Some((s.sent_unix_s * 1e9).round() as UnixNanos),
            recv_unix_ns: m.recv_ns(),
            read_unix_ns: m.read_ns,
            recv_clock: recv_clock(m),
            rtt_us: (s.rtt_us != NO_RTT).then_some(s.rtt_us),
        };
        self.record(s.dummy_id, sample, out);
        if self
            .dummies
            .slot_mut(s.dummy_id)
            .is_some_and(|slot| slot.route.echo)
        {
            let echo = Message::Echo(Echo {
                dummy_id: s.dummy_id,
                seq: s.seq,
                sent_unix_s: s.sent_unix_s,
                bridge_recv_unix_s: m.recv_ns() as f64 / 1e9,
                bridge_send_unix_s: now_ns as f64 / 1e9,
            });
            out.reply = Some((m.source, echo.encode()));
        }
    }

    fn record(&mut self, id: u32, sample: Sample, out: &mut Outcome) {
        let Some(d) = self.dummies.get_mut(id) else {
            return;
        };
        let r = d.record(&sample, &self.cfg);
        if let Some(old) = r.new_session {
            out.notice(
                EventKind::SessionStarted,
                Some(id),
                format!(
                    "{} restarted ({}): session {} begins",
                    d.info().name,
                    old.reason,
                    old.session + 1
                ),
            );
            self.sessions.push(old);
        }
        if let Some(w) = r.clock_warning {
            out.notice(
                EventKind::ClockWarning,
                Some(id),
                format!("{}: clocks disagree: {w}", d.info().name),
            );
        }
        out.record = Some(SampleRecord {
            dummy_id: id,
            session: d.session(),
            transport: d.info().transport,
            sample,
            latency_us: sample
                .sent_unix_ns
                .map(|sent| sample.recv_unix_ns.saturating_sub(sent) as f64 / 1e3),
            excluded: r.excluded_warmup,
        });
    }

    fn on_legacy_register(
        &mut self,
        id: u32,
        m: &Arrival<'_>,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        let Source::Udp(addr) = m.source else {
            return self.reject(
                m.source,
                "legacy_over_tcp",
                "the notebook format is UDP only",
                now_ns,
                out,
            );
        };
        // A script restarted on a new port: forget its old address.
        self.legacy_sources.retain(|_, v| *v != id);
        self.legacy_sources.insert(addr, id);
        let info = DummyInfo {
            id,
            name: format!("Dummy{id}"),
            transport: Transport::LegacyUdp,
            dt_s: None,
            source: addr.to_string(),
        };
        self.register(info, now_ns, out);
    }

    fn on_legacy_time(&mut self, t: f64, m: &Arrival<'_>, _now_ns: UnixNanos, out: &mut Outcome) {
        let Source::Udp(addr) = m.source else { return };
        let Some(&id) = self.legacy_sources.get(&addr) else {
            return;
        };
        let sample = Sample {
            seq: None,
            step: None,
            sim_time_s: t,
            sent_unix_ns: None,
            recv_unix_ns: m.recv_ns(),
            read_unix_ns: m.read_ns,
            recv_clock: recv_clock(m),
            rtt_us: None,
        };
        self.record(id, sample, out);
    }

    /// Counts a rejected message against its source; logs it, rate-limited per source.
    fn reject(
        &mut self,
        source: Source,
        label: &str,
        detail: &str,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        let key = source.to_string();
        let e = self
            .rejected
            .entry(key.clone())
            .or_insert_with(|| SourceErrors {
                source: key.clone(),
                total: 0,
                by_reason: BTreeMap::new(),
            });
        e.total += 1;
        *e.by_reason.entry(label.to_owned()).or_default() += 1;
        let log = self.reject_log.entry(key).or_default();
        if now_ns - log.window_start_ns >= REJECT_LOG_WINDOW_NS {
            let suppressed = std::mem::take(&mut log.suppressed);
            *log = RejectLog {
                window_start_ns: now_ns,
                logged: 0,
                suppressed: 0,
            };
            if suppressed > 0 {
                out.notice(
                    EventKind::Rejected,
                    None,
                    format!(
                        "{source}: {suppressed} more rejected messages not logged individually"
                    ),
                );
            }
        }
        if log.logged < REJECT_LOG_BURST {
            log.logged += 1;
            out.notice(
                EventKind::Rejected,
                None,
                format!("{source}: rejected ({label}): {detail}"),
            );
        } else {
            log.suppressed += 1;
        }
    }

    /// Everything, now.
    pub fn snapshot(&self, now_ns: UnixNanos) -> RunSnapshot {
        RunSnapshot {
            elapsed_s: (now_ns - self.started_ns) as f64 / 1e9,
            taken_unix_s: now_ns as f64 / 1e9,
            recv_clock: self.recv_clock,
            kernel_drops: self.kernel_drops,
            backlog: self.backlog.stats(),
            latency: self.run_latency(),
            dummies: self
                .dummies
                .iter()
                .map(|d| d.snapshot(now_ns, &self.cfg))
                .collect(),
            rejected: self.rejected.values().cloned().collect(),
            sim: self.sim.clone(),
        }
    }
}

impl Aggregator {
    /// Every dummy's latency distribution merged.
    fn run_latency(&self) -> Option<crate::metrics::LatencyStats> {
        let mut all = LatencyHistogram::new();
        for d in self.dummies.iter() {
            all.merge(d.latency());
        }
        all.stats()
    }
}

/// Which clock stamped `m`'s arrival.
fn recv_clock(m: &Arrival<'_>) -> RecvClock {
    if m.kernel_ns.is_some() {
        RecvClock::Kernel
    } else {
        RecvClock::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Bye, NO_SEQ};

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;

    fn udp(port: u16) -> Source {
        Source::Udp(([127, 0, 0, 1], port).into())
    }

    /// A message kernel-stamped at `t`, read 20 µs later.
    struct Msg {
        source: Source,
        payload: Vec<u8>,
        t: i64,
    }

    fn msg(source: Source, payload: Vec<u8>, t: i64) -> Msg {
        Msg { source, payload, t }
    }

    trait Handle {
        fn handle(&mut self, m: Msg, now_ns: i64) -> Outcome;
    }

    impl Handle for Aggregator {
        fn handle(&mut self, m: Msg, now_ns: i64) -> Outcome {
            self.arrival(
                Arrival {
                    source: m.source,
                    payload: &m.payload,
                    kernel_ns: Some(m.t),
                    read_ns: m.t + 20_000,
                    truncated: false,
                },
                now_ns,
            )
        }
    }

    fn hello(id: u32, flags: u16) -> Vec<u8> {
        Message::Hello(Hello {
            dummy_id: id,
            dt_s: 0.05,
            script_version: 1,
            flags,
            name: format!("Dummy{id}"),
        })
        .encode()
    }

    fn stamp(id: u32, seq: u32, sent_ns: i64) -> Vec<u8> {
        Message::Stamp(Stamp {
            dummy_id: id,
            seq,
            step: seq,
            sim_time_s: f64::from(seq) * 0.05,
            sent_unix_s: sent_ns as f64 / 1e9,
            rtt_us: NO_RTT,
        })
        .encode()
    }

    fn agg() -> Aggregator {
        Aggregator::new(MetricsConfig {
            run_start_ns: T0,
            ..MetricsConfig::default()
        })
    }

    fn kinds(o: &Outcome) -> Vec<&'static str> {
        o.notices.iter().map(|n| n.kind.as_str()).collect()
    }

    #[test]
    fn v1_dummy_is_registered_recorded_and_echoed_only_on_request() {
        let mut a = agg();
        let o = a.handle(msg(udp(1000), hello(3, 0), T0), T0);
        assert_eq!(kinds(&o), ["dummy_registered"]);
        let o = a.handle(
            msg(udp(1000), stamp(3, 0, T0 + S), T0 + S + 150_000),
            T0 + S,
        );
        let r = o.record.expect("a sample row");
        assert_eq!((r.dummy_id, r.session, r.transport), (3, 0, Transport::Udp));
        assert_eq!(r.latency_us, Some(150.0), "kernel receive − sender wall");
        assert!(o.reply.is_none(), "no ECHO unless HELLO asked");

        a.handle(msg(udp(2000), hello(4, flags::ECHO), T0), T0);
        let o = a.handle(msg(udp(2000), stamp(4, 0, T0 + S), T0 + S), T0 + S + 1);
        let (to, bytes) = o.reply.expect("ECHO");
        assert_eq!(to, udp(2000));
        let Ok(Message::Echo(e)) = Message::decode(&bytes) else {
            panic!("not an ECHO")
        };
        assert_eq!((e.dummy_id, e.seq), (4, 0));
        assert_eq!(a.dummy_ids(), vec![3, 4]);
    }

    #[test]
    fn stamp_without_hello_registers_the_dummy_with_a_warning() {
        let mut a = agg();
        let o = a.handle(msg(udp(1000), stamp(7, 5, T0), T0), T0);
        assert_eq!(kinds(&o), ["dummy_unannounced", "dummy_registered"]);
        assert!(o.record.is_some());
        let snap = a.snapshot(T0);
        assert_eq!(snap.dummies[0].name, "Dummy7");
        assert_eq!(snap.dummies[0].dt_s, None);
    }

    #[test]
    fn legacy_registration_follows_the_address() {
        let mut a = agg();
        a.handle(msg(udp(1000), b"3".to_vec(), T0), T0);
        let o = a.handle(
            msg(udp(1000), 0.05f64.to_le_bytes().to_vec(), T0 + S),
            T0 + S,
        );
        let r = o.record.expect("legacy time recorded");
        assert_eq!(
            (r.transport, r.sample.seq, r.latency_us),
            (Transport::LegacyUdp, None, None)
        );
        let o = a.handle(
            msg(udp(1001), 0.05f64.to_le_bytes().to_vec(), T0 + S),
            T0 + S,
        );
        assert!(o.record.is_none(), "8 bytes from an unregistered address");
        // The script restarts on another port: its old address no longer speaks for it.
        a.handle(msg(udp(1001), b"3".to_vec(), T0 + 2 * S), T0 + 2 * S);
        assert!(a
            .handle(
                msg(udp(1001), 0.1f64.to_le_bytes().to_vec(), T0 + 3 * S),
                T0 + 3 * S
            )
            .record
            .is_some());
        assert!(a
            .handle(
                msg(udp(1000), 0.1f64.to_le_bytes().to_vec(), T0 + 3 * S),
                T0 + 3 * S
            )
            .record
            .is_none());
        let rejected = &a.snapshot(T0 + 3 * S).rejected;
        let reasons: Vec<_> = rejected
            .iter()
            .flat_map(|r| r.by_reason.keys().cloned())
            .collect();
        assert_eq!(reasons, ["legacy_unregistered", "legacy_unregistered"]);
    }

    #[test]
    fn legacy_ids_are_udp_only() {
        let mut a = agg();
        let tcp = Source::Tcp {
            peer: ([127, 0, 0, 1], 5000).into(),
            conn: 1,
        };
        let o = a.handle(msg(tcp, b"3".to_vec(), T0), T0);
        assert_eq!(kinds(&o), ["rejected"]);
        assert!(a.dummy_ids().is_empty());
    }

    #[test]
    fn rejects_are_counted_per_source_and_logged_rate_limited() {
        let mut a = agg();
        let mut logged = 0;
        for i in 0..20 {
            let o = a.handle(
                msg(udp(1000), vec![0xff; 3 + i % 5], T0 + i as i64),
                T0 + i as i64,
            );
            logged += o.notices.len();
        }
        assert_eq!(logged, REJECT_LOG_BURST as usize);
        // The next window first says how many were not logged.
        let o = a.handle(msg(udp(1000), vec![0xff; 3], T0 + 11 * S), T0 + 11 * S);
        assert_eq!(o.notices.len(), 2);
        assert!(
            o.notices[0].message.contains("15 more rejected"),
            "{}",
            o.notices[0].message
        );
        let r = &a.snapshot(T0 + 11 * S).rejected;
        assert_eq!((r.len(), r[0].total), (1, 21));
        assert_eq!(r[0].source, "udp:127.0.0.1:1000");
    }

    #[test]
    fn a_second_script_with_the_same_id_is_rejected_and_named() {
        let mut a = agg();
        a.handle(msg(udp(1000), hello(0, 0), T0), T0);
        let mut dup_notices = Vec::new();
        for k in 0..40u32 {
            let t = T0 + i64::from(k) * S / 20;
            a.handle(msg(udp(1000), stamp(0, k, t), t + 1000), t);
            let o = a.handle(msg(udp(2000), stamp(0, k + 500, t), t + 2000), t);
            dup_notices.extend(
                o.notices
                    .into_iter()
                    .filter(|n| n.message.contains("two scripts share id 0")),
            );
        }
        assert!(!dup_notices.is_empty() && dup_notices.len() <= REJECT_LOG_BURST as usize);
        let snap = a.snapshot(T0 + 2 * S);
        let d = &snap.dummies[0];
        assert_eq!(
            (d.messages, d.session),
            (40, 0),
            "the registered script's statistics are untouched"
        );
        assert_eq!(d.loss.as_ref().unwrap().lost, 0);
        assert_eq!(snap.rejected[0].by_reason.get("duplicate_id"), Some(&40));
        // Once the first source is quiet for 2 s, the other one may take over (restart).
        let t = T0 + 5 * S;
        let o = a.handle(msg(udp(2000), stamp(0, 0, t), t + 2000), t);
        assert!(kinds(&o).contains(&"source_changed"), "{:?}", kinds(&o));
        assert!(o.record.is_some());
    }

    #[test]
    fn a_bye_from_another_source_does_not_end_the_dummy() {
        let mut a = agg();
        a.handle(msg(udp(1000), hello(0, 0), T0), T0);
        a.handle(msg(udp(1000), stamp(0, 0, T0), T0 + 1000), T0);
        let bye = Message::Bye(Bye {
            dummy_id: 0,
            last_seq: NO_SEQ,
            stamps_sent: 0,
            send_errors: 0,
            echoes_received: 0,
        })
        .encode();
        a.handle(msg(udp(2000), bye, T0 + 1000), T0 + 1000);
        assert_ne!(
            a.snapshot(T0 + 2000).dummies[0].state,
            crate::metrics::DummyState::Ended
        );
    }

    #[test]
    fn the_read_backlog_is_the_receivers_over_all_kernel_stamped_messages() {
        let mut a = agg();
        a.handle(msg(udp(1000), hello(0, 0), T0), T0);
        a.handle(msg(udp(1001), hello(1, 0), T0), T0);
        let b = a
            .snapshot(T0)
            .backlog
            .expect("kernel stamps give a backlog");
        // `msg` reads every message 20 µs after its kernel stamp.
        assert_eq!((b.count, b.p50_us, b.max_us), (2, 20.0, 20.0));
        let user = a.arrival(
            Arrival {
                source: udp(1002),
                payload: &hello(2, 0),
                kernel_ns: None,
                read_ns: T0,
                truncated: false,
            },
            T0,
        );
        assert!(user.registered_new_dummy());
        assert_eq!(
            a.snapshot(T0).backlog.unwrap().count,
            2,
            "no stamp, no backlog"
        );
    }

    #[test]
    fn kernel_drops_are_reported_when_they_grow() {
        let mut a = agg();
        assert!(a
            .status(&ReceiverStatus::KernelDrops(0), T0)
            .notices
            .is_empty());
        let o = a.status(&ReceiverStatus::KernelDrops(12), T0);
        assert!(
            o.notices[0].message.contains("dropped 12 datagrams"),
            "{}",
            o.notices[0].message
        );
        assert!(a
            .status(&ReceiverStatus::KernelDrops(12), T0)
            .notices
            .is_empty());
        assert_eq!(a.snapshot(T0).kernel_drops, Some(12));
    }
}
