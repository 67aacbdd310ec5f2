//! Real-time factor (Δ simulation time / Δ wall time) over wall-time windows, and the message
//! rates that share its timeline.
//!
//! Definitions (exact formulas): `docs/METRICS.md` "RTF" and "Rates". In short, with
//! `L(t)` = the last sample whose wall time is ≤ t, and `e` = the newest sample:
//!
//! * sliding window W ∈ {1 s, 10 s}: `a = L(wall_e − W)`;
//!   `RTF_W = (sim_e − sim_a) / (wall_e − wall_a)`; needs samples spanning at least W. When the
//!   newest sample is W or more older than `now` (nothing arrived in the window ending now),
//!   it is 0.
//! * total: `(sim_last − sim_first) / (wall_last − wall_first)`, needs a span of at least 1 s.
//! * worst 1 s: boundaries `b_k = origin + k·1 s`; window k uses `a = L(b_{k−1})`,
//!   `b = L(b_k)`: `RTF_k = (sim_b − sim_a) / (wall_b − wall_a)`; the lowest over the windows
//!   that are complete (a sample after `b_k` exists, `b_{k−1}` ≥ the first sample) and not
//!   empty (a ≠ b).
//!
//! Both ends of every ratio are real samples, never interpolated points and never a
//! per-message ratio. That is what makes bursts harmless: CoppeliaSim outside real-time mode,
//! or with a GUI, may run several passes back to back and then wait (coppeliasim-notes §3), so
//! the (wall, sim) curve is a staircase. "The last sample before t" is then nearly always the
//! last sample of a burst, at the same phase of the staircase at both ends, so the ratio is the
//! staircase's average slope whatever the burst period. Only a boundary that falls inside a
//! burst (a few ms out of each period) shifts one end by a part of one burst.
//!
//! Memory is bounded: only the samples of the last 10 s are kept (plus one before), samples
//! closer than [`MERGE_SPACING_NS`] are merged, and at most [`MAX_POINTS`] are kept. The worst
//! window is computed incrementally in O(1) memory and time per sample.

use std::collections::VecDeque;

use super::{RtfStats, WallSource};
use crate::time::UnixNanos;

pub const SHORT_WINDOW_NS: i64 = 1_000_000_000;
pub const LONG_WINDOW_NS: i64 = 10_000_000_000;
/// Least wall span for the total RTF and the session rates (shorter spans are dominated by
/// bursts and give absurd ratios).
pub const MIN_TOTAL_SPAN_NS: i64 = SHORT_WINDOW_NS;
/// A sample closer than this to the sample two places before it replaces the newest stored
/// sample instead of being appended: at most ~2 stored samples per 10 ms, whatever the rate.
pub const MERGE_SPACING_NS: i64 = 10_000_000;
/// Hard cap on stored samples (reordered input could defeat the merging).
pub const MAX_POINTS: usize = 4096;
/// Simulation time going back by more than this (s) on a newer wall time is a restart.
const SIM_RESTART_EPS_S: f64 = 1e-9;
const NS_PER_S: f64 = 1e9;

/// One stored sample; `count` > 1 when faster samples were merged into it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    wall_ns: i64,
    sim_s: f64,
    count: u64,
}

/// RTF over 1 s / 10 s windows, total and worst 1 s, from (wall time, simulation time) pairs.
///
/// The wall clock may be the sender's, the bridge's receive time or the bridge's poll time
/// ([`WallSource`]); `now` passed to [`RtfTracker::stats`] must be on the same clock.
#[derive(Debug, Clone)]
pub struct RtfTracker {
    wall_source: WallSource,
    /// Alignment of the worst-window grid; `None`: the first sample's wall time.
    explicit_origin: Option<UnixNanos>,
    recent: VecDeque<Point>,
    first: Option<Point>,
    count: u64,
    worst: WorstWindow,
}

impl RtfTracker {
    pub fn new(wall_source: WallSource) -> Self {
        Self::build(wall_source, None)
    }

    /// Like [`RtfTracker::new`], with the worst-window grid aligned on `origin_ns` (the run
    /// start), so `worst_1s_at_s` counts seconds since then.
    pub fn with_origin(wall_source: WallSource, origin_ns: UnixNanos) -> Self {
        Self::build(wall_source, Some(origin_ns))
    }

