//! Snapshot types: what the aggregator hands to the live view and the exporters.
//!
//! Plain data (serde), cloned out of the one owner of metric state. `None` means
//! "unavailable" (e.g. latency for a legacy dummy), never zero. Every field is defined
//! in `docs/METRICS.md`.

use serde::{Deserialize, Serialize};

/// The fixed percentile list used everywhere: p50, p90, p99, p99.9, max.
pub const PERCENTILES: [f64; 4] = [50.0, 90.0, 99.0, 99.9];

/// How a dummy talks to the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
    /// The notebook format over UDP.
    LegacyUdp,
}

impl Transport {
    /// The snake_case name used everywhere (tables, CSV, JSON, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::LegacyUdp => "legacy_udp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which clock stamped the arrival of datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecvClock {
    /// `SO_TIMESTAMPNS`, stamped by the kernel when the datagram arrived.
    Kernel,
    /// `SystemTime::now()` after `recv` returned (adds the receive backlog).
    User,
}

impl RecvClock {
    /// The snake_case name used everywhere (tables, CSV, JSON, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            RecvClock::Kernel => "kernel",
            RecvClock::User => "user",
        }
    }
}

impl std::fmt::Display for RecvClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the wall-time side of an RTF comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WallSource {
    /// The sender's own wall-clock stamps (`sent_unix_s`).
    SenderWall,
    /// The bridge's receive times (legacy senders have no wall stamp).
    ReceiveTime,
    /// The bridge polling `sim.getSimulationTime` through the remote API.
    RemotePoll,
}

/// Real-time factor over several windows; see METRICS.md "RTF".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtfStats {
    /// Over the last 1 s of wall time.
    pub last_1s: Option<f64>,
    /// Over the last 10 s of wall time.
    pub last_10s: Option<f64>,
    /// From the first to the last sample of the session (after warm-up).
    pub total: Option<f64>,
    /// Lowest RTF of any complete 1 s wall-time window.
    pub worst_1s: Option<f64>,
    /// Wall time (s since the run started) at which the worst window ended.
    pub worst_1s_at_s: Option<f64>,
    pub wall_source: WallSource,
}

/// A distribution in microseconds (HdrHistogram's buckets, sparse and budgeted: `metrics::histogram`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Largest relative error of the percentiles (`p50_us` ... `p999_us` are at most this
    /// share above the exact value): 1/1,024 at full precision, up to 1/32 after the bucket
    /// budget coarsened the distribution (docs/METRICS.md, "Percentiles").
    #[serde(default = "full_precision")]
    pub relative_error: f64,
}

/// The percentiles' relative error at full precision, for summaries written before
/// `relative_error` existed.
fn full_precision() -> f64 {
    crate::metrics::LatencyHistogram::new().relative_error()
}

/// Mean / min / max / standard deviation of a series, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpreadMs {
    pub count: u64,
    pub mean_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Population standard deviation.
    pub std_dev_ms: f64,
}

/// Sending rates; see METRICS.md "Rates".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateStats {
    /// Messages per wall second over the last 1 s window.
    pub wall_hz_1s: Option<f64>,
    /// Messages per wall second over the session.
    pub wall_hz: Option<f64>,
    /// Messages per simulated second over the session.
    pub sim_hz: Option<f64>,
    /// Messages per *simulated* second expected: 1 / dt from HELLO (one per pass); `None`
    /// for legacy dummies. Compare with `sim_hz`.
    pub expected_hz: Option<f64>,
    /// Messages per *wall* second expected at the target RTF: target RTF / dt. Compare with
    /// `wall_hz` (at `--rtf 0.5`, half of `expected_hz`, and no message is missing).
    #[serde(default)]
    pub expected_wall_hz: Option<f64>,
    /// Inter-arrival times (receive clock).
    pub interarrival: Option<SpreadMs>,
}

/// Sequence accounting; `None` for legacy dummies (no seq).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossStats {
    /// Seqs expected: highest seq − first seq + 1.
    pub expected: u64,
    /// Distinct seqs received.
    pub received: u64,
    /// expected − received (never negative).
    pub lost: u64,
    /// 100 · lost / expected.
    pub loss_pct: f64,
    /// Seqs received more than once (extra copies).
    pub duplicates: u64,
    /// Seqs that arrived after a higher seq.
    pub reordered: u64,
    /// Simulation passes skipped according to the step index.
    pub missed_steps: u64,
}

