//! All statistics of one dummy, and its sessions.
//!
//! Pure: every time comes in as an argument. Definitions: `docs/METRICS.md`.

use super::clock::{ClockFilter, ExchangeError};
use super::histogram::LatencyHistogram;
use super::rtf::RtfTracker;
use super::seq::SeqTracker;
use super::spread::{Rfc3550Jitter, Spread};
use super::{
    ByeCounts, DummyInfo, DummySnapshot, DummyState, MetricsConfig, RateStats, RtfStats, Sample,
    SessionRecord, Transport, UnixNanos, WallSource,
};
use crate::wire::{Bye, Clock, NO_RTT, NO_SEQ};

/// Simulation time going back by more than this (s) is a restart, not rounding.
const SIM_RESTART_EPS_S: f64 = 1e-9;
const NS_PER_US: f64 = 1e3;

/// What [`DummyMetrics::record`] did with a sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordOutcome {
    /// The sample began a new session; this is the one that ended.
    pub new_session: Option<SessionRecord>,
    /// "Clocks disagree": the one-way latency was negative or implausible (message for the
    /// log; the aggregator decides how often to print it).
    pub clock_warning: Option<String>,
    /// The sample arrived during warm-up and was left out of every statistic.
    pub excluded_warmup: bool,
}

/// Statistics of one dummy's current session (or since the last reset).
#[derive(Debug, Clone)]
pub struct DummyMetrics {
    info: DummyInfo,
    session: u32,
    stats: SessionStats,
    /// The newest sample seen (by sender wall clock when there is one), warm-up included:
    /// what a restart is detected against.
    newest: Option<Newest>,
    /// Samples of the current session, warm-up included.
    session_samples: u64,
    last_recv_ns: Option<UnixNanos>,
    last_sim_time_s: Option<f64>,
    last_step: Option<u32>,
    bye: Option<(Bye, UnixNanos)>,
    /// ECHO exchanges reported by CLOCK messages: a property of the two hosts' clocks, so
    /// kept across sessions and resets.
    clock: ClockFilter,
    /// The latest configuration seen, for snapshots taken without one (ended sessions).
    cfg: MetricsConfig,
}

/// The part of a sample restart detection compares with.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Newest {
    seq: Option<u32>,
    sim_time_s: f64,
    sent_unix_ns: Option<UnixNanos>,
}

/// Everything cleared by a new session or a reset.
#[derive(Debug, Clone, Default)]
struct SessionStats {
    messages: u64,
    rtf: Option<RtfTracker>,
    interarrival: Spread,
    last_arrival_ns: Option<UnixNanos>,
    latency: LatencyHistogram,
    jitter: Rfc3550Jitter,
    /// Sender wall clock − receive time of the newest sample, ns: maps the bridge's `now`
    /// onto the sender's clock for the RTF windows.
    sender_offset_ns: Option<i64>,
    seq: Option<SeqTracker>,
    rtt: LatencyHistogram,
    clock_warnings: u64,
}

impl DummyMetrics {
    pub fn new(info: DummyInfo, cfg: &MetricsConfig) -> Self {
        Self {
            info,
            session: 0,
            stats: SessionStats::default(),
            newest: None,
            session_samples: 0,
            last_recv_ns: None,
            last_sim_time_s: None,
            last_step: None,
            bye: None,
            clock: ClockFilter::default(),
            cfg: cfg.clone(),
        }
    }

    pub fn info(&self) -> &DummyInfo {
        &self.info
    }

    /// Current session number (0 first).
    pub fn session(&self) -> u32 {
        self.session
    }

    /// Samples stored for the RTF/rate windows (bounded whatever the run length).
    pub fn stored_samples(&self) -> usize {
        self.stats
            .rtf
            .as_ref()
            .map_or(0, RtfTracker::stored_samples)
    }

    /// The BYE of the current session and when it arrived, if one did.
    pub fn bye(&self) -> Option<&(Bye, UnixNanos)> {
        self.bye.as_ref()
    }