    fn build(wall_source: WallSource, explicit_origin: Option<UnixNanos>) -> Self {
        Self {
            wall_source,
            explicit_origin,
            recent: VecDeque::new(),
            first: None,
            count: 0,
            worst: WorstWindow::new(explicit_origin),
        }
    }

    pub fn wall_source(&self) -> WallSource {
        self.wall_source
    }

    /// Samples pushed since the start or the last reset.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Samples currently stored for the sliding windows (bounded; see the module docs).
    pub fn stored_samples(&self) -> usize {
        self.recent.len()
    }

    /// One sample. A sample newer in wall time whose simulation time went back means the
    /// simulation restarted: the tracker starts afresh with it. Non-finite times are ignored.
    pub fn push(&mut self, wall_ns: UnixNanos, sim_time_s: f64) {
        if !sim_time_s.is_finite() {
            return;
        }
        let wall_ns = clamp_wall(wall_ns);
        if let Some(last) = self.recent.back() {
            if wall_ns >= last.wall_ns && sim_time_s < last.sim_s - SIM_RESTART_EPS_S {
                self.reset();
            }
        }
        let p = Point {
            wall_ns,
            sim_s: sim_time_s,
            count: 1,
        };
        self.count += 1;
        if self.first.is_none_or(|f| wall_ns < f.wall_ns) {
            self.first = Some(p);
        }
        self.worst.push(wall_ns, sim_time_s);
        self.store(p);
    }

    /// Hints the CPU to load the stored samples a push touches (both ends of the window).
    pub fn prefetch(&self) {
        for p in [self.recent.front(), self.recent.back()]
            .into_iter()
            .flatten()
        {
            super::table::prefetch_lines(p);
        }
    }

    /// Forgets every sample (keeps the wall source and origin).
    pub fn reset(&mut self) {
        *self = Self::build(self.wall_source, self.explicit_origin);
    }

    pub fn stats(&self, now_ns: UnixNanos) -> RtfStats {
        let now_ns = clamp_wall(now_ns);
        let worst = self.worst.worst.map(|w| (w.rtf, w.end_ns));
        let origin = self.worst.origin;
        RtfStats {
            last_1s: self.window_rtf(SHORT_WINDOW_NS, now_ns),
            last_10s: self.window_rtf(LONG_WINDOW_NS, now_ns),
            total: self.total_rtf(),
            worst_1s: worst.map(|w| w.0),
            worst_1s_at_s: worst.zip(origin).map(|(w, o)| (w.1 - o) as f64 / NS_PER_S),
            wall_source: self.wall_source,
        }
    }

    /// Messages per wall second over the last 1 s: the samples after `a` up to the newest,
    /// divided by their wall span (same `a` and anchor as `last_1s`).
    pub fn rate_1s_hz(&self, now_ns: UnixNanos) -> Option<f64> {
        let now_ns = clamp_wall(now_ns);
        let w = SHORT_WINDOW_NS;
        if self.recent.back().is_some_and(|e| now_ns - e.wall_ns >= w) {
            return Some(0.0);
        }
        let (a_idx, a, e) = self.window_ends(w)?;
        let n: u64 = self.recent.iter().skip(a_idx + 1).map(|p| p.count).sum();
        Some(n as f64 * NS_PER_S / (e.wall_ns - a.wall_ns) as f64)
    }

    /// Messages per wall second over the whole session: (n − 1) / (wall_last − wall_first).
    pub fn session_wall_hz(&self) -> Option<f64> {
        let (first, last) = self.total_span()?;
        Some((self.count - 1) as f64 * NS_PER_S / (last.wall_ns - first.wall_ns) as f64)
    }

    /// Messages per simulated second over the session: (n − 1) / (sim_last − sim_first).
    pub fn session_sim_hz(&self) -> Option<f64> {
        let (first, last) = self.total_span()?;
        let sim = last.sim_s - first.sim_s;
        (sim > 0.0).then(|| (self.count - 1) as f64 / sim)
    }

    fn total_rtf(&self) -> Option<f64> {
        let (first, last) = self.total_span()?;
        Some((last.sim_s - first.sim_s) * NS_PER_S / (last.wall_ns - first.wall_ns) as f64)
    }

    fn total_span(&self) -> Option<(Point, Point)> {
        let first = self.first?;
        let last = *self.recent.back()?;
        (self.count >= 2 && last.wall_ns - first.wall_ns >= MIN_TOTAL_SPAN_NS)
            .then_some((first, last))
    }