/// Lifecycle of a dummy as the bridge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DummyState {
    /// Registered (HELLO or legacy id), no STAMP yet.
    Registered,
    /// Stamps arriving.
    Active,
    /// No message for longer than the idle threshold.
    Idle,
    /// BYE received.
    Ended,
}

impl DummyState {
    /// The snake_case name used everywhere (tables, JSON, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            DummyState::Registered => "registered",
            DummyState::Active => "active",
            DummyState::Idle => "idle",
            DummyState::Ended => "ended",
        }
    }
}

/// Everything shown for one dummy (current session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DummySnapshot {
    pub id: u32,
    pub name: String,
    pub transport: Transport,
    /// Source address of the latest message, e.g. `127.0.0.1:50123`.
    pub source: String,
    /// 0 for the first session; +1 each time seq or simulation time restarts.
    pub session: u32,
    pub state: DummyState,
    /// Messages (STAMP or legacy time) counted in this session after warm-up.
    pub messages: u64,
    pub dt_s: Option<f64>,
    pub last_sim_time_s: Option<f64>,
    pub last_step: Option<u32>,
    pub rtf: RtfStats,
    pub rate: RateStats,
    /// One-way latency = receive time − sender wall time; `None` for legacy.
    pub latency: Option<LatencyStats>,
    /// RFC 3550 interarrival jitter, µs; `None` for legacy.
    pub jitter_rfc3550_us: Option<f64>,
    pub loss: Option<LossStats>,
    /// Round trip reported by the script (ECHO mode), µs.
    pub rtt: Option<LatencyStats>,
    /// Latencies rejected as negative or implausible ("clocks disagree").
    pub clock_warnings: u64,
    /// Offset of the sender's clock from the bridge's, from CLOCK messages (ECHO mode);
    /// `None` without any.
    #[serde(default)]
    pub clock: Option<ClockOffsetStats>,
    /// What the dummy's BYE said of the session (`None` before a BYE, and for legacy
    /// senders): compare `stamps_sent` with `messages`.
    #[serde(default)]
    pub bye: Option<ByeCounts>,
    /// Whether the latest 1 s RTF is off the target by more than the tolerance.
    pub off_target: bool,
}

/// The counts a dummy reports in its BYE (docs/PROTOCOL.md, BYE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByeCounts {
    /// Seq of the last STAMP; `None` if none was sent.
    pub last_seq: Option<u32>,
    /// STAMPs handed to the socket without error.
    pub stamps_sent: u32,
    pub send_errors: u32,
    pub echoes_received: u32,
}

/// The offset between a dummy's clock and the bridge's (`metrics::clock`, `docs/METRICS.md`
/// "Clock offset").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockOffsetStats {
    /// Bridge clock − sender clock, s: positive when the sender's clock is behind. Every
    /// one-way latency of this dummy contains it.
    pub offset_s: f64,
    /// The offset is within ± this of `offset_s`, s (half the width of the intersection of
    /// the window's exchange intervals).
    pub bound_s: f64,
    /// Smallest delay (round trip − bridge turnaround) of an exchange in the window, s.
    pub min_delay_s: f64,
    /// Exchanges (CLOCK messages) accepted.
    pub exchanges: u64,
    /// Exchanges in the window (the newest, at most 64).
    pub window: u32,
    /// Whether the window's intervals all overlap; if not (a clock stepped or drifts), the
    /// estimate is the minimum-delay exchange's alone.
    pub consistent: bool,
    /// The sender is on the bridge's machine (loopback): one clock, so the offset is 0 and the
    /// estimate is a self-check.
    pub same_host: bool,
    /// |offset| > bound: the two clocks provably differ, and every raw latency figure is off
    /// by about `offset_s`.
    #[serde(default)]
    pub offset_significant: bool,
    /// Not the same host and |offset| + bound ≥ half the latency median: the clock alone
    /// could make up half of the one-way latency figures or more.
    pub latency_uncertain: bool,
}

/// One earlier session of a dummy, kept when a new one starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub dummy_id: u32,
    pub session: u32,
    pub reason: String,
    pub final_snapshot: DummySnapshot,
}

