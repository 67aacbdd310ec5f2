//! From successive polls of CoppeliaSim to events (pure: the wall time comes with the poll).

use crate::remote_api::constants::SimState;
use crate::time::UnixNanos;

use super::DriverEvent;

/// Simulation time may only grow while a run lasts; a drop larger than this (seconds)
/// means a new run started (CoppeliaSim resets it to 0 at each start, notes §3). The
/// tolerance absorbs float noise only.
const BACKWARDS_TOLERANCE_S: f64 = 1e-9;

/// One poll result: `sim.getSimulationTime` and `sim.getSimulationState` at `wall_ns`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub wall_ns: UnixNanos,
    pub sim_time_s: f64,
    pub state: SimState,
}

/// What one poll means.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub events: Vec<DriverEvent>,
    /// A stop happened since the last poll (state went through stopped, or time went
    /// back): a remote `sim.stopSimulation` resets every client's stepping level, another
    /// stop keeps it (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua),
    /// so a stepping driver makes sure its level is exactly 1 again.
    pub stepping_may_be_lost: bool,
}

/// Remembers the previous poll.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    last: Option<Poll>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last poll seen, if any.
    pub fn last(&self) -> Option<Poll> {
        self.last
    }

    /// Compares `poll` with the previous one and returns the events it implies.
    pub fn observe(&mut self, poll: Poll) -> Observation {
        let obs = transition(self.last.as_ref(), &poll);
        self.last = Some(poll);
        obs
    }
}

/// The pure transition: (previous poll, new poll) → events.
pub fn transition(prev: Option<&Poll>, poll: &Poll) -> Observation {
    let mut events = Vec::new();
    let mut stepping_may_be_lost = false;
    let from = prev.map(|p| p.state);
    if from != Some(poll.state) {
        events.push(DriverEvent::StateChanged {
            wall_ns: poll.wall_ns,
            from,
            to: poll.state,
        });
        stepping_may_be_lost |= poll.state.is_stopped();
        stepping_may_be_lost |= from.is_some_and(SimState::is_stopped) && poll.state.is_advancing();
    }
    if let Some(p) = prev {
        if poll.sim_time_s < p.sim_time_s - BACKWARDS_TOLERANCE_S {
            events.push(DriverEvent::Restarted {
                wall_ns: poll.wall_ns,
                previous_sim_time_s: p.sim_time_s,
                sim_time_s: poll.sim_time_s,
            });
            stepping_may_be_lost = true;
        }
    }
    events.push(DriverEvent::SimTime {
        wall_ns: poll.wall_ns,
        sim_time_s: poll.sim_time_s,
    });
    Observation {
        events,
        stepping_may_be_lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn poll(wall_s: i64, sim_time_s: f64, state: SimState) -> Poll {
        Poll {
            wall_ns: wall_s * 1_000_000_000,
            sim_time_s,
            state,
        }
    }

    fn kinds(obs: &Observation) -> Vec<&'static str> {
        obs.events.iter().map(DriverEvent::kind).collect()
    }

    #[test]
    fn first_poll_reports_the_state_and_time() {
        let mut t = Tracker::new();
        let obs = t.observe(poll(1, 0.0, SimState::Stopped));
        assert_eq!(
            obs.events[0],
            DriverEvent::StateChanged {
                wall_ns: 1_000_000_000,
                from: None,
                to: SimState::Stopped
            }
        );
        assert_eq!(kinds(&obs), ["state_changed", "sim_time"]);
    }

    #[test]
    fn steady_running_only_reports_time() {
        let mut t = Tracker::new();
        t.observe(poll(1, 1.0, SimState::Running));
        let obs = t.observe(poll(2, 2.0, SimState::Running));
        assert_eq!(kinds(&obs), ["sim_time"]);
        assert!(!obs.stepping_may_be_lost);
    }

    #[test]
    fn state_change_names_both_states() {
        let mut t = Tracker::new();
        t.observe(poll(1, 1.0, SimState::Running));
        let obs = t.observe(poll(2, 1.0, SimState::Paused));
        assert_eq!(
            obs.events[0],
            DriverEvent::StateChanged {
                wall_ns: 2_000_000_000,
                from: Some(SimState::Running),
                to: SimState::Paused
            }
        );
        assert!(!obs.stepping_may_be_lost, "pause keeps stepping");
    }

    #[test]
    fn time_going_back_is_a_restart_and_stepping_must_be_renewed() {
        let mut t = Tracker::new();
        t.observe(poll(1, 12.5, SimState::Running));
        let obs = t.observe(poll(2, 0.05, SimState::Running));
        assert_eq!(kinds(&obs), ["restarted", "sim_time"]);
        assert_eq!(
            obs.events[0],
            DriverEvent::Restarted {
                wall_ns: 2_000_000_000,
                previous_sim_time_s: 12.5,
                sim_time_s: 0.05
            }
        );
        assert!(obs.stepping_may_be_lost);
    }

    #[test]
    fn stop_then_start_is_seen_even_when_time_is_not_yet_back() {
        let mut t = Tracker::new();
        t.observe(poll(1, 3.0, SimState::Running));
        let stop = t.observe(poll(2, 3.1, SimState::Stopped));
        assert!(stop.stepping_may_be_lost);
        let start = t.observe(poll(3, 3.1, SimState::FirstAfterStop));
        assert!(start.stepping_may_be_lost);
        assert_eq!(kinds(&start), ["state_changed", "sim_time"]);
    }

    proptest! {
        /// Reference: a restart is reported exactly when time decreased.
        #[test]
        fn restart_iff_time_decreased(times in proptest::collection::vec(0.0f64..100.0, 1..40)) {
            let mut t = Tracker::new();
            let mut prev: Option<f64> = None;
            for (i, s) in times.iter().enumerate() {
                let obs = t.observe(poll(i as i64, *s, SimState::Running));
                let restarted = obs.events.iter().any(|e| matches!(e, DriverEvent::Restarted { .. }));
                prop_assert_eq!(restarted, prev.is_some_and(|p| *s < p - BACKWARDS_TOLERANCE_S));
                let last_is_time = matches!(obs.events.last(), Some(DriverEvent::SimTime { .. }));
                prop_assert!(last_is_time);
                prev = Some(*s);
            }
        }
    }
}
