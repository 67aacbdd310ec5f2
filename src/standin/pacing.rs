//! Wall-clock pacing decisions (pure: the caller passes `now` and sleeps).
//!
//! Real-time mode (notes §3): a pass runs only when simulation time lags wall time × RTF,
//! measured from an anchor taken when the run starts or resumes. `--passes-per-frame N`
//! groups passes: the first pass of each group waits for its time, the others follow
//! back-to-back, as CoppeliaSim with a GUI may run several passes per rendered frame.
//! A stall (`--stall-at T --stall-for D`) adds one wall delay before the first pass at t ≥ T.

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

/// Pacing state of one stand-in.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: Speed,
    passes_per_frame: u64,
    stall: Option<Stall>,
    stalled: bool,
    /// Wall instant and pass index from which real time is measured.
    anchor: Option<(Instant, u64)>,
}

impl Pacer {
    pub fn new(speed: Speed, passes_per_frame: u32, stall: Option<Stall>) -> Self {
        Pacer {
            speed,
            passes_per_frame: u64::from(passes_per_frame.max(1)),
            stall,
            stalled: false,
            anchor: None,
        }
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    /// Forgets the anchor: the next pass starts a new real-time reference (run start,
    /// resume after pause).
    pub fn reset(&mut self, new_run: bool) {
        self.anchor = None;
        if new_run {
            self.stalled = false;
        }
    }

    /// How long to wait before running pass `index` at `time_s`.
    pub fn delay_before(&mut self, index: u64, time_s: f64, dt_s: f64, now: Instant) -> Duration {
        let (wall0, index0) = *self.anchor.get_or_insert((now, index));
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
        let rel = index.saturating_sub(index0);
        let group_start = rel - rel % self.passes_per_frame;
        let target = wall0 + Duration::from_secs_f64(group_start as f64 * dt_s / rtf);
        target.saturating_duration_since(now) + stall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f64 = 0.05;

    #[test]
    fn max_speed_never_waits() {
        let mut p = Pacer::new(Speed::MaxSpeed, 1, None);
        let t0 = Instant::now();
        for k in 0..100 {
            assert_eq!(p.delay_before(k, k as f64 * DT, DT, t0), Duration::ZERO);
        }
    }

    #[test]
    fn real_time_runs_a_pass_when_sim_time_lags_wall_time() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, None);
        let t0 = Instant::now();
        assert_eq!(p.delay_before(0, 0.0, DT, t0), Duration::ZERO);
        // Pass 1 (t = 0.05) is due 50 ms after the anchor.
        assert_eq!(p.delay_before(1, DT, DT, t0), Duration::from_millis(50));
        assert_eq!(
            p.delay_before(1, DT, DT, t0 + Duration::from_millis(20)),
            Duration::from_millis(30)
        );
        assert_eq!(
            p.delay_before(1, DT, DT, t0 + Duration::from_millis(80)),
            Duration::ZERO
        );
    }

    #[test]
    fn rtf_scales_wall_time() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 2.0 }, 1, None);
        let t0 = Instant::now();
        p.delay_before(0, 0.0, DT, t0);
        assert_eq!(
            p.delay_before(4, 4.0 * DT, DT, t0),
            Duration::from_millis(100)
        );
        let mut slow = Pacer::new(Speed::RealTime { rtf: 0.5 }, 1, None);
        slow.delay_before(0, 0.0, DT, t0);
        assert_eq!(slow.delay_before(1, DT, DT, t0), Duration::from_millis(100));
    }

    #[test]
    fn passes_per_frame_makes_bursts() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 4, None);
        let t0 = Instant::now();
        let delays: Vec<_> = (0..8)
            .map(|k| p.delay_before(k, k as f64 * DT, DT, t0))
            .collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            delays,
            [
                ms(0),
                ms(0),
                ms(0),
                ms(0),
                ms(200),
                ms(200),
                ms(200),
                ms(200)
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
        assert_eq!(p.delay_before(1, 0.05, DT, t0), Duration::ZERO);
        assert_eq!(p.delay_before(2, 0.1, DT, t0), Duration::from_secs(1));
        assert_eq!(p.delay_before(3, 0.15, DT, t0), Duration::ZERO);
        p.reset(true);
        assert_eq!(p.delay_before(2, 0.1, DT, t0), Duration::from_secs(1));
    }

    #[test]
    fn reset_re_anchors_after_pause() {
        let mut p = Pacer::new(Speed::RealTime { rtf: 1.0 }, 1, None);
        let t0 = Instant::now();
        p.delay_before(0, 0.0, DT, t0);
        p.reset(false);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.delay_before(5, 5.0 * DT, DT, later), Duration::ZERO);
        assert_eq!(
            p.delay_before(6, 6.0 * DT, DT, later),
            Duration::from_millis(50)
        );
    }
}
