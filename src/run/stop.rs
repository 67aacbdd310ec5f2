//! When a run ends (pure): duration, target simulation time, idle timeout.

use std::time::Duration;

use crate::time::UnixNanos;

/// Why the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    Duration(Duration),
    /// Every dummy reached `--until-sim-time` (or said BYE).
    SimTimeReached(f64),
    /// No message for `--idle-timeout` after the first one.
    Idle(Duration),
    Signal,
    UserQuit,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Duration(d) => {
                write!(f, "--duration {} elapsed", humantime::format_duration(*d))
            }
            StopReason::SimTimeReached(t) => write!(f, "every dummy reached simulation time {t} s"),
            StopReason::Idle(d) => write!(
                f,
                "no message for {} (--idle-timeout)",
                humantime::format_duration(*d)
            ),
            StopReason::Signal => write!(f, "interrupted (Ctrl-C / SIGTERM)"),
            StopReason::UserQuit => write!(f, "quit from the live view"),
        }
    }
}

/// The stop conditions of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopRules {
    pub duration: Option<Duration>,
    pub until_sim_time_s: Option<f64>,
    /// `None` or zero: never stop for silence.
    pub idle_timeout: Option<Duration>,
}

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Start of measurement (after all expected dummies arrived), if it has started.
    pub measuring_since_ns: Option<UnixNanos>,
    /// Arrival of the latest message, if any.
    pub last_message_ns: Option<UnixNanos>,
    /// Whether silence should count now (false while the simulation is known to be paused).
    pub idle_counts: bool,
    /// Per dummy: highest simulation time, and whether it ended (BYE).
    pub dummies: Vec<(Option<f64>, bool)>,
}

impl StopRules {
    /// When `--duration` ends, once measurement has started: the shell wakes exactly then,
    /// so a run is not longer than asked by up to a tick.
    pub fn deadline(&self, p: &Progress) -> Option<UnixNanos> {
        let d = i64::try_from(self.duration?.as_nanos()).unwrap_or(i64::MAX);
        Some(p.measuring_since_ns?.saturating_add(d))
    }

    /// The first rule that says stop, at wall time `now_ns`.
    pub fn check(&self, p: &Progress, now_ns: UnixNanos) -> Option<StopReason> {
        if let (Some(d), Some(since)) = (self.duration, p.measuring_since_ns) {
            if now_ns - since >= d.as_nanos() as i64 {
                return Some(StopReason::Duration(d));
            }
        }
        if let Some(target) = self.until_sim_time_s {
            let reached =
                |&(t, ended): &(Option<f64>, bool)| ended || t.is_some_and(|t| t >= target);
            if !p.dummies.is_empty() && p.dummies.iter().all(reached) {
                return Some(StopReason::SimTimeReached(target));
            }
        }
        if let (Some(idle), Some(last)) = (
            self.idle_timeout.filter(|d| !d.is_zero()),
            p.last_message_ns,
        ) {
            if p.idle_counts && now_ns - last >= idle.as_nanos() as i64 {
                return Some(StopReason::Idle(idle));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn duration_counts_from_measurement_start() {
        let r = StopRules {
            duration: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let mut p = Progress::default();
        assert_eq!(r.check(&p, 100 * S), None, "not measuring yet");
        p.measuring_since_ns = Some(10 * S);
        assert_eq!(r.check(&p, 12 * S), None);
        assert_eq!(
            r.check(&p, 13 * S),
            Some(StopReason::Duration(Duration::from_secs(3)))
        );
        assert_eq!(r.deadline(&p), Some(13 * S), "the shell wakes exactly then");
        assert_eq!(StopRules::default().deadline(&p), None);
        p.measuring_since_ns = None;
        assert_eq!(r.deadline(&p), None, "not measuring yet: no deadline");
    }

    #[test]
    fn sim_time_needs_every_dummy() {
        let r = StopRules {
            until_sim_time_s: Some(0.1),
            ..Default::default()
        };
        let mut p = Progress {
            dummies: vec![(Some(0.1), false), (Some(0.05), false)],
            ..Default::default()
        };
        assert_eq!(r.check(&p, 0), None);
        p.dummies[1].1 = true; // said BYE
        assert_eq!(r.check(&p, 0), Some(StopReason::SimTimeReached(0.1)));
        p.dummies.clear();
        assert_eq!(r.check(&p, 0), None, "no dummy yet");
    }

    #[test]
    fn idle_starts_after_first_message_and_respects_pause() {
        let r = StopRules {
            idle_timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let mut p = Progress {
            idle_counts: true,
            ..Default::default()
        };
        assert_eq!(r.check(&p, 100 * S), None, "nothing received yet");
        p.last_message_ns = Some(10 * S);
        assert_eq!(r.check(&p, 14 * S), None);
        assert_eq!(
            r.check(&p, 15 * S),
            Some(StopReason::Idle(Duration::from_secs(5)))
        );
        p.idle_counts = false;
        assert_eq!(r.check(&p, 50 * S), None);
        let off = StopRules {
            idle_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        p.idle_counts = true;
        assert_eq!(off.check(&p, 50 * S), None);
    }
}
