//! The aggregator: the one owner of metric state.
//!
//! Receivers send it [`Arrival`]s and [`ReceiverStatus`] events; it classifies each payload
//! (v1, legacy, garbage), routes it to the dummy's [`DummyMetrics`], counts rejects per
//! source, and says what to answer (ECHO), what to record (raw sample rows) and what to tell
//! the user (notices). Pure: the current time is passed in.
//!
//! Outside input cannot grow its memory or its log without bound (docs/RELIABILITY.md):
//! dummy ids stop at [`Admission::max_dummies`], the per-source reject table at
//! [`MAX_REJECT_SOURCES`], earlier sessions at [`MAX_SESSIONS_KEPT`], the legacy address
//! table at one address per dummy; notices that can repeat are rate-limited per kind
//! ([`NOTICE_BURST`] per 10 s) and rejects also per source. Each id is pinned to the host
//! that first sent for it unless [`Admission::allow_roaming`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rustc_hash::FxHashMap;

use super::{
    DummyInfo, DummyMetrics, DummyTable, LatencyHistogram, MetricsConfig, RecvClock, RefusedCounts,
    RunSnapshot, Sample, SessionRecord, SimSnapshot, SourceErrors, Transport,
};
use crate::event::{
    displayable, Arrival, EventKind, Notice, ReceiverStatus, Refusal, Source, TcpCloseCause,
};
use crate::time::UnixNanos;
use crate::wire::{classify, flags, Clock, Datagram, Echo, Hello, Message, Stamp, NO_RTT};

/// Rejected datagrams from one source are logged individually up to this many per window.
const REJECT_LOG_BURST: u32 = 5;
/// Length of every log rate-limiting window.
const LOG_WINDOW_NS: i64 = 10_000_000_000;
/// Notices of one kind logged per window (kinds that outside input can repeat at will; a
/// `dummy_registered` happens once per id and is not limited). 100 per 10 s keeps a
/// restart of a few dozen dummies fully logged, and an attack to 10 lines a second per kind.
pub const NOTICE_BURST: u32 = 100;
/// A dummy's source that has been silent this long may be replaced by another address of
/// the same host without a HELLO (a restarted script whose HELLO was lost); before that, a
/// second address sending for the same id is a second script with the same id.
const OWNER_QUIET_NS: i64 = 2_000_000_000;
/// Default `--max-dummies`. The memory goal is at most 32 KiB per dummy, measured at 10,000
/// dummies (docs/PERFORMANCE.md): 10,000 is the largest count that goal was measured at, so
/// a flood of invented ids costs at most about 320 MiB, and 10 times the 1,000 dummies the
/// receive buffer is sized for.
pub const DEFAULT_MAX_DUMMIES: usize = 10_000;
/// Sources the per-source reject table keeps; rejects from further sources are counted in
/// one `(other sources)` row. A spoofed-source flood would otherwise add a row per datagram.
pub const MAX_REJECT_SOURCES: usize = 1024;
/// Earlier sessions kept for `summary.json` (one restart each of 10,000 dummies); later ones
/// are counted, not kept. A HELLO flood would otherwise add a snapshot per HELLO.
pub const MAX_SESSIONS_KEPT: usize = 10_000;
/// The `source` of the folded row of the reject table.
pub const FOLDED_SOURCES: &str = "(other sources)";
/// Largest simulation time accepted, s (about 32 years): more is no CoppeliaSim's, and
/// would overflow nanosecond arithmetic downstream.
pub const MAX_SIM_TIME_S: f64 = 1e9;

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

/// How dummy ids are admitted and who may speak for them (`run` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Most dummy ids known at once (`--max-dummies`); messages for more are refused.
    pub max_dummies: usize,
    /// `--allow-roaming`: another host may take over an id whose source has gone quiet for
    /// 2 s, as before pinning existed. Off: an id belongs, for the whole run, to the host that
    /// first sent for it (another port of that host may still take over, as a restarted
    /// script does).
    pub allow_roaming: bool,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            max_dummies: DEFAULT_MAX_DUMMIES,
            allow_roaming: false,
        }
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
    /// The host the id is pinned to (see [`Admission::allow_roaming`]).
    host: Option<IpAddr>,
}

