//! Wall-clock pacing decisions (pure: the caller passes `now` and sleeps).
//!
//! Real-time mode follows CoppeliaSim (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp,
//! `isRealTimeCalculationStepNeeded`, `advanceSimulationByOneStep`; the same at
//! coppeliasim-v4.3.0-rev12 with its `catchUpIfLate` switch off, its default): a real-time
//! reference R grows by the wall time between passes × RTF and is clamped to simulation time
//! plus dt after each pass; the next pass (at simulation time S) runs once S + dt < R + (wall
//! time since the last pass) × RTF. After a stall R is clamped, so at most one pass runs at
//! once and the lost time stays lost: no catch-up burst.
//!
//! `--passes-per-frame N` groups passes: the first pass of each group waits for its time, the
//! others follow back-to-back, as CoppeliaSim with a GUI may run several passes per rendered
//! frame. A stall (`--stall-at T --stall-for D`) adds one wall delay before the first pass at
//! t ≥ T.

use std::time::{Duration, Instant};

/// How fast passes run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Real time scaled by `rtf` (1.0 = real time; 2.0 = twice as fast).
    RealTime { rtf: f64 },
    /// No sleeping at all.
    MaxSpeed,
}

/// One wall stall at a simulation time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    pub at_s: f64,
    pub duration: Duration,
}

/// CoppeliaSim's real-time reference.
#[derive(Debug, Clone, Copy)]
struct RealTimeClock {
    /// `simulationTime_real_noCatchUp`, seconds of simulation time.
    reference_s: f64,
    /// `simulationTime_real_lastInMs`: wall instant of the last pass (or of start/resume).
    last: Instant,
}

/// Pacing state of one stand-in.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: Speed,
    passes_per_frame: u64,
    stall: Option<Stall>,
    stalled: bool,
    clock: Option<RealTimeClock>,
    /// Passes run in the current group (`--passes-per-frame`).
    in_group: u64,
}

impl Pacer {
    pub fn new(speed: Speed, passes_per_frame: u32, stall: Option<Stall>) -> Self {
        Pacer {
            speed,
            passes_per_frame: u64::from(passes_per_frame.max(1)),
            stall,
            stalled: false,
            clock: None,
            in_group: 0,
        }
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// A run starts (`new_run`: reference 0) or resumes after a pause (reference kept): the
    /// wall clock restarts from `now` (`CSimulation::startOrResumeSimulation`).
    pub fn start(&mut self, new_run: bool, now: Instant) {
        let reference_s = match (new_run, self.clock) {
            (false, Some(c)) => c.reference_s,
            _ => 0.0,
        };
        self.clock = Some(RealTimeClock {
            reference_s,
            last: now,
        });
        self.in_group = 0;
        if new_run {
            self.stalled = false;
        }
    }

    /// How long to wait before running the pass at simulation time `time_s`.
    pub fn delay_before(&mut self, time_s: f64, dt_s: f64, now: Instant) -> Duration {
        let stall = match self.stall {
            Some(s) if !self.stalled && time_s >= s.at_s => {
                self.stalled = true;
                s.duration
            }
            _ => Duration::ZERO,
        };
        let Speed::RealTime { rtf } = self.speed else {
            return stall;
        };
        if self.in_group % self.passes_per_frame != 0 {
            return stall; // the rest of a group follows back-to-back
        }
        let clock = *self.clock.get_or_insert(RealTimeClock {
            reference_s: 0.0,
            last: now,
        });
        // Due once time_s + dt < reference + (now - last) × rtf.
        let lag_s = (time_s + dt_s - clock.reference_s) / rtf;
        let due = clock.last + Duration::try_from_secs_f64(lag_s.max(0.0)).unwrap_or_default();
        due.saturating_duration_since(now) + stall
    }

    /// The pass at simulation time `time_s` has run and completed at `now`: the reference
    /// grows by the wall time since the last pass × RTF, clamped to the new simulation time
    /// + dt.
    pub fn after_pass(&mut self, time_s: f64, dt_s: f64, now: Instant) {
        self.in_group += 1;
        let Speed::RealTime { rtf } = self.speed else {
            return;
        };
        let clock = self.clock.get_or_insert(RealTimeClock {
            reference_s: 0.0,
            last: now,
        });
        let grown = clock.reference_s + now.duration_since(clock.last).as_secs_f64() * rtf;
        clock.reference_s = grown.min(time_s + dt_s + dt_s);
        clock.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f64 = 0.05;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs `passes` passes, each taking `work(k)` of wall time, sleeping as told; returns the
    /// wall instant (since t0) at which each pass started.
    fn simulate(p: &mut Pacer, passes: u64, work: impl Fn(u64) -> Duration) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut now = t0;
        p.start(true, now);
        let mut starts = Vec::new();
        for k in 0..passes {
            let t = k as f64 * DT;
            now += p.delay_before(t, DT, now);
            starts.push(now - t0);
            now += work(k);
            p.after_pass(t, DT, now);
        }
        starts
    }

    #[test]
    fn max_speed_never_waits() {
        let mut p = Pacer::new(Speed::MaxSpeed, 1, None);
        let starts = simulate(&mut p, 100, |_| Duration::ZERO);
        assert!(starts.iter().all(|s| s.is_zero()));
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, isRealTimeCalculationStepNeeded:
    /// the pass at S runs once S + dt of wall time has passed.
    #[test]
    fn real_time_runs_one_pass_per_dt() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, None);
        let starts = simulate(&mut p, 5, |_| ms(1));
        assert_eq!(starts, [ms(50), ms(100), ms(150), ms(200), ms(250)]);
    }

