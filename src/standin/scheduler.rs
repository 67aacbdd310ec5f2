//! The simulation state machine: which pass runs next, with which state and time.
//!
//! Pure: fed with requests (start, stop, pause) and pass completions, it returns what to run.
//! The rules are CoppeliaSim's (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp,
//! `advanceSimulationByOneStep`, `stopSimulation`, `pauseSimulation`): pass k runs at
//! t = k·dt; the state of the next pass is decided when a pass completes, and requests are
//! acted on only from the "running" state, so a stop runs "about to stop", then "last before
//! stop" (with `sysCall_cleanup`) after the next running pass boundary; pause freezes time and
//! runs no pass; a stop while paused resumes ("first after pause", then running) into those
//! passes; each run starts from scratch.

/// Simulation states with CoppeliaSim's numeric values (`sim.simulation_*`, notes §6): the
/// same type the remote API client decodes, so server and client cannot disagree.
pub use crate::remote_api::SimState;

/// One pass to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Pass index k within the run (0 for the first pass).
    pub index: u64,
    /// Simulation time while the pass runs, k·dt, seconds.
    pub time_s: f64,
    /// State reported during the pass.
    pub state: SimState,
    /// First pass of a run: scripts are (re)loaded from scratch before it.
    pub new_run: bool,
    /// Last pass of a run: `sysCall_cleanup` runs after sensing.
    pub cleanup: bool,
}

/// CoppeliaSim's simulation state machine.
#[derive(Debug, Clone)]
pub struct Scheduler {
    dt_s: f64,
    state: SimState,
    /// Index of the next pass to run (equals passes completed in this run).
    next_index: u64,
    stop_requested: bool,
    pause_requested: bool,
    runs: u64,
}

impl Scheduler {
    /// A stopped simulation with time step `dt_s` seconds.
    pub fn new(dt_s: f64) -> Self {
        Scheduler {
            dt_s,
            state: SimState::Stopped,
            next_index: 0,
            stop_requested: false,
            pause_requested: false,
            runs: 0,
        }
    }

    pub fn dt_s(&self) -> f64 {
        self.dt_s
    }

    /// Changes the time step; only allowed while stopped (as in CoppeliaSim).
    pub fn set_dt_s(&mut self, dt_s: f64) -> bool {
        let allowed = self.state == SimState::Stopped && dt_s.is_finite() && dt_s > 0.0;
        if allowed {
            self.dt_s = dt_s;
        }
        allowed
    }

    /// The state `sim.getSimulationState()` reports now.
    pub fn state(&self) -> SimState {
        self.state
    }

    /// Simulation time now: k·dt of the pass running or about to run; kept after a stop
    /// until the next start (notes §3, inferred).
    pub fn time_s(&self) -> f64 {
        self.next_index as f64 * self.dt_s
    }

    /// Number of runs started so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// `sim.startSimulation`: starts a new run when stopped, resumes when paused.
    /// Returns false when the simulation was already running.
    pub fn start(&mut self) -> bool {
        match self.state {
            SimState::Stopped => {
                self.state = SimState::FirstAfterStop;
                self.next_index = 0;
                self.stop_requested = false;
                self.pause_requested = false;
                self.runs += 1;
                true
            }
            SimState::Paused => {
                self.state = SimState::FirstAfterPause;
                self.pause_requested = false;
                true
            }
            _ => {
                self.pause_requested = false;
                false
            }
        }
    }

    /// `sim.stopSimulation`: not immediate. From pause, the simulation resumes ("first after
    /// pause") and stops from there (`CSimulation::stopSimulation`). Returns false when
    /// already stopped.
    pub fn stop(&mut self) -> bool {
        match self.state {
            SimState::Stopped => false,
            SimState::AboutToStop | SimState::LastBeforeStop => true,
            SimState::Paused => {
                self.state = SimState::FirstAfterPause;
                self.stop_requested = true;
                true
            }
            _ => {
                self.stop_requested = true;
                true
            }
        }
    }

    /// `sim.pauseSimulation`: taken only in the first-after-stop, running and
    /// first-after-pause states and when no stop is requested (`CSimulation::pauseSimulation`).
    /// Returns whether the request was taken.
    pub fn pause(&mut self) -> bool {
        let can = !self.stop_requested
            && matches!(
                self.state,
                SimState::FirstAfterStop | SimState::Running | SimState::FirstAfterPause
            );
        if can {
            self.pause_requested = true;
        }
        can
    }

    /// The pass to run next, or None when stopped or paused (no pass runs).
    pub fn next_pass(&self) -> Option<Pass> {
        if matches!(self.state, SimState::Stopped | SimState::Paused) {
            return None;
        }
        Some(Pass {
            index: self.next_index,
            time_s: self.time_s(),
            state: self.state,
            new_run: self.state == SimState::FirstAfterStop,
            cleanup: self.state == SimState::LastBeforeStop,
        })
    }