/// The host of `source` for pinning: its IP, every loopback address being one host.
fn host_of(source: Source) -> IpAddr {
    let ip = source.addr().ip().to_canonical();
    if ip.is_loopback() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

/// One rate-limiting window: how many lines it let through and held back.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    start_ns: UnixNanos,
    used: u32,
    suppressed: u64,
}

impl Window {
    /// Whether one more line fits (`burst` per window) at `now_ns`; and, when this starts a
    /// new window, how many the previous one held back (to be said once).
    fn take(&mut self, now_ns: UnixNanos, burst: u32) -> (bool, u64) {
        let mut held_back = 0;
        if now_ns.saturating_sub(self.start_ns) >= LOG_WINDOW_NS {
            held_back = std::mem::take(&mut self.suppressed);
            self.start_ns = now_ns;
            self.used = 0;
        }
        if self.used < burst {
            self.used += 1;
            (true, held_back)
        } else {
            self.suppressed += 1;
            (false, held_back)
        }
    }
}

/// A row of the reject table: one source, or the folded rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum RejectKey {
    Source(Source),
    Folded,
}

/// Owner of every dummy's statistics.
#[derive(Debug, Clone)]
pub struct Aggregator {
    cfg: MetricsConfig,
    admission: Admission,
    /// When the bridge started; `elapsed_s` counts from here.
    started_ns: UnixNanos,
    /// Every dummy: its route (owner, ECHO wish, host) and its statistics.
    dummies: DummyTable<Route>,
    /// Legacy sender address → dummy id, and back (one address per id, so both stay within
    /// `max_dummies` and a re-registration is O(1)).
    legacy_sources: HashMap<SocketAddr, u32>,
    legacy_ids: FxHashMap<u32, SocketAddr>,
    rejected: BTreeMap<RejectKey, SourceErrors>,
    reject_log: HashMap<RejectKey, Window>,
    /// Per-kind log windows of the notices outside input can repeat.
    kind_log: HashMap<EventKind, Window>,
    /// Per receiver refusal: the total the last logged line reported.
    refusal_logged: HashMap<Refusal, u64>,
    refused: RefusedCounts,
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
            admission: Admission::default(),
            dummies: DummyTable::default(),
            legacy_sources: HashMap::new(),
            legacy_ids: FxHashMap::default(),
            rejected: BTreeMap::new(),
            reject_log: HashMap::new(),
            kind_log: HashMap::new(),
            refusal_logged: HashMap::new(),
            refused: RefusedCounts::default(),
            sessions: Vec::new(),
            recv_clock: RecvClock::User,
            kernel_drops: None,
            backlog: LatencyHistogram::new(),
            sim: None,
        }
    }

    /// The same, admitting ids as `admission` says.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
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

    /// Tells the user, unless `kind` has used its window's lines: then the line is counted
    /// (`refused.notices_suppressed`) and the next window opens with how many were held back.
    /// `message` is only built when the line is logged, so a flood costs no formatting.
    fn say(
        &mut self,
        out: &mut Outcome,
        kind: EventKind,
        dummy: Option<u32>,
        now_ns: UnixNanos,
        message: impl FnOnce() -> String,
    ) {
        if kind == EventKind::DummyRegistered {
            return out.notice(kind, dummy, message());
        }
        let (fits, held_back) = self
            .kind_log
            .entry(kind)
            .or_default()
            .take(now_ns, NOTICE_BURST);
        if held_back > 0 {
            out.notice(
                kind,
                None,
                format!(
                    "{held_back} more {kind} notices were not logged in the last 10 s (rate \
                     limit; every count is in the summary)"
                ),
            );
        }
        if fits {
            out.notice(kind, dummy, message());
        } else {
            self.refused.notices_suppressed += 1;
        }
    }

    /// Handles one receiver status event at wall time `now_ns`.
    pub fn status(&mut self, ev: &ReceiverStatus, now_ns: UnixNanos) -> Outcome {
        let mut out = Outcome::default();
        match ev {
            ReceiverStatus::TcpOpened { source } => {
                let source = *source;
                self.say(&mut out, EventKind::TcpOpened, None, now_ns, || {
                    format!("TCP connection from {source}")
                });
            }
            ReceiverStatus::TcpClosed {
                source,
                cause,
                lost_partial_bytes,
            } => self.on_tcp_closed(*source, cause, *lost_partial_bytes, now_ns, &mut out),
            ReceiverStatus::TcpFrameError { source, error } => {
                self.refused.tcp_frame_errors += 1;
                self.reject(*source, "frame_error", now_ns, &mut out, || {
                    format!("{error}; that connection is closed, others go on")
                });
            }
            &ReceiverStatus::KernelDrops(n) => {
                let before = self.kernel_drops.replace(n).unwrap_or(0);
                if n > before {
                    self.say(&mut out, EventKind::KernelDrops, None, now_ns, || {
                        format!(
                            "the kernel dropped {} for lack of receive buffer ({n} in all): raise --recv-buffer or net.core.rmem_max",
                            crate::output::format::count(n - before, "datagram")
                        )
                    });
                }
            }
            &ReceiverStatus::Refused { what, total, last } => {
                self.on_refused(what, total, last, now_ns, &mut out);
            }
        }
        out
    }

    fn on_tcp_closed(
        &mut self,
        source: Source,
        cause: &TcpCloseCause,
        lost_partial_bytes: usize,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        match cause {
            TcpCloseCause::IdleTimeout => self.refused.tcp_idle_closed += 1,
            TcpCloseCause::SlowFrame => self.refused.tcp_slow_frame_closed += 1,
            _ => {}
        }
        self.say(out, EventKind::TcpClosed, None, now_ns, || {
            let lost = if lost_partial_bytes > 0 {
                format!(" ({lost_partial_bytes} bytes of an unfinished frame discarded)")
            } else {
                String::new()
            };
            format!("TCP connection {source} closed: {cause}{lost}")
        });
    }

    /// A receiver's cumulative refusal count: kept (it only grows), and logged with what
    /// came since the last line that was.
    fn on_refused(
        &mut self,
        what: Refusal,
        total: u64,
        last: SocketAddr,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        let counter = self.refused.of_mut(what);
        if total <= *counter {
            return;
        }
        *counter = total;
        let logged = self.refusal_logged.get(&what).copied().unwrap_or(0);
        let mut said = false;
        self.say(out, what.kind(), None, now_ns, || {
            said = true;
            what.message(total - logged, total, last)
        });
        if said {
            self.refusal_logged.insert(what, total);
        }
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
            return self.reject(m.source, "oversized", now_ns, out, || {
                "datagram longer than 2048 bytes".into()
            });
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
            Datagram::V1(Message::Bye(b)) => self.on_bye(&b, m, now_ns, out),
            Datagram::V1(Message::Clock(c)) => self.on_clock(&c, m, now_ns, out),
            Datagram::V1(Message::Echo(_)) => {
                self.reject(m.source, "unexpected_echo", now_ns, out, || {
                    "ECHO is sent by the bridge, not to it".into()
                });
            }
            Datagram::LegacyRegister(id) => self.on_legacy_register(id, m, now_ns, out),
            Datagram::LegacyTime(t) => self.on_legacy_time(t, m, now_ns, out),
            other => {
                let label = other.reject_label().unwrap_or("unrecognised");
                let len = m.payload.len();
                self.reject(m.source, label, now_ns, out, || match &other {
                    Datagram::BadV1(e) => e.to_string(),
                    Datagram::LegacyUnregistered => {
                        "8-byte legacy time from an address that never sent its id".into()
                    }
                    Datagram::BadLegacyTime => "legacy time is NaN or infinite".into(),
                    _ => format!("{len} bytes in no known format"),
                });
            }
        }
    }

    fn transport_of(source: Source) -> Transport {
        match source {
            Source::Udp(_) => Transport::Udp,
            Source::Tcp { .. } => Transport::Tcp,
        }
    }

    /// Whether a message from `source` may create or use the slot of `id`: known ids always;
    /// new ones while fewer than `--max-dummies` ids are known. Refusals are counted and
    /// logged once per window (not once per source: each invented id may come from a new
    /// one).
    fn admit(&mut self, id: u32, source: Source, now_ns: UnixNanos, out: &mut Outcome) -> bool {
        if self.dummies.has_slot(id) || self.dummies.slot_count() < self.admission.max_dummies {
            return true;
        }
        self.refused.over_max_dummies += 1;
        self.count_reject(source, "max_dummies");
        let max = self.admission.max_dummies;
        self.say(out, EventKind::LimitReached, None, now_ns, || {
            format!(
                "dummy id {id} from {source} refused: --max-dummies {max} ids are known \
                 (raise it if you really have more dummies; each costs up to 32 KiB)"
            )
        });
        false
    }

    /// Whether `source` may speak for `id` as far as pinning goes: refused (counted, logged)
    /// when the id is pinned to another host.
    fn pinned_ok(&mut self, id: u32, source: Source, now_ns: UnixNanos, out: &mut Outcome) -> bool {
        if self.admission.allow_roaming {
            return true;
        }
        let host = host_of(source);
        let Some(pinned) = self
            .dummies
            .slot(id)
            .and_then(|s| s.route.host)
            .filter(|h| *h != host)
        else {
            return true;
        };
        self.refused.id_pinned += 1;
        self.reject(source, "id_pinned", now_ns, out, || {
            format!(
                "dummy {id} belongs to host {pinned} for this run; {source} claims it: refused \
                 (another scene with the same ids, or a spoofed sender). If that dummy really \
                 moved to another host, restart the bridge, or run it with --allow-roaming"
            )
        });
        false
    }

    /// The slot of `id` for a message from `source`, pinned to its host if new; `None` if
    /// admission or pinning refuse it (counted and logged).
    fn route_of(
        &mut self,
        id: u32,
        source: Source,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) -> Option<&mut Route> {
        if !self.admit(id, source, now_ns, out) || !self.pinned_ok(id, source, now_ns, out) {
            return None;
        }
        let route = &mut self.dummies.slot_or_default(id).route;
        route.host.get_or_insert_with(|| host_of(source));
        Some(route)
    }

    fn on_hello(&mut self, h: Hello, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        let at = m.recv_ns();
        let Some(route) = self.route_of(h.dummy_id, m.source, now_ns, out) else {
            return;
        };
        let previous = route.owner.replace(Owner {
            source: m.source,
            last_ns: at,
        });
        route.echo = h.flags & flags::ECHO != 0;
        if let Some(old) =
            previous.filter(|o| o.source != m.source && at - o.last_ns < OWNER_QUIET_NS)
        {
            let (id, new) = (h.dummy_id, m.source);
            self.say(out, EventKind::DuplicateId, Some(id), now_ns, || {
                format!(
                    "dummy {id} announced itself from {new} while {} still sends for it: two scripts with the same id? \
                     Give each dummy a unique alias number or id{{N}} in its extension string",
                    old.source
                )
            });
        }
        let info = DummyInfo {
            id: h.dummy_id,
            name: displayable(&h.name).into_owned(),
            transport: Self::transport_of(m.source),
            dt_s: Some(h.dt_s),
            source: m.source.addr(),
        };
        self.register(info, now_ns, out);
    }

    fn register(&mut self, info: DummyInfo, now_ns: UnixNanos, out: &mut Outcome) {
        let id = info.id;
        match self.dummies.get_mut(id) {
            Some(d) => {
                if let Some(old) = d.on_hello(info, now_ns) {
                    let session = old.session + 1;
                    self.keep_session(old, now_ns, out);
                    self.say(out, EventKind::SessionStarted, Some(id), now_ns, || {
                        format!("dummy {id} announced itself again: session {session} begins")
                    });
                }
            }
            None => {
                let text = format!(
                    "{} (id {id}, {}) registered from {}",
                    info.name, info.transport, info.source
                );
                self.dummies.insert(id, DummyMetrics::new(info, &self.cfg));
                out.notice(EventKind::DummyRegistered, Some(id), text);
            }
        }
    }

    /// Keeps an ended session for `summary.json`, up to [`MAX_SESSIONS_KEPT`].
    fn keep_session(&mut self, old: SessionRecord, now_ns: UnixNanos, out: &mut Outcome) {
        if self.sessions.len() < MAX_SESSIONS_KEPT {
            self.sessions.push(old);
            return;
        }
        self.refused.sessions_not_kept += 1;
        self.say(
            out,
            EventKind::LimitReached,
            Some(old.dummy_id),
            now_ns,
            || {
                format!(
                    "{MAX_SESSIONS_KEPT} earlier sessions are kept; dummy {}'s session {} is \
                 counted (refused.sessions_not_kept) but not kept in summary.json",
                    old.dummy_id, old.session
                )
            },
        );
    }

    /// Whether `source` may speak for v1 dummy `id` now; adopts it when the id is new or its
    /// previous source (of the same host, unless roaming) has gone quiet. A second active
    /// source is rejected and named.
    fn claim(&mut self, id: u32, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) -> bool {
        let at = m.recv_ns();
        let Some(route) = self.route_of(id, m.source, now_ns, out) else {
            return false;
        };
        let owner = &mut route.owner;
        match owner {
            Some(o) if o.source == m.source => o.last_ns = at,
            Some(o) if at - o.last_ns < OWNER_QUIET_NS => {
                let holder = o.source;
                self.reject(m.source, "duplicate_id", now_ns, out, || {
                    format!(
                        "dummy {id} already sends from {holder}: two scripts share id {id}; give each dummy a unique \
                         alias number or id{{N}} in its extension string"
                    )
                });
                return false;
            }
            Some(o) => {
                let (old, new) = (o.source, m.source);
                *o = Owner {
                    source: m.source,
                    last_ns: at,
                };
                self.say(out, EventKind::SourceChanged, Some(id), now_ns, || {
                    format!("dummy {id} now sends from {new} (was {old}, silent since)")
                });
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

    /// [`Self::claim`] for a message that only a registered dummy may send (BYE, CLOCK): an
    /// unknown id is refused as `unknown_dummy`, since claiming it would create a route for an
    /// id nobody registered (memory per datagram).
    fn claim_known(
        &mut self,
        kind: &'static str,
        id: u32,
        m: &Arrival<'_>,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) -> bool {
        if !self.dummies.contains(id) {
            self.reject(m.source, "unknown_dummy", now_ns, out, || {
                format!("{kind} for dummy {id}, which never sent a HELLO or STAMP")
            });
            return false;
        }
        self.claim(id, m, now_ns, out)
    }

    fn on_bye(
        &mut self,
        b: &crate::wire::Bye,
        m: &Arrival<'_>,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        let id = b.dummy_id;
        if !self.claim_known("BYE", id, m, now_ns, out) {
            return;
        }
        let Some(d) = self.dummies.get_mut(id) else {
            return;
        };
        d.on_bye(b, now_ns);
        let name = d.info().name.clone();
        let b = *b;
        self.say(out, EventKind::DummyBye, Some(id), now_ns, || {
            format!(
                "{name} said goodbye: {} sent, {}, {}",
                crate::output::format::count(b.stamps_sent.into(), "stamp"),
                crate::output::format::count(b.send_errors.into(), "send error"),
                crate::output::format::count(b.echoes_received.into(), "echo")
            )
        });
    }

    /// One ECHO exchange's timestamps, for the dummy's clock offset estimate.
    fn on_clock(&mut self, c: &Clock, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        let id = c.dummy_id;
        if !self.claim_known("CLOCK", id, m, now_ns, out) {
            return;
        }
        let Some(Err(e)) = self.dummies.get_mut(id).map(|d| d.on_clock(c)) else {
            return;
        };
        self.reject(m.source, "implausible_clock", now_ns, out, || {
            format!("CLOCK from dummy {id} (seq {}) refused: {e}", c.seq)
        });
    }

    /// A simulation time no CoppeliaSim produces: refused before any statistic sees it.
    fn implausible_time(
        &mut self,
        t: f64,
        source: Source,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) -> bool {
        if (0.0..MAX_SIM_TIME_S).contains(&t) {
            return false;
        }
        self.reject(source, "implausible_sim_time", now_ns, out, || {
            format!("simulation time {t} s is negative or beyond {MAX_SIM_TIME_S} s")
        });
        true
    }

    fn on_stamp(&mut self, s: Stamp, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        if self.implausible_time(s.sim_time_s, m.source, now_ns, out)
            || !self.claim(s.dummy_id, m, now_ns, out)
        {
            return;
        }
        if !self.dummies.contains(s.dummy_id) {
            // The bridge started after the scene: accept the dummy without its HELLO.
            let info = DummyInfo {
                id: s.dummy_id,
                name: format!("Dummy{}", s.dummy_id),
                transport: Self::transport_of(m.source),
                dt_s: None,
                source: m.source.addr(),
            };
            let id = s.dummy_id;
            self.say(out, EventKind::DummyUnannounced, Some(id), now_ns, || {
                format!("STAMP from dummy {id} before any HELLO (bridge started after the simulation?): accepted without its name and dt")
            });
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
        self.record(s.dummy_id, sample, now_ns, out);
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

    fn record(&mut self, id: u32, sample: Sample, now_ns: UnixNanos, out: &mut Outcome) {
        let Some(d) = self.dummies.get_mut(id) else {
            return;
        };
        let r = d.record(&sample, &self.cfg);
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
        if r.new_session.is_none() && r.clock_warning.is_none() {
            return;
        }
        // Only for the notices below, rare: no allocation per message.
        let name = d.info().name.clone();
        if let Some(old) = r.new_session {
            let (reason, session) = (old.reason.clone(), old.session + 1);
            self.keep_session(old, now_ns, out);
            self.say(out, EventKind::SessionStarted, Some(id), now_ns, || {
                format!("{name} restarted ({reason}): session {session} begins")
            });
        }
        if let Some(w) = r.clock_warning {
            self.say(out, EventKind::ClockWarning, Some(id), now_ns, || {
                format!("{name}: clocks disagree: {w}")
            });
        }
    }

    fn on_legacy_register(
        &mut self,
        id: u32,
        m: &Arrival<'_>,
        now_ns: UnixNanos,
        out: &mut Outcome,
    ) {
        let Source::Udp(addr) = m.source else {
            return self.reject(m.source, "legacy_over_tcp", now_ns, out, || {
                "the notebook format is UDP only".into()
            });
        };
        if self.route_of(id, m.source, now_ns, out).is_none() {
            return;
        }
        // This address now speaks for `id`, and `id` only through this address (a script
        // restarted on a new port: its old address is forgotten).
        if let Some(old_id) = self.legacy_sources.insert(addr, id) {
            if old_id != id && self.legacy_ids.get(&old_id) == Some(&addr) {
                self.legacy_ids.remove(&old_id);
            }
        }
        if let Some(old_addr) = self.legacy_ids.insert(id, addr) {
            if old_addr != addr {
                self.legacy_sources.remove(&old_addr);
            }
        }
        let info = DummyInfo {
            id,
            name: format!("Dummy{id}"),
            transport: Transport::LegacyUdp,
            dt_s: None,
            source: addr,
        };
        self.register(info, now_ns, out);
    }

    fn on_legacy_time(&mut self, t: f64, m: &Arrival<'_>, now_ns: UnixNanos, out: &mut Outcome) {
        let Source::Udp(addr) = m.source else { return };
        let Some(&id) = self.legacy_sources.get(&addr) else {
            return;
        };
        if self.implausible_time(t, m.source, now_ns, out) {
            return;
        }
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
        self.record(id, sample, now_ns, out);
    }

    /// Counts a rejected message against its source's row of the reject table (or the
    /// folded row once [`MAX_REJECT_SOURCES`] sources have one); returns the row.
    fn count_reject(&mut self, source: Source, label: &'static str) -> RejectKey {
        let mut key = RejectKey::Source(source);
        if !self.rejected.contains_key(&key) {
            let folded = self.rejected.contains_key(&RejectKey::Folded);
            if self.rejected.len() - usize::from(folded) >= MAX_REJECT_SOURCES {
                key = RejectKey::Folded;
                self.refused.reject_sources_folded += 1;
            }
        }
        let e = self.rejected.entry(key).or_insert_with(|| SourceErrors {
            source: match key {
                RejectKey::Source(s) => s.to_string(),
                RejectKey::Folded => FOLDED_SOURCES.to_owned(),
            },
            total: 0,
            by_reason: BTreeMap::new(),
        });
        e.total += 1;
        match e.by_reason.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                e.by_reason.insert(label.to_owned(), 1);
            }
        }
        key
    }

    /// Counts a rejected message against its source; logs it, rate-limited per source (or
    /// folded row) and per kind. `detail` is only built when the line is logged.
    fn reject(
        &mut self,
        source: Source,
        label: &'static str,
        now_ns: UnixNanos,
        out: &mut Outcome,
        detail: impl FnOnce() -> String,
    ) {
        let key = self.count_reject(source, label);
        let (fits, held_back) = self
            .reject_log
            .entry(key)
            .or_default()
            .take(now_ns, REJECT_LOG_BURST);
        if held_back > 0 {
            self.say(out, EventKind::Rejected, None, now_ns, || {
                let from = match key {
                    RejectKey::Source(s) => s.to_string(),
                    RejectKey::Folded => FOLDED_SOURCES.to_owned(),
                };
                format!("{from}: {held_back} more rejected messages not logged individually")
            });
        }
        if fits {
            self.say(out, EventKind::Rejected, None, now_ns, || {
                format!("{source}: rejected ({label}): {}", detail())
            });
        } else {
            self.refused.notices_suppressed += 1;
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
            refused: self.refused.clone(),
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
    fn clock_messages_feed_the_offset_estimate_and_bad_ones_are_counted() {
        let mut a = agg();
        let from = Source::Udp(([10, 0, 0, 2], 4000).into());
        let clock = |id: u32, t1_ns: i64, theta_ns: i64| {
            // 100 µs each way, 20 µs turnaround, read at once; θ = bridge − sender.
            let s = |ns: i64| ns as f64 / 1e9;
            Message::Clock(Clock {
                dummy_id: id,
                seq: 0,
                sent_unix_s: s(t1_ns),
                bridge_recv_unix_s: s(t1_ns + 100_000 + theta_ns),
                bridge_send_unix_s: s(t1_ns + 120_000 + theta_ns),
                echo_read_unix_s: s(t1_ns + 220_000),
            })
            .encode()
        };
        let o = a.handle(msg(from, clock(5, T0, 0), T0), T0);
        assert!(o.record.is_none() && o.reply.is_none());
        a.handle(msg(from, hello(5, flags::ECHO), T0), T0);
        a.handle(msg(from, stamp(5, 0, T0), T0 + 250_000_000), T0 + S);
        assert_eq!(a.snapshot(T0 + S).dummies[0].clock, None);
        let o = a.handle(msg(from, clock(5, T0, 250_000_000), T0 + S), T0 + S);
        assert!(o.record.is_none() && o.reply.is_none(), "not a STAMP");
        let mut bad = Message::decode(&clock(5, T0, 0)).unwrap();
        if let Message::Clock(c) = &mut bad {
            c.echo_read_unix_s = c.sent_unix_s; // a round trip of zero: impossible
        }
        a.handle(msg(from, bad.encode(), T0 + S), T0 + S);
        let snap = a.snapshot(T0 + S);
        let c = snap.dummies[0].clock.expect("an estimate");
        assert!((c.offset_s - 0.25).abs() < 1e-6, "{c:?}");
        assert!((c.bound_s - 101e-6).abs() < 1e-6, "{c:?}");
        assert_eq!((c.exchanges, c.same_host), (1, false));
        assert!(
            c.latency_uncertain,
            "a 250 ms latency that is all clock offset"
        );
        assert_eq!(
            snap.dummies[0].messages, 1,
            "CLOCK is not counted as a message"
        );
        let reasons = &snap.rejected[0].by_reason;
        assert_eq!(reasons.get("unknown_dummy"), Some(&1));
        assert_eq!(reasons.get("implausible_clock"), Some(&1));
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
        a.handle(msg(udp(2000), bye.clone(), T0 + 1000), T0 + 1000);
        let snap = a.snapshot(T0 + 2000);
        assert_ne!(snap.dummies[0].state, crate::metrics::DummyState::Ended);
        assert_eq!(snap.dummies[0].bye, None, "a refused BYE is not recorded");
    }

    #[test]
    fn bye_counts_are_in_the_snapshot_however_many_dummies_say_goodbye_at_once() {
        // 150 BYEs in one instant: the log says 100 (NOTICE_BURST), the snapshot has all.
        let mut a = agg();
        let mut bye_lines = 0;
        for id in 0..150u32 {
            let from = udp(1000 + id as u16);
            a.handle(msg(from, stamp(id, 0, T0), T0), T0);
            let bye = Message::Bye(Bye {
                dummy_id: id,
                last_seq: 0,
                stamps_sent: 1,
                send_errors: id,
                echoes_received: 0,
            })
            .encode();
            let o = a.handle(msg(from, bye, T0 + 1000), T0 + 1000);
            bye_lines += kinds(&o).iter().filter(|k| **k == "dummy_bye").count();
        }
        assert_eq!(bye_lines, NOTICE_BURST as usize);
        let snap = a.snapshot(T0 + 2000);
        for d in &snap.dummies {
            let b = d.bye.expect("every BYE recorded");
            assert_eq!(
                (b.last_seq, b.stamps_sent, b.send_errors),
                (Some(0), 1, d.id)
            );
        }
        assert_eq!(snap.dummies.len(), 150);
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
