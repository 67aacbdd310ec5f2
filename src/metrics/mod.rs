//! Per-dummy statistics (pure: every time is passed in, nothing reads a clock).
//!
//! Inputs are [`Sample`]s, already decoded and timestamped; outputs are cloned
//! [`snapshot`] values. Definitions of every number: `docs/METRICS.md`.
//!
//! - `dummy`: [`DummyMetrics`], everything about one dummy, its sessions and warm-up.
//! - `rtf`: [`RtfTracker`], RTF windows and rates on one (wall, sim) timeline; also used by the
//!   remote-API poller for the global simulation RTF.
//! - `histogram`: [`LatencyHistogram`], µs distributions (hdrhistogram, 3 significant digits,
//!   coarsened when needed to stay within [`MAX_BUCKETS`] buckets).
//! - `seq`: [`SeqTracker`], loss / duplicates / reordering / missed steps with wrap-around.
//! - `spread`: [`Spread`] (Welford mean/min/max/std dev) and [`Rfc3550Jitter`].
//! - `snapshot`: the plain serde types handed to the live view and exporters.

pub mod aggregator;
pub mod clock;
mod dummy;
mod histogram;
#[cfg(test)]
mod proptests;
mod rtf;
#[cfg(test)]
mod scenarios;
mod seq;
mod sim;
pub mod snapshot;
mod spread;
mod table;

pub use dummy::{DummyMetrics, RecordOutcome};
pub use histogram::{LatencyHistogram, MAX_BUCKETS, MAX_RECORDED_US, SIGNIFICANT_DIGITS};
pub use rtf::{
    RtfTracker, LONG_WINDOW_NS, MAX_POINTS, MERGE_SPACING_NS, MIN_TOTAL_SPAN_NS, SHORT_WINDOW_NS,
};
pub use seq::{SeqEvent, SeqTracker, SEQ_WINDOW};
pub use sim::SimMetrics;
pub use snapshot::*;
pub use spread::{Rfc3550Jitter, Spread};
pub use table::{DummyTable, Slot};

use crate::time::UnixNanos;

/// One received STAMP (or legacy time), with everything the metrics need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// `None` for legacy senders.
    pub seq: Option<u32>,
    /// Simulation pass index; `None` for legacy senders.
    pub step: Option<u32>,
    pub sim_time_s: f64,
    /// Sender's wall clock; `None` for legacy senders.
    pub sent_unix_ns: Option<UnixNanos>,
    /// Arrival: kernel stamp if available, else user-space stamp.
    pub recv_unix_ns: UnixNanos,
    /// When user space read the datagram (equals `recv_unix_ns` without kernel stamps).
    pub read_unix_ns: UnixNanos,
    pub recv_clock: RecvClock,
    /// Round trip reported by the sender, µs.
    pub rtt_us: Option<u32>,
}

/// What identifies a dummy, from HELLO or legacy registration.
#[derive(Debug, Clone, PartialEq)]
pub struct DummyInfo {
    pub id: u32,
    pub name: String,
    pub transport: Transport,
    /// `None` for legacy senders.
    pub dt_s: Option<f64>,
    /// The address it registered from (its HELLO, or its first STAMP without one).
    pub source: std::net::SocketAddr,
}

/// Settings shared by all dummies.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Start of the run (wall clock).
    pub run_start_ns: UnixNanos,
    /// Samples received before `run_start_ns + warmup_ns` are excluded from the summary.
    pub warmup_ns: i64,
    /// Latencies above this (µs) are "clocks disagree" rather than data.
    pub max_plausible_latency_us: f64,
    /// A dummy silent for this long is `Idle`.
    pub idle_after_ns: i64,
    /// RTF the run aims for (1.0 unless stepping with `--target-rtf`).
    pub target_rtf: f64,
    /// |RTF 1 s − target| / target above this marks a dummy off target.
    pub off_target_tolerance: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            run_start_ns: 0,
            warmup_ns: 0,
            max_plausible_latency_us: 10_000_000.0,
            idle_after_ns: 2_000_000_000,
            target_rtf: 1.0,
            off_target_tolerance: 0.1,
        }
    }
}