    /// A new HELLO from the same dummy id. If stamps were already recorded in the current
    /// session, a new session starts and the old one is returned.
    pub fn on_hello(&mut self, info: DummyInfo, now_ns: UnixNanos) -> Option<SessionRecord> {
        let _ = now_ns; // The ended session's snapshot is taken at its own last message.
        let ended =
            (self.session_samples > 0).then(|| self.start_session("new HELLO after stamps"));
        self.info = info;
        self.bye = None;
        ended
    }

    /// One STAMP / legacy time. Returns what happened (new session started, clock warning...).
    pub fn record(&mut self, s: &Sample, cfg: &MetricsConfig) -> RecordOutcome {
        let mut out = RecordOutcome::default();
        if *cfg != self.cfg {
            self.cfg = cfg.clone();
        }
        if let Some(reason) = self.newest.and_then(|n| restart_reason(&n, s)) {
            out.new_session = Some(self.start_session(&reason));
        }
        self.note_seen(s);
        if s.recv_unix_ns < cfg.run_start_ns.saturating_add(cfg.warmup_ns) {
            out.excluded_warmup = true;
            return out;
        }
        out.clock_warning = self
            .stats
            .record(s, cfg)
            .map(|lat| self.clock_message(lat, cfg));
        out
    }

    pub fn on_bye(&mut self, bye: &Bye, now_ns: UnixNanos) {
        if bye.last_seq != NO_SEQ {
            if let Some(seq) = self.stats.seq.as_mut() {
                seq.announce_last(bye.last_seq);
            }
        }
        self.bye = Some((*bye, now_ns));
    }

    /// One CLOCK message: an ECHO exchange's four timestamps (refused if impossible).
    pub fn on_clock(&mut self, clock: &Clock) -> Result<(), ExchangeError> {
        self.clock.push(clock)
    }

    pub fn snapshot(&self, now_ns: UnixNanos, cfg: &MetricsConfig) -> DummySnapshot {
        // After BYE the dummy's statistics stop at the BYE: a finished dummy is not "stalled".
        let now_ns = self.bye.map_or(now_ns, |(_, at)| now_ns.min(at));
        let rtf = self.rtf_stats(now_ns);
        let off_target = is_off_target(rtf.last_1s, cfg);
        let latency = self.stats.latency.stats();
        let same_host = self.info.source.ip().is_loopback();
        DummySnapshot {
            id: self.info.id,
            name: self.info.name.clone(),
            transport: self.info.transport,
            source: self.info.source.to_string(),
            session: self.session,
            state: self.state(now_ns, cfg),
            messages: self.stats.messages,
            dt_s: self.info.dt_s,
            last_sim_time_s: self.last_sim_time_s,
            last_step: self.last_step,
            rate: self.rate_stats(now_ns, cfg),
            bye: self.bye.map(|(b, _)| ByeCounts {
                last_seq: (b.last_seq != NO_SEQ).then_some(b.last_seq),
                stamps_sent: b.stamps_sent,
                send_errors: b.send_errors,
                echoes_received: b.echoes_received,
            }),
            clock: self
                .clock
                .estimate(same_host, latency.as_ref().map(|l| l.p50_us)),
            latency,
            jitter_rfc3550_us: self.stats.jitter.value(),
            loss: self.stats.seq.as_ref().map(SeqTracker::stats),
            rtt: self.stats.rtt.stats(),
            clock_warnings: self.stats.clock_warnings,
            off_target,
            rtf,
        }
    }

    /// Hints the CPU to load the heap buffers the next sample will touch (the RTF window's
    /// ends, the latency buckets); see `metrics::table`.
    pub fn prefetch_heap(&self) {
        if let Some(t) = &self.stats.rtf {
            t.prefetch();
        }
        if let Some(t) = &self.stats.seq {
            t.prefetch();
        }
        self.stats.latency.prefetch();
    }

    /// The one-way latency distribution of the current session (to merge run-wide).
    pub fn latency(&self) -> &LatencyHistogram {
        &self.stats.latency
    }

    /// What the stop rules look at, without a snapshot: the newest simulation time and
    /// whether the dummy said BYE.
    pub fn progress(&self) -> (Option<f64>, bool) {
        (self.last_sim_time_s, self.bye.is_some())
    }