    fn window_rtf(&self, w: i64, now_ns: UnixNanos) -> Option<f64> {
        if self.recent.back().is_some_and(|e| now_ns - e.wall_ns >= w) {
            // Nothing arrived in (now − W, now]: no progress observed in that window, however
            // short the history before it.
            return Some(0.0);
        }
        let (_, a, e) = self.window_ends(w)?;
        Some((e.sim_s - a.sim_s) * NS_PER_S / (e.wall_ns - a.wall_ns) as f64)
    }

    /// `(index of a, a, e)` for window `w`: `e` the newest sample, `a` the last stored sample
    /// with wall ≤ wall_e − w. `None` unless the samples span the whole window.
    fn window_ends(&self, w: i64) -> Option<(usize, Point, Point)> {
        let e = *self.recent.back()?;
        let start = e.wall_ns - w;
        if self.first?.wall_ns > start {
            return None;
        }
        let a_idx = self
            .recent
            .partition_point(|p| p.wall_ns <= start)
            .checked_sub(1)?;
        Some((a_idx, self.recent[a_idx], e))
    }

    fn store(&mut self, p: Point) {
        let n = self.recent.len();
        match self.recent.back() {
            Some(last) if p.wall_ns < last.wall_ns => {
                // Reordered (sender wall clock): insert in wall order, unless already pruned.
                if self.recent.front().is_some_and(|f| p.wall_ns >= f.wall_ns) {
                    let idx = self.recent.partition_point(|q| q.wall_ns <= p.wall_ns);
                    self.recent.insert(idx, p);
                }
            }
            Some(_) if n >= 2 && p.wall_ns - self.recent[n - 2].wall_ns < MERGE_SPACING_NS => {
                let last = &mut self.recent[n - 1];
                (last.wall_ns, last.sim_s, last.count) = (p.wall_ns, p.sim_s, last.count + 1);
            }
            _ => self.recent.push_back(p),
        }
        self.prune();
    }

    /// Keeps the samples of the last 10 s plus the one before (the start `a` of that window).
    fn prune(&mut self) {
        let Some(newest) = self.recent.back().map(|p| p.wall_ns) else {
            return;
        };
        let horizon = newest - LONG_WINDOW_NS;
        while self.recent.len() > 2 && self.recent[1].wall_ns <= horizon {
            self.recent.pop_front();
        }
        while self.recent.len() > MAX_POINTS {
            self.recent.pop_front();
        }
    }
}

/// Integer ceiling division (`b` > 0), correct for negative `a`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Worst {
    rtf: f64,
    end_ns: i64,
}

/// A sample as the worst-window grid sees it: push index (identity), wall, sim.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mark {
    idx: u64,
    wall_ns: i64,
    sim_s: f64,
}

/// Incremental worst aligned 1 s window. When a sample arrives, every boundary between the
/// previous sample and it has the previous sample as `L(b)`; only the first of those
/// boundaries can close a non-empty window, the others close empty ones. So one boundary is
/// remembered and each sample costs O(1), however long the gap before it.
#[derive(Debug, Clone)]
struct WorstWindow {
    origin: Option<i64>,
    pushed: u64,
    prev: Option<Mark>,
    /// Smoothed wall gap between consecutive samples (EWMA, 1/8), ns: what "no sample for
    /// a whole window" means for this sender.
    typical_gap_ns: Option<f64>,
    /// The highest boundary index whose `L` is known, with that `L`.
    boundary: Option<(i64, Mark)>,
    worst: Option<Worst>,
}

impl WorstWindow {
    fn new(origin: Option<i64>) -> Self {
        Self {
            origin,
            pushed: 0,
            prev: None,
            typical_gap_ns: None,
            boundary: None,
            worst: None,
        }
    }