    /// Records that `ran` (returned by [`Scheduler::next_pass`]) ran: time advances by dt and
    /// the state moves on; pending requests are acted on only from "running"
    /// (`CSimulation::advanceSimulationByOneStep`).
    pub fn complete_pass(&mut self, ran: &Pass) {
        if ran.index != self.next_index
            || matches!(self.state, SimState::Stopped | SimState::Paused)
        {
            return;
        }
        self.next_index += 1;
        self.state = match self.state {
            SimState::Running if self.stop_requested => {
                self.stop_requested = false;
                SimState::AboutToStop
            }
            SimState::Running if self.pause_requested => {
                self.pause_requested = false;
                SimState::LastBeforePause
            }
            SimState::LastBeforePause => SimState::Paused,
            SimState::AboutToStop => SimState::LastBeforeStop,
            SimState::LastBeforeStop => SimState::Stopped,
            _ => SimState::Running,
        };
        if self.state == SimState::Stopped {
            self.stop_requested = false;
            self.pause_requested = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_passes(s: &mut Scheduler, n: usize) -> Vec<Pass> {
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(p) = s.next_pass() else { break };
            out.push(p);
            s.complete_pass(&p);
        }
        out
    }

    #[test]
    fn stopped_runs_nothing() {
        let s = Scheduler::new(0.05);
        assert_eq!(s.next_pass(), None);
        assert_eq!(s.state().raw(), 0);
    }

    #[test]
    fn time_is_k_times_dt() {
        let mut s = Scheduler::new(0.05);
        assert!(s.start());
        let passes = run_passes(&mut s, 5);
        let times: Vec<f64> = passes.iter().map(|p| p.time_s).collect();
        assert_eq!(times, [0.0, 0.05, 0.1, 0.15000000000000002, 0.2]);
        for (k, p) in passes.iter().enumerate() {
            assert_eq!(p.index, k as u64);
            assert_eq!(p.time_s, k as f64 * 0.05);
        }
        assert_eq!(passes[0].state, SimState::FirstAfterStop);
        assert!(passes[0].new_run);
        assert!(passes[1..]
            .iter()
            .all(|p| p.state == SimState::Running && !p.new_run));
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, advanceSimulationByOneStep.
    #[test]
    fn stop_between_running_passes_runs_two_more_passes_with_cleanup_in_the_last() {
        let mut s = Scheduler::new(0.1);
        s.start();
        run_passes(&mut s, 3);
        assert!(s.stop());
        // Requested between passes: the next pass still runs as "running", the request is
        // acted on when it completes.
        let tail = run_passes(&mut s, 10);
        let states: Vec<_> = tail.iter().map(|p| p.state).collect();
        assert_eq!(
            states,
            [
                SimState::Running,
                SimState::AboutToStop,
                SimState::LastBeforeStop
            ]
        );
        assert!(!tail[1].cleanup);
        assert!(tail[2].cleanup);
        assert_eq!(s.state(), SimState::Stopped);
        // Time is kept after the stop (6 passes ran).
        assert_eq!(s.time_s(), 6.0 * 0.1);
    }

    #[test]
    fn pause_freezes_time_until_resumed() {
        let mut s = Scheduler::new(0.05);
        s.start();
        run_passes(&mut s, 2);
        assert!(s.pause());
        let p = run_passes(&mut s, 10);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].state, SimState::LastBeforePause);
        assert_eq!(s.state().raw(), 8);
        let frozen = s.time_s();
        assert_eq!(s.next_pass(), None);
        assert_eq!(s.time_s(), frozen);
        assert!(s.start());
        let p = run_passes(&mut s, 2);
        assert_eq!(p[0].state, SimState::FirstAfterPause);
        assert_eq!(p[0].time_s, frozen);
        assert!(!p[0].new_run);
        assert_eq!(p[1].state, SimState::Running);
    }

    /// coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, stopSimulation (paused case).
    #[test]
    fn stop_while_paused_resumes_into_the_stop_passes() {
        let mut s = Scheduler::new(0.05);
        s.start();
        run_passes(&mut s, 2);
        s.pause();
        run_passes(&mut s, 10);
        assert_eq!(s.state(), SimState::Paused);
        assert!(s.stop());
        let p = run_passes(&mut s, 10);
        let states: Vec<_> = p.iter().map(|p| p.state).collect();
        assert_eq!(
            states,
            [
                SimState::FirstAfterPause,
                SimState::Running,
                SimState::AboutToStop,
                SimState::LastBeforeStop
            ]
        );
    }

    /// A request during the first pass is acted on only from "running".
    #[test]
    fn requests_wait_for_the_running_state() {
        let mut s = Scheduler::new(0.05);
        s.start();
        let first = s.next_pass().unwrap();
        assert!(s.pause());
        s.complete_pass(&first);
        let states: Vec<_> = run_passes(&mut s, 10).iter().map(|p| p.state).collect();
        assert_eq!(states, [SimState::Running, SimState::LastBeforePause]);
    }

    #[test]
    fn a_new_run_restarts_at_time_zero() {
        let mut s = Scheduler::new(0.05);
        s.start();
        run_passes(&mut s, 3);
        s.stop();
        run_passes(&mut s, 3);
        assert!(s.start());
        let p = s.next_pass().unwrap();
        assert!(p.new_run);
        assert_eq!(p.time_s, 0.0);
        assert_eq!(s.runs(), 2);
    }

    #[test]
    fn a_stop_requested_during_a_pass_still_runs_both_stop_passes() {
        let mut s = Scheduler::new(0.05);
        s.start();
        run_passes(&mut s, 2);
        let p = s.next_pass().unwrap();
        assert_eq!(p.state, SimState::Running);
        s.stop(); // e.g. a remote client at the add-on point of this pass
        s.complete_pass(&p);
        let states: Vec<_> = run_passes(&mut s, 10).iter().map(|p| p.state).collect();
        assert_eq!(states, [SimState::AboutToStop, SimState::LastBeforeStop]);
    }

    #[test]
    fn requests_that_do_not_apply_are_refused() {
        let mut s = Scheduler::new(0.05);
        assert!(!s.stop());
        assert!(!s.pause());
        s.start();
        assert!(!s.start());
        s.stop();
        assert!(!s.pause());
        assert!(!s.set_dt_s(0.01));
        run_passes(&mut s, 10);
        assert!(s.set_dt_s(0.01));
        assert!(!s.set_dt_s(-1.0));
    }
}
