//! Simulation-wide figures from the remote API: global RTF from clock polls, the call round
//! trip, state, and the time CoppeliaSim was unreachable (pure: time passed in).
//!
//! Definitions: `docs/METRICS.md`, "Simulation-wide figures".

use super::{LatencyHistogram, RtfTracker, SimSnapshot, SteppingSnapshot, WallSource};
use crate::time::UnixNanos;

/// What the bridge knows about the simulation as a whole.
#[derive(Debug)]
pub struct SimMetrics {
    state: Option<&'static str>,
    advancing: bool,
    sim_time_s: Option<f64>,
    rtf: RtfTracker,
    rtt: LatencyHistogram,
    /// Calls made while the simulation was stopped or paused.
    rtt_idle: LatencyHistogram,
    version: Option<String>,
    disconnected_since: Option<UnixNanos>,
    disconnected_total_s: f64,
    stepping: Option<SteppingSnapshot>,
}

impl SimMetrics {
    /// Nothing known yet; RTF windows count from `run_start_ns`.
    pub fn new(run_start_ns: UnixNanos) -> Self {
        Self {
            state: None,
            advancing: false,
            sim_time_s: None,
            rtf: RtfTracker::with_origin(WallSource::RemotePoll, run_start_ns),
            rtt: LatencyHistogram::new(),
            rtt_idle: LatencyHistogram::new(),
            version: None,
            disconnected_since: None,
            disconnected_total_s: 0.0,
            stepping: None,
        }
    }

    /// Whether simulation passes run now (silence from dummies then means trouble).
    pub fn is_advancing(&self) -> bool {
        self.disconnected_since.is_none() && self.advancing
    }

    /// Whether CoppeliaSim ever answered.
    pub fn connected_once(&self) -> bool {
        self.version.is_some()
    }

    pub fn connected(&mut self, version: String) {
        self.version = Some(version);
    }

    /// The state CoppeliaSim reports (`running`, ...), and whether passes run in it.
    pub fn state(&mut self, name: &'static str, advancing: bool) {
        self.state = Some(name);
        self.advancing = advancing;
    }

    /// One poll of the simulation clock at wall time `wall_ns`.
    pub fn sim_time(&mut self, wall_ns: UnixNanos, sim_time_s: f64) {
        self.sim_time_s = Some(sim_time_s);
        self.rtf.push(wall_ns, sim_time_s);
    }

    /// Simulation time went back: windows spanning the restart would mix two timelines.
    pub fn restarted(&mut self, wall_ns: UnixNanos, sim_time_s: f64) {
        self.rtf.reset();
        self.sim_time(wall_ns, sim_time_s);
    }

    /// One remote call's round trip, µs. While passes run, the ZMQ remote API add-on serves
    /// requests once per pass (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API
    /// server.lua, `sysCall_actuation` → `handleQueue`), so a call waits up to one pass: the
    /// figure is mostly that wait. Calls made while the simulation is stopped or paused (the
    /// state last reported) are served from `sysCall_nonSimulation` and kept apart as well.
    pub fn call_rtt(&mut self, us: f64) {
        self.rtt.record(us);
        if !self.advancing {
            self.rtt_idle.record(us);
        }
    }

    pub fn disconnected(&mut self, wall_ns: UnixNanos) {
        self.disconnected_since.get_or_insert(wall_ns);
    }

    pub fn reconnected(&mut self, gap_s: f64) {
        self.disconnected_since = None;
        self.disconnected_total_s += gap_s;
    }

    pub fn stepping(&mut self, s: SteppingSnapshot) {
        self.stepping = Some(s);
    }

    /// The simulation-wide snapshot at `now_ns`.
    pub fn snapshot(&self, now_ns: UnixNanos) -> SimSnapshot {
        let ongoing = self
            .disconnected_since
            .map_or(0.0, |since| (now_ns - since) as f64 / 1e9);
        SimSnapshot {
            state: if self.disconnected_since.is_some() {
                "unreachable".to_owned()
            } else {
                self.state.unwrap_or("unknown").to_owned()
            },
            sim_time_s: self.sim_time_s,
            rtf: self.rtf.stats(now_ns),
            remote_rtt: self.rtt.stats(),
            remote_rtt_idle: self.rtt_idle.stats(),
            version: self.version.clone(),
            disconnected_s: self.disconnected_total_s + ongoing,
            stepping: self.stepping.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn polls_make_a_global_rtf_and_rtt() {
        let mut v = SimMetrics::new(0);
        v.connected("4.6.0 rev 18".into());
        v.state("running", true);
        for k in 0..=50 {
            // 10 Hz polls, simulation at half real time.
            v.sim_time(k * S / 10, k as f64 * 0.05);
            v.call_rtt(100.0 + k as f64);
        }
        let s = v.snapshot(5 * S);
        assert_eq!(s.state, "running");
        assert_eq!(s.version.as_deref(), Some("4.6.0 rev 18"));
        assert!((s.rtf.total.unwrap() - 0.5).abs() < 1e-9, "{:?}", s.rtf);
        assert_eq!(s.remote_rtt.unwrap().count, 51);
        assert_eq!(s.remote_rtt_idle, None, "every call was made while running");
        assert!(v.is_advancing());
        v.state("paused", false);
        v.call_rtt(80.0);
        let s = v.snapshot(6 * S);
        assert_eq!(s.remote_rtt.unwrap().count, 52);
        assert_eq!(
            s.remote_rtt_idle.unwrap().count,
            1,
            "kept apart while paused"
        );
    }

    #[test]
    fn disconnection_gap_is_recorded_and_stops_advancing() {
        let mut v = SimMetrics::new(0);
        v.state("running", true);
        v.disconnected(2 * S);
        assert!(!v.is_advancing());
        let s = v.snapshot(5 * S);
        assert_eq!(s.state, "unreachable");
        assert!((s.disconnected_s - 3.0).abs() < 1e-9);
        v.reconnected(4.0);
        assert!((v.snapshot(9 * S).disconnected_s - 4.0).abs() < 1e-9);
        assert!(v.is_advancing());
    }

    #[test]
    fn restart_resets_the_global_rtf_instead_of_mixing_runs() {
        let mut v = SimMetrics::new(0);
        for k in 0..=20 {
            v.sim_time(k * S / 10, 5.0 + k as f64 * 0.1);
        }
        v.restarted(2 * S, 0.0);
        for k in 1..=20 {
            v.sim_time(2 * S + k * S / 10, k as f64 * 0.1);
        }
        let total = v.snapshot(4 * S).rtf.total.unwrap();
        assert!((total - 1.0).abs() < 1e-9, "RTF after restart {total}");
    }
}