    fn push(&mut self, wall_ns: i64, sim_s: f64) {
        let origin = *self.origin.get_or_insert(wall_ns);
        self.pushed += 1;
        let mark = Mark {
            idx: self.pushed,
            wall_ns,
            sim_s,
        };
        let Some(prev) = self.prev else {
            self.prev = Some(mark);
            return;
        };
        if wall_ns < prev.wall_ns {
            return; // Reordered: the boundaries before it are already closed.
        }
        // Boundaries b_k with prev.wall ≤ b_k < wall: L(b_k) = prev (every sample at exactly
        // prev.wall was pushed already; this one is the first beyond them).
        let k_lo = ceil_div(prev.wall_ns - origin, SHORT_WINDOW_NS);
        let k_hi = ceil_div(wall_ns - origin, SHORT_WINDOW_NS) - 1;
        if k_lo <= k_hi {
            self.close_window(k_lo, prev, origin);
            if k_hi > k_lo {
                self.score_empty_windows(prev, mark, origin + (k_lo + 1) * SHORT_WINDOW_NS);
            }
            self.boundary = Some((k_hi, prev));
        }
        let gap = (wall_ns - prev.wall_ns) as f64;
        self.typical_gap_ns = Some(self.typical_gap_ns.map_or(gap, |g| g + (gap - g) / 8.0));
        self.prev = Some(mark);
    }

    /// Whole windows with no sample between `a` and `b` (a stall, or every datagram of a
    /// second lost). For a sender that normally sends several times per window, the
    /// simulation time inside them is interpolated linearly between `a` and `b`, so a 2 s
    /// freeze scores ≈ 0.02 even if CoppeliaSim catches up in a burst afterwards. A slow
    /// sender (typical gap ≥ half a window) leaves them unscored rather than reading 0.
    fn score_empty_windows(&mut self, a: Mark, b: Mark, first_end_ns: i64) {
        if self
            .typical_gap_ns
            .is_none_or(|g| g >= SHORT_WINDOW_NS as f64 / 2.0)
            || b.wall_ns <= a.wall_ns
        {
            return;
        }
        let rtf = (b.sim_s - a.sim_s) * NS_PER_S / (b.wall_ns - a.wall_ns) as f64;
        if self.worst.is_none_or(|w| rtf < w.rtf) {
            self.worst = Some(Worst {
                rtf,
                end_ns: first_end_ns,
            });
        }
    }

    /// Window (b_{k−1}, b_k] with `b = L(b_k)`, if `L(b_{k−1})` is known and differs.
    fn close_window(&mut self, k: i64, b: Mark, origin: i64) {
        let Some((pk, a)) = self.boundary else {
            return;
        };
        if pk != k - 1 || a.idx == b.idx || b.wall_ns <= a.wall_ns {
            return; // First boundary, or no sample inside the window.
        }
        let rtf = (b.sim_s - a.sim_s) * NS_PER_S / (b.wall_ns - a.wall_ns) as f64;
        if self.worst.is_none_or(|w| rtf < w.rtf) {
            self.worst = Some(Worst {
                rtf,
                end_ns: origin + k * SHORT_WINDOW_NS,
            });
        }
    }
}

/// Latest wall time the tracker works with: 2⁶² ns after the epoch (year 2116). The sender's
/// clock is outside input (a STAMP's `sent_unix_s`, saturated into `i64`): clamped into
/// `0..=MAX_WALL_NS`, every difference and window boundary the tracker computes fits in an
/// `i64`, so an absurd clock gives absurd RTFs for that dummy alone, never an overflow
/// (found by `tests/hostile_inputs.rs`, cell `cell_negative_and_huge_sender_times`).
const MAX_WALL_NS: UnixNanos = 1 << 62;