    /// Clears statistics (the live view's `r` key); keeps identity, starts counting afresh.
    pub fn reset(&mut self, now_ns: UnixNanos) {
        let _ = now_ns; // Nothing is timed from a reset; counting restarts with the next sample.
        self.stats = SessionStats::default();
    }

    /// Ends the current session: its final snapshot (at its last message), then fresh state.
    fn start_session(&mut self, reason: &str) -> SessionRecord {
        let at = self.last_recv_ns.unwrap_or(self.cfg.run_start_ns);
        let record = SessionRecord {
            dummy_id: self.info.id,
            session: self.session,
            reason: reason.to_owned(),
            final_snapshot: self.snapshot(at, &self.cfg),
        };
        self.session += 1;
        self.stats = SessionStats::default();
        self.newest = None;
        self.session_samples = 0;
        self.last_sim_time_s = None;
        self.last_step = None;
        self.bye = None;
        record
    }

    fn note_seen(&mut self, s: &Sample) {
        let newer = match (self.newest.and_then(|n| n.sent_unix_ns), s.sent_unix_ns) {
            (Some(prev), Some(sent)) => sent > prev,
            _ => true,
        };
        if newer {
            self.newest = Some(Newest {
                seq: s.seq,
                sim_time_s: s.sim_time_s,
                sent_unix_ns: s.sent_unix_ns,
            });
        }
        self.session_samples += 1;
        self.last_recv_ns = Some(s.recv_unix_ns);
        self.last_sim_time_s = Some(s.sim_time_s);
        self.last_step = s.step.or(self.last_step);
    }

    fn state(&self, now_ns: UnixNanos, cfg: &MetricsConfig) -> DummyState {
        match (self.bye, self.last_recv_ns) {
            (Some(_), _) => DummyState::Ended,
            (None, None) => DummyState::Registered,
            (None, Some(_)) if self.session_samples == 0 => DummyState::Registered,
            (None, Some(last)) if now_ns - last > cfg.idle_after_ns => DummyState::Idle,
            _ => DummyState::Active,
        }
    }

    /// `now` on the RTF tracker's clock: the sender's wall clock is reached through the offset
    /// seen on the newest sample (clock offset + latency), so windows work with unsynced clocks.
    fn tracker_now(&self, tracker: &RtfTracker, now_ns: UnixNanos) -> UnixNanos {
        match tracker.wall_source() {
            WallSource::SenderWall => {
                now_ns.saturating_add(self.stats.sender_offset_ns.unwrap_or(0))
            }
            WallSource::ReceiveTime | WallSource::RemotePoll => now_ns,
        }
    }

    fn rtf_stats(&self, now_ns: UnixNanos) -> RtfStats {
        match &self.stats.rtf {
            Some(t) => t.stats(self.tracker_now(t, now_ns)),
            None => empty_rtf(self.info.transport),
        }
    }

    fn rate_stats(&self, now_ns: UnixNanos, cfg: &MetricsConfig) -> RateStats {
        let t = self.stats.rtf.as_ref();
        let step_hz = self
            .info
            .dt_s
            .filter(|dt| dt.is_finite() && *dt > 0.0)
            .map(|dt| 1.0 / dt);
        RateStats {
            wall_hz_1s: t.and_then(|t| t.rate_1s_hz(self.tracker_now(t, now_ns))),
            wall_hz: t.and_then(RtfTracker::session_wall_hz),
            sim_hz: t.and_then(RtfTracker::session_sim_hz),
            expected_hz: step_hz,
            expected_wall_hz: step_hz.map(|hz| hz * cfg.target_rtf),
            interarrival: self.stats.interarrival.ns_as_ms(),
        }
    }

    fn clock_message(&self, latency_us: f64, cfg: &MetricsConfig) -> String {
        let what = if latency_us < 0.0 {
            "is negative".to_owned()
        } else {
            format!(
                "exceeds the plausible maximum of {} µs",
                cfg.max_plausible_latency_us
            )
        };
        format!(
            "clocks disagree: dummy {} ({}) from {}: one-way latency {latency_us:.0} µs {what}; \
             the sample is left out of the latency statistics. Synchronise the sender's and the \
             bridge's clocks (NTP/chrony) or run both on one machine",
            self.info.id, self.info.name, self.info.source
        )
    }
}