/// Rejected input from one source address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceErrors {
    pub source: String,
    pub total: u64,
    /// Counts per reason label (`bad_version`, `not_finite`, ...).
    pub by_reason: std::collections::BTreeMap<String, u64>,
}

/// Global (simulation-wide) figures from the remote API; absent with `--no-remote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimSnapshot {
    /// CoppeliaSim's state name (`stopped`, `running`, `paused`, ...), or `unreachable`.
    pub state: String,
    pub sim_time_s: Option<f64>,
    pub rtf: RtfStats,
    /// Remote API call round trip, every poll. While the simulation runs, calls are served
    /// once per pass, so this is mostly the wait for the next pass (METRICS.md).
    pub remote_rtt: Option<LatencyStats>,
    /// The polls made while the simulation was stopped or paused: no pass to wait for, the
    /// nearest to the transport round trip (`probe` measures it on demand).
    #[serde(default)]
    pub remote_rtt_idle: Option<LatencyStats>,
    /// Version string, e.g. `4.6.0 rev 18`.
    pub version: Option<String>,
    /// Seconds the remote API was unreachable during the run.
    pub disconnected_s: f64,
    /// Lockstep mode (`run --stepping`): what the bridge achieved.
    #[serde(default)]
    pub stepping: Option<SteppingSnapshot>,
}

/// The bridge steps the simulation itself (`--stepping`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteppingSnapshot {
    pub steps: u64,
    pub steps_per_s: f64,
    /// Simulated seconds per wall second while stepping.
    pub achieved_rtf: f64,
    /// `--target-rtf` (0 = as fast as possible).
    pub target_rtf: f64,
    /// Relative error of the achieved RTF against the target; `None` without a target.
    pub pacing_error: Option<f64>,
}

/// The whole picture at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Wall time since the run started, s.
    pub elapsed_s: f64,
    /// Wall clock at which the snapshot was taken, s since the Unix epoch.
    pub taken_unix_s: f64,
    pub recv_clock: RecvClock,
    /// Datagrams the kernel dropped for lack of buffer (`SO_RXQ_OVFL`), if known.
    pub kernel_drops: Option<u64>,
    /// Read backlog of every kernel-stamped message: user-space read − kernel receive, µs.
    /// How long messages waited for the bridge (its batching and scheduling), which kernel
    /// stamps keep out of every latency; `None` without kernel stamps.
    #[serde(default)]
    pub backlog: Option<LatencyStats>,
    /// One-way latency over every message of the run: all dummies' distributions merged
    /// (their current sessions); `None` when no dummy has a latency.
    #[serde(default)]
    pub latency: Option<LatencyStats>,
    pub dummies: Vec<DummySnapshot>,
    pub rejected: Vec<SourceErrors>,
    /// What the bridge turned away or cut short to protect itself (allow list, caps,
    /// timeouts); all zero on a quiet network. `docs/RELIABILITY.md` has the threat model.
    #[serde(default)]
    pub refused: RefusedCounts,
    pub sim: Option<SimSnapshot>,
}

/// Counters of what the bridge refused, for the whole run (docs/OUTPUT.md, `refused`).
/// Datagram-level rejects stay in [`RunSnapshot::rejected`], per source and reason; these are
/// the ones no source table can hold (dropped unparsed, connections) or that protect memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefusedCounts {
    /// UDP datagrams from outside `--allow`, dropped before parsing.
    pub udp_outside_allow: u64,
    /// TCP connections from outside `--allow`, closed at accept.
    pub tcp_outside_allow: u64,
    /// Prometheus connections from outside `--allow`, closed at accept.
    pub metrics_outside_allow: u64,
    /// TCP connections refused at accept: `--tcp-max-conns` were open.
    pub tcp_over_conn_cap: u64,
    /// Prometheus connections refused at accept: its connection cap was reached.
    pub metrics_over_conn_cap: u64,
    /// Prometheus requests dropped: head too large, too slow, or answer never read.
    pub metrics_bad_requests: u64,
    /// TCP connections closed after `--tcp-idle-timeout` without a byte.
    pub tcp_idle_closed: u64,
    /// TCP connections closed holding a frame not complete within `--tcp-frame-timeout`.
    pub tcp_slow_frame_closed: u64,
    /// TCP connections closed for a zero or oversized frame length (also in `rejected`,
    /// reason `frame_error`).
    pub tcp_frame_errors: u64,
    /// Messages for a new dummy id refused: `--max-dummies` ids were known (also in
    /// `rejected`, reason `max_dummies`).
    pub over_max_dummies: u64,
    /// Messages claiming an id pinned to another host (also in `rejected`, reason
    /// `id_pinned`); `--allow-roaming` turns pinning off.
    pub id_pinned: u64,
    /// Rejected messages counted in the `(other sources)` row of `rejected`, because the
    /// per-source table was full.
    pub reject_sources_folded: u64,
    /// Earlier sessions not kept in `sessions` (the list was full).
    pub sessions_not_kept: u64,
    /// Log lines (and `events.jsonl` entries) left out by rate limiting; each window that
    /// left some out ends with one line saying how many.
    pub notices_suppressed: u64,
}