fn clamp_wall(ns: UnixNanos) -> UnixNanos {
    ns.clamp(0, MAX_WALL_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;
    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;

    /// Steady sender: every `period_ms`, simulation advances by `dt_s`.
    fn steady(t: &mut RtfTracker, n: i64, period_ms: i64, dt_s: f64) -> i64 {
        for i in 0..n {
            t.push(T0 + i * period_ms * MS, i as f64 * dt_s);
        }
        T0 + (n - 1) * period_ms * MS
    }

    fn close(a: Option<f64>, b: f64, tol: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= tol)
    }

    #[test]
    fn steady_20hz_rtf_1() {
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, T0);
        let last = steady(&mut t, 241, 50, 0.05); // 12 s
        let s = t.stats(last);
        assert!(close(s.last_1s, 1.0, 1e-9), "{s:?}");
        assert!(close(s.last_10s, 1.0, 1e-9));
        assert!(close(s.total, 1.0, 1e-9));
        assert!(close(s.worst_1s, 1.0, 1e-9));
        assert!(close(t.rate_1s_hz(last), 20.0, 1e-9));
        assert!(close(t.session_wall_hz(), 20.0, 1e-9));
        assert!(close(t.session_sim_hz(), 20.0, 1e-9));
    }

    /// 1 s steady at 20 Hz, a 2 s freeze, then (optionally) a catch-up burst, then steady.
    fn stall_timeline(catch_up: bool) -> RtfTracker {
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, T0);
        let mut k = 0i64;
        while k <= 20 {
            t.push(T0 + k * S / 20, k as f64 * 0.05);
            k += 1;
        }
        let resume = T0 + 3 * S + S / 20;
        if catch_up {
            for j in 0..40 {
                t.push(resume + j * 250_000, k as f64 * 0.05);
                k += 1;
            }
        }
        let base = resume + 10 * MS;
        for j in 0..60 {
            t.push(base + j * S / 20, k as f64 * 0.05);
            k += 1;
        }
        t
    }

    #[test]
    fn a_stall_is_the_worst_window_with_or_without_catch_up() {
        for catch_up in [false, true] {
            let t = stall_timeline(catch_up);
            let s = t.stats(T0 + 7 * S);
            let worst = s.worst_1s.unwrap();
            assert!(worst < 0.1, "catch_up={catch_up}: worst {worst}");
            assert_eq!(
                s.worst_1s_at_s,
                Some(2.0),
                "first empty window ends 2 s after the origin"
            );
        }
    }

    #[test]
    fn a_slow_sender_is_not_a_stall() {
        // One sample every 2 s of wall time, simulation in real time.
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, T0);
        for i in 0..10 {
            t.push(T0 + i * 2 * S, i as f64 * 2.0);
        }
        let s = t.stats(T0 + 18 * S);
        assert!(s.worst_1s.is_none_or(|w| (w - 1.0).abs() < 1e-9), "{s:?}");
    }

    #[test]
    fn steady_rtf_half() {
        // dt 0.05 s of simulation every 100 ms of wall time.
        let mut t = RtfTracker::new(WallSource::SenderWall);
        let last = steady(&mut t, 121, 100, 0.05);
        let s = t.stats(last);
        for v in [s.last_1s, s.last_10s, s.total, s.worst_1s] {
            assert!(close(v, 0.5, 1e-9), "{s:?}");
        }
    }

    #[test]
    fn windows_unavailable_until_spanned() {
        let mut t = RtfTracker::new(WallSource::ReceiveTime);
        let last = steady(&mut t, 11, 50, 0.05); // 0.5 s
        let s = t.stats(last);
        assert_eq!(
            (s.last_1s, s.last_10s, s.total, s.worst_1s),
            (None, None, None, None)
        );
        assert_eq!(t.rate_1s_hz(last), None);
        let last = steady(&mut t, 61, 50, 0.05); // 3 s (restart from sim 0 resets)
        let s = t.stats(last);
        assert!(close(s.last_1s, 1.0, 1e-9));
        assert_eq!(s.last_10s, None);
        assert!(close(s.total, 1.0, 1e-9));
    }

    #[test]
    fn bursts_of_four_passes_give_rtf_one() {
        // CoppeliaSim runs 4 passes of 50 ms within ~3 ms, then waits: every 200 ms.
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, T0);
        let mut last = 0;
        for burst in 0..60 {
            for j in 0..4 {
                last = T0 + burst * 200 * MS + j * MS;
                t.push(last, (burst * 4 + j) as f64 * 0.05);
            }
        }
        // Query at several phases: mid-burst, end of burst, between bursts.
        for now in [last, last + 50 * MS, last + 150 * MS] {
            let s = t.stats(now);
            assert!(close(s.last_1s, 1.0, 0.02), "{s:?}");
            assert!(close(s.last_10s, 1.0, 0.02), "{s:?}");
            assert!(close(s.worst_1s, 1.0, 0.02), "{s:?}");
        }
        assert!(close(t.rate_1s_hz(last), 20.0, 1e-9));
    }

    #[test]
    fn two_second_stall_is_the_worst_window() {
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, T0);
        let mut i = 0;
        let mut wall = T0;
        for _ in 0..100 {
            t.push(wall, i as f64 * 0.05);
            i += 1;
            wall += 50 * MS;
        }
        wall += 2 * S; // stall: nothing for 2 s
        for _ in 0..100 {
            t.push(wall, i as f64 * 0.05);
            i += 1;
            wall += 50 * MS;
        }
        let s = t.stats(wall);
        assert!(s.worst_1s.unwrap() < 0.1, "{s:?}");
        let at = s.worst_1s_at_s.unwrap();
        assert!(
            (5.0..=7.0).contains(&at),
            "worst window ends inside the stall: {at}"
        );
        assert!(close(s.last_1s, 1.0, 1e-9));
    }

    #[test]
    fn stall_in_progress_reads_zero_then_recovers() {
        let mut t = RtfTracker::new(WallSource::RemotePoll);
        let last = steady(&mut t, 241, 50, 0.05); // 12 s
        assert!(close(t.stats(last + 500 * MS).last_1s, 1.0, 1e-9));
        let s = t.stats(last + 1500 * MS);
        assert_eq!(s.last_1s, Some(0.0));
        // The 10 s window still ends at the newest sample until 10 s have passed without one.
        assert!(close(s.last_10s, 1.0, 1e-9));
        assert_eq!(t.stats(last + 10 * S).last_10s, Some(0.0));
        assert_eq!(t.rate_1s_hz(last + 1500 * MS), Some(0.0));
        // Samples resume: the window is anchored on the newest sample again.
        t.push(last + 2 * S, 12.05);
        assert!(t.stats(last + 2 * S).last_1s.unwrap() < 0.1);
    }

    #[test]
    fn very_long_gap_costs_constant_work() {
        // Samples at 0 s and 3600 s: the 3599 windows in between are empty (skipped); the
        // window ending at 3600 s spans from the sample at 0 s to the one at 3600 s. It is
        // complete once a sample after 3600 s exists.
        let mut t = RtfTracker::with_origin(WallSource::RemotePoll, T0);
        t.push(T0, 0.0);
        t.push(T0 + 3600 * S, 1.0);
        assert_eq!(t.stats(T0 + 3600 * S).worst_1s, None);
        t.push(T0 + 3600 * S + S / 2, 1.5);
        let s = t.stats(T0 + 3601 * S);
        assert!(close(s.worst_1s, 1.0 / 3600.0, 1e-12), "{s:?}");
        assert_eq!(s.worst_1s_at_s, Some(3600.0));
    }

    #[test]
    fn sim_time_going_back_restarts() {
        let mut t = RtfTracker::new(WallSource::SenderWall);
        steady(&mut t, 100, 50, 0.05);
        t.push(T0 + 10 * S, 0.0);
        assert_eq!(t.count(), 1);
        assert_eq!(t.stats(T0 + 10 * S).total, None);
    }

    #[test]
    fn reordered_sample_is_inserted_in_wall_order() {
        let mut t = RtfTracker::new(WallSource::SenderWall);
        for i in 0..40 {
            if i == 20 {
                continue;
            }
            t.push(T0 + i * 50 * MS, i as f64 * 0.05);
        }
        t.push(T0 + 20 * 50 * MS, 20.0 * 0.05);
        let last = T0 + 39 * 50 * MS;
        assert!(close(t.stats(last).last_1s, 1.0, 1e-9));
        assert!(close(t.rate_1s_hz(last), 20.0, 1e-9));
    }

    #[test]
    fn memory_is_bounded_at_high_rates() {
        // 10 kHz for 20 s: 200,000 samples; storage stays near 2 per 10 ms.
        let mut t = RtfTracker::new(WallSource::SenderWall);
        let n = 200_000;
        for i in 0..n {
            t.push(T0 + i * 100_000, i as f64 * 1e-4);
        }
        assert!(t.recent.len() <= 2 * (LONG_WINDOW_NS / MERGE_SPACING_NS) as usize + 4);
        let last = T0 + (n - 1) * 100_000;
        assert!(close(t.stats(last).last_10s, 1.0, 1e-3));
        // Merged samples are counted at the newest wall time of their group: ±10 ms of samples.
        assert!(close(t.rate_1s_hz(last), 10_000.0, 150.0));
    }

    #[test]
    fn non_finite_sim_time_is_ignored() {
        let mut t = RtfTracker::new(WallSource::SenderWall);
        t.push(T0, f64::NAN);
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn ceil_div_handles_negatives() {
        assert_eq!(ceil_div(5, 2), 3);
        assert_eq!(ceil_div(4, 2), 2);
        assert_eq!(ceil_div(-5, 2), -2);
        assert_eq!(ceil_div(0, 2), 0);
    }
}