impl SessionStats {
    /// Records one post-warm-up sample; returns the latency (µs) if it was rejected as
    /// "clocks disagree".
    fn record(&mut self, s: &Sample, cfg: &MetricsConfig) -> Option<f64> {
        self.messages += 1;
        self.record_rtf(s, cfg.run_start_ns);
        if let Some(prev) = self.last_arrival_ns.replace(s.recv_unix_ns) {
            self.interarrival.push((s.recv_unix_ns - prev) as f64);
        }
        if let Some(seq) = s.seq {
            match self.seq.as_mut() {
                Some(t) => {
                    t.push(seq, s.step);
                }
                None => self.seq = Some(SeqTracker::new(seq, s.step)),
            }
        }
        if let Some(rtt) = s.rtt_us.filter(|r| *r != NO_RTT) {
            self.rtt.record(f64::from(rtt));
        }
        self.record_latency(s, cfg)
    }

    fn record_rtf(&mut self, s: &Sample, origin_ns: UnixNanos) {
        let tracker = self.rtf.get_or_insert_with(|| {
            let source = match s.sent_unix_ns {
                Some(_) => WallSource::SenderWall,
                None => WallSource::ReceiveTime,
            };
            RtfTracker::with_origin(source, origin_ns)
        });
        let wall = match tracker.wall_source() {
            WallSource::SenderWall => s.sent_unix_ns,
            WallSource::ReceiveTime | WallSource::RemotePoll => Some(s.recv_unix_ns),
        };
        if let Some(wall) = wall {
            tracker.push(wall, s.sim_time_s);
        }
    }

    fn record_latency(&mut self, s: &Sample, cfg: &MetricsConfig) -> Option<f64> {
        let sent = s.sent_unix_ns?;
        let transit_ns = s.recv_unix_ns.saturating_sub(sent);
        self.sender_offset_ns = Some(-transit_ns);
        let latency_us = transit_ns as f64 / NS_PER_US;
        // RFC 3550 jitter uses transit differences, so a clock offset cancels: every sample
        // with a sender stamp counts, even one whose latency is implausible.
        self.jitter.push(latency_us);
        if latency_us < 0.0 || latency_us > cfg.max_plausible_latency_us {
            self.clock_warnings += 1;
            return Some(latency_us);
        }
        self.latency.record(latency_us);
        None
    }
}

/// Why `s` starts a new session after `newest`, if it does.
///
/// With a sender wall stamp: the sample is newer on the sender's clock (so it is not a late or
/// duplicated datagram) yet its seq is not ahead (RFC 1982 serial comparison) or its
/// simulation time went back. Without (legacy): simulation time went back, since legacy
/// senders have nothing else to tell a restart by.
fn restart_reason(newest: &Newest, s: &Sample) -> Option<String> {
    if let (Some(prev), Some(sent)) = (newest.sent_unix_ns, s.sent_unix_ns) {
        if sent <= prev {
            return None;
        }
        if let (Some(pq), Some(q)) = (newest.seq, s.seq) {
            if q.wrapping_sub(pq) as i32 <= 0 {
                return Some(format!("seq restarted ({q} after {pq})"));
            }
        }
    }
    (s.sim_time_s < newest.sim_time_s - SIM_RESTART_EPS_S).then(|| {
        format!(
            "simulation time restarted ({} s after {} s)",
            s.sim_time_s, newest.sim_time_s
        )
    })
}

fn is_off_target(rtf_1s: Option<f64>, cfg: &MetricsConfig) -> bool {
    match rtf_1s {
        Some(rtf) if cfg.target_rtf > 0.0 => {
            ((rtf - cfg.target_rtf) / cfg.target_rtf).abs() > cfg.off_target_tolerance
        }
        _ => false,
    }
}

fn empty_rtf(transport: Transport) -> RtfStats {
    RtfStats {
        last_1s: None,
        last_10s: None,
        total: None,
        worst_1s: None,
        worst_1s_at_s: None,
        wall_source: match transport {
            Transport::LegacyUdp => WallSource::ReceiveTime,
            Transport::Udp | Transport::Tcp => WallSource::SenderWall,
        },
    }
}
