//! Pacing of `sim.step` calls to a target real-time factor, and the stepping statistics
//! (pure: times are seconds on a monotonic clock, passed in).
//!
//! Step k is due at `anchor + k·dt / target_rtf`. A fixed schedule (rather than "sleep
//! dt/rtf after each step") keeps call overhead from accumulating into drift. If the driver
//! falls far behind (CoppeliaSim slower than the target), the schedule is re-anchored
//! instead of bursting to catch up.

use std::time::Duration;

/// Behind schedule by more than this (seconds): give up catching up, re-anchor.
const MAX_LAG_S: f64 = 1.0;

/// Decides when the next `sim.step` is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacer {
    /// Target RTF; 0 (or less) = as fast as possible.
    target_rtf: f64,
    dt_s: f64,
    anchor_s: Option<f64>,
    steps_since_anchor: u64,
}

impl Pacer {
    pub fn new(target_rtf: f64, dt_s: f64) -> Self {
        Self {
            target_rtf: if target_rtf.is_finite() {
                target_rtf
            } else {
                0.0
            },
            dt_s: if dt_s.is_finite() && dt_s > 0.0 {
                dt_s
            } else {
                0.05
            },
            anchor_s: None,
            steps_since_anchor: 0,
        }
    }

    /// Changes dt (read again after a reconnection) and restarts the schedule.
    pub fn set_dt(&mut self, dt_s: f64) {
        *self = Self::new(self.target_rtf, dt_s);
    }

    /// Wall seconds per step at the target (None = unpaced).
    fn period_s(&self) -> Option<f64> {
        (self.target_rtf > 0.0).then(|| self.dt_s / self.target_rtf)
    }

    /// How long to wait from `now_s` before the next step (zero = step now).
    pub fn delay_until_due(&self, now_s: f64) -> Duration {
        let (Some(period), Some(anchor)) = (self.period_s(), self.anchor_s) else {
            return Duration::ZERO;
        };
        let due = anchor + self.steps_since_anchor as f64 * period;
        Duration::try_from_secs_f64((due - now_s).max(0.0)).unwrap_or(Duration::ZERO)
    }

    /// Records a step that started at `started_s`; the first step anchors the schedule.
    pub fn on_step(&mut self, started_s: f64) {
        let Some(period) = self.period_s() else {
            return;
        };
        let anchor = *self.anchor_s.get_or_insert(started_s);
        let due = anchor + self.steps_since_anchor as f64 * period;
        if started_s - due > MAX_LAG_S {
            self.anchor_s = Some(started_s);
            self.steps_since_anchor = 0;
        }
        self.steps_since_anchor += 1;
    }

    /// Forgets the schedule (after a pause, stop or disconnection).
    pub fn reset(&mut self) {
        self.anchor_s = None;
        self.steps_since_anchor = 0;
    }

    pub fn target_rtf(&self) -> f64 {
        self.target_rtf
    }

    pub fn dt_s(&self) -> f64 {
        self.dt_s
    }
}

/// Stepping statistics over windows of wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    total_steps: u64,
    window_start_s: Option<f64>,
    window_steps: u64,
}

/// One report of [`StepStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub steps: u64,
    pub steps_per_s: f64,
    /// steps/s × dt: the RTF the stepping achieved over the window.
    pub achieved_rtf: f64,
    /// (achieved − target) / target; `None` when unpaced (target 0).
    pub pacing_error: Option<f64>,
}

impl Default for StepStats {
    fn default() -> Self {
        Self::new()
    }
}

impl StepStats {
    pub fn new() -> Self {
        Self {
            total_steps: 0,
            window_start_s: None,
            window_steps: 0,
        }
    }

    /// Counts one completed step at `now_s`.
    pub fn on_step(&mut self, now_s: f64) {
        self.window_start_s.get_or_insert(now_s);
        self.total_steps += 1;
        self.window_steps += 1;
    }

    /// If at least `window_s` passed since the window began, returns the report for it and
    /// starts a new window at `now_s`.
    pub fn report_if_due(
        &mut self,
        now_s: f64,
        window_s: f64,
        pacer: &Pacer,
    ) -> Option<StepReport> {
        let start = self.window_start_s?;
        let elapsed = now_s - start;
        if elapsed < window_s || elapsed <= 0.0 {
            return None;
        }
        let steps_per_s = self.window_steps as f64 / elapsed;
        let achieved_rtf = steps_per_s * pacer.dt_s();
        let target = pacer.target_rtf();
        self.window_start_s = Some(now_s);
        self.window_steps = 0;
        Some(StepReport {
            steps: self.total_steps,
            steps_per_s,
            achieved_rtf,
            pacing_error: (target > 0.0).then(|| (achieved_rtf - target) / target),
        })
    }

    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unpaced_is_always_due() {
        let mut p = Pacer::new(0.0, 0.05);
        p.on_step(0.0);
        assert_eq!(p.delay_until_due(0.0), Duration::ZERO);
    }

    #[test]
    fn rtf_two_with_dt_50ms_steps_every_25ms_on_a_fixed_schedule() {
        let mut p = Pacer::new(2.0, 0.05);
        assert_eq!(
            p.delay_until_due(10.0),
            Duration::ZERO,
            "first step at once"
        );
        p.on_step(10.0);
        assert_eq!(p.delay_until_due(10.0).as_micros(), 25_000);
        // A late step does not shift the schedule: the next is still due at 10.050.
        p.on_step(10.030);
        assert_eq!(p.delay_until_due(10.030).as_micros(), 20_000);
    }

    #[test]
    fn far_behind_re_anchors_instead_of_bursting() {
        let mut p = Pacer::new(1.0, 0.05);
        p.on_step(0.0);
        p.on_step(5.0); // 4.95 s late
        assert_eq!(p.delay_until_due(5.0).as_micros(), 50_000);
    }

    #[test]
    fn stats_report_rate_rtf_and_pacing_error() {
        let pacer = Pacer::new(1.0, 0.05);
        let mut s = StepStats::new();
        for i in 0..10 {
            s.on_step(i as f64 * 0.1); // 10 steps/s → RTF 0.5
        }
        assert_eq!(s.report_if_due(0.5, 1.0, &pacer), None, "window not over");
        let r = s.report_if_due(1.0, 1.0, &pacer).unwrap();
        assert_eq!(r.steps, 10);
        assert!((r.steps_per_s - 10.0).abs() < 1e-9);
        assert!((r.achieved_rtf - 0.5).abs() < 1e-9);
        assert!((r.pacing_error.unwrap() + 0.5).abs() < 1e-9);
    }

    #[test]
    fn unpaced_stats_have_no_pacing_error() {
        let pacer = Pacer::new(0.0, 0.01);
        let mut s = StepStats::new();
        s.on_step(0.0);
        s.on_step(0.5);
        let r = s.report_if_due(2.0, 1.0, &pacer).unwrap();
        assert_eq!(r.pacing_error, None);
        assert!((r.steps_per_s - 1.0).abs() < 1e-9);
    }

    proptest! {
        /// A driver that steps exactly when due achieves the target rate.
        #[test]
        fn stepping_when_due_hits_the_target(rtf in 0.1f64..20.0, dt in 0.001f64..0.2, n in 10u64..400) {
            let mut p = Pacer::new(rtf, dt);
            let mut now = 0.0;
            for _ in 0..n {
                now += p.delay_until_due(now).as_secs_f64();
                p.on_step(now);
            }
            let expected = (n - 1) as f64 * dt / rtf;
            prop_assert!((now - expected).abs() < 1e-6 * n as f64, "{} vs {}", now, expected);
        }
    }
}