    #[test]
    fn rtf_scales_wall_time() {
        let mut fast = Pacer::new(Speed::RealTime { rtf: 2.0 }, 1, None);
        assert_eq!(simulate(&mut fast, 3, |_| ms(0)), [ms(25), ms(50), ms(75)]);
        let mut slow = Pacer::new(Speed::RealTime { rtf: 0.5 }, 1, None);
        assert_eq!(simulate(&mut slow, 2, |_| ms(0)), [ms(100), ms(200)]);
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, advanceSimulationByOneStep clamps
    /// `simulationTime_real_noCatchUp` to simulation time + dt: after a 2 s stall one pass runs
    /// at once, then the pace is one per dt again; the 2 s stay lost.
    #[test]
    fn real_time_does_not_catch_up_after_a_stall() {
        let stall = Stall {
            at_s: 0.5,
            duration: Duration::from_secs(2),
        };
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, Some(stall));
        let starts = simulate(&mut p, 30, |_| Duration::ZERO);
        // Pass 10 (t = 0.5) would start at 550 ms; it starts 2 s later.
        assert_eq!(starts[10], ms(2550));
        // Pass 11 runs at once (the clamp leaves one dt of lead), then one per dt.
        assert_eq!(starts[11], ms(2550));
        assert_eq!(starts[12], ms(2600));
        assert_eq!(starts[29], ms(2550 + 18 * 50));
        // Over the run: 30 passes (1.5 s of simulation) in 2.5 + 0.9 s of wall time.
    }

    /// The same stall inside a pass (a slow script) is clamped the same way.
    #[test]
    fn a_slow_pass_is_not_made_up_for() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, None);
        let starts = simulate(&mut p, 6, |k| if k == 1 { ms(1000) } else { ms(0) });
        assert_eq!(
            starts,
            [ms(50), ms(100), ms(1100), ms(1150), ms(1200), ms(1250)]
        );
    }

    #[test]
    fn passes_per_frame_makes_bursts() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 4, None);
        let starts = simulate(&mut p, 8, |_| Duration::ZERO);
        assert_eq!(
            starts,
            [
                ms(50),
                ms(50),
                ms(50),
                ms(50),
                ms(250),
                ms(250),
                ms(250),
                ms(250)
            ]
        );
    }

    #[test]
    fn stall_happens_once_per_run() {
        let stall = Stall {
            at_s: 0.1,
            duration: Duration::from_secs(1),
        };
        let mut p = Pacer::new(Speed::MaxSpeed, 1, Some(stall));
        let t0 = Instant::now();
        p.start(true, t0);
        assert_eq!(p.delay_before(0.05, DT, t0), Duration::ZERO);
        assert_eq!(p.delay_before(0.1, DT, t0), Duration::from_secs(1));
        assert_eq!(p.delay_before(0.15, DT, t0), Duration::ZERO);
        p.start(true, t0);
        assert_eq!(p.delay_before(0.1, DT, t0), Duration::from_secs(1));
    }

    #[test]
    fn resume_restarts_the_wall_clock_but_keeps_the_reference() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, None);
        let t0 = Instant::now();
        p.start(true, t0);
        let first = t0 + p.delay_before(0.0, DT, t0);
        p.after_pass(0.0, DT, first);
        let later = t0 + Duration::from_secs(10);
        p.start(false, later);
        assert_eq!(p.delay_before(DT, DT, later), ms(50));
    }
}