impl RefusedCounts {
    /// The counter a receiver's [`crate::event::Refusal`] adds to.
    pub fn of_mut(&mut self, what: crate::event::Refusal) -> &mut u64 {
        use crate::event::Refusal;
        match what {
            Refusal::UdpOutsideAllow => &mut self.udp_outside_allow,
            Refusal::TcpOutsideAllow => &mut self.tcp_outside_allow,
            Refusal::TcpOverConnCap => &mut self.tcp_over_conn_cap,
            Refusal::MetricsOutsideAllow => &mut self.metrics_outside_allow,
            Refusal::MetricsOverConnCap => &mut self.metrics_over_conn_cap,
            Refusal::MetricsBadRequest => &mut self.metrics_bad_requests,
        }
    }

    /// Every counter with its name (`final.refused` member, Prometheus `what` label).
    pub fn named(&self) -> [(&'static str, u64); 14] {
        [
            ("udp_outside_allow", self.udp_outside_allow),
            ("tcp_outside_allow", self.tcp_outside_allow),
            ("metrics_outside_allow", self.metrics_outside_allow),
            ("tcp_over_conn_cap", self.tcp_over_conn_cap),
            ("metrics_over_conn_cap", self.metrics_over_conn_cap),
            ("metrics_bad_requests", self.metrics_bad_requests),
            ("tcp_idle_closed", self.tcp_idle_closed),
            ("tcp_slow_frame_closed", self.tcp_slow_frame_closed),
            ("tcp_frame_errors", self.tcp_frame_errors),
            ("over_max_dummies", self.over_max_dummies),
            ("id_pinned", self.id_pinned),
            ("reject_sources_folded", self.reject_sources_folded),
            ("sessions_not_kept", self.sessions_not_kept),
            ("notices_suppressed", self.notices_suppressed),
        ]
    }
}

impl RunSnapshot {
    /// Run-wide loss, %: 100 · Σ lost / Σ expected over the dummies with a sequence number
    /// (legacy senders have none); `None` when no dummy has one.
    pub fn loss_pct(&self) -> Option<f64> {
        let (lost, expected) = self
            .dummies
            .iter()
            .filter_map(|d| d.loss.as_ref())
            .fold((0u64, 0u64), |(l, e), x| (l + x.lost, e + x.expected));
        (expected > 0).then(|| 100.0 * lost as f64 / expected as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_counter_names_are_the_json_members() {
        let mut r = RefusedCounts::default();
        for (i, what) in [
            crate::event::Refusal::UdpOutsideAllow,
            crate::event::Refusal::TcpOutsideAllow,
            crate::event::Refusal::MetricsOutsideAllow,
            crate::event::Refusal::TcpOverConnCap,
            crate::event::Refusal::MetricsOverConnCap,
            crate::event::Refusal::MetricsBadRequest,
        ]
        .into_iter()
        .enumerate()
        {
            *r.of_mut(what) = i as u64 + 1;
            assert_eq!(r.named()[i], (what.as_str(), i as u64 + 1));
        }
        let json = serde_json::to_value(&r).unwrap();
        let members: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = r.named().iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(members, names);
        let old: RunSnapshot = serde_json::from_value(serde_json::json!({
            "elapsed_s": 1.0, "taken_unix_s": 2.0, "recv_clock": "user", "kernel_drops": null,
            "dummies": [], "rejected": [], "sim": null
        }))
        .unwrap();
        assert_eq!(
            old.refused,
            RefusedCounts::default(),
            "older summaries still read"
        );
    }
}
