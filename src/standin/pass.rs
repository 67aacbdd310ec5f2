//! Running one pass over the child scripts, in CoppeliaSim's order (notes §2).
//!
//! Generic over [`Script`] so the order and the error path are tested with a recording
//! fake; the stand-in plugs in Lua scripts.

use super::scheduler::{Pass, Scheduler};

/// A child script as the pass runner sees it.
pub trait Script {
    /// `sysCall_init` (runs lazily, at the script's first visit).
    fn init(&mut self, pass: &Pass) -> Result<(), String>;
    /// Resumes the `sysCall_thread` coroutine once, if the script has one.
    fn resume_thread(&mut self, pass: &Pass) -> Result<(), String>;
    /// `sysCall_actuation`.
    fn actuation(&mut self, pass: &Pass) -> Result<(), String>;
    /// `sysCall_sensing`.
    fn sensing(&mut self, pass: &Pass) -> Result<(), String>;
    /// `sysCall_cleanup`.
    fn cleanup(&mut self, pass: &Pass) -> Result<(), String>;
}

/// A script's life within one run.
#[derive(Debug)]
pub enum Slot<S> {
    /// Not visited yet in this run: its chunk loads at the first visit.
    Unloaded,
    Alive(S),
    /// Raised an error (or its chunk failed to load): skipped for the rest of the run.
    Dead,
}

/// A script error, reported with the script's alias as CoppeliaSim logs it
/// (`<alias>@childScript`, verbosity 420, notes §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptFault {
    /// Position of the script in the execution order.
    pub script: usize,
    pub message: String,
}

/// Runs one pass: lazy load + `sysCall_init` at the first visit, thread resume and
/// actuation per script, then `gate` (where the remote API server runs and stepping
/// clients hold the simulation), then sensing, then cleanup on the last pass.
///
/// `load(i)` builds script `i` (errors = script error). A failing callback makes the script
/// run its cleanup and die for the run. Returns the faults of this pass.
pub fn run_pass<S: Script>(
    pass: &Pass,
    slots: &mut [Slot<S>],
    load: &mut dyn FnMut(usize) -> Result<S, String>,
    gate: &mut dyn FnMut(),
) -> Vec<ScriptFault> {
    let mut faults = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        visit_actuation(pass, i, slot, load, &mut faults);
    }
    gate();
    for (i, slot) in slots.iter_mut().enumerate() {
        call(pass, i, slot, &mut faults, |s| s.sensing(pass));
    }
    if pass.cleanup {
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Slot::Alive(script) = slot {
                // An error in the final cleanup cannot kill anything further; it is
                // still reported so the user sees it.
                if let Err(message) = script.cleanup(pass) {
                    faults.push(ScriptFault { script: i, message });
                }
            }
            *slot = Slot::Dead;
        }
    }
    faults
}

fn visit_actuation<S: Script>(
    pass: &Pass,
    i: usize,
    slot: &mut Slot<S>,
    load: &mut dyn FnMut(usize) -> Result<S, String>,
    faults: &mut Vec<ScriptFault>,
) {
    if matches!(slot, Slot::Unloaded) {
        match load(i) {
            Ok(script) => *slot = Slot::Alive(script),
            Err(message) => {
                *slot = Slot::Dead;
                faults.push(ScriptFault { script: i, message });
                return;
            }
        }
        call(pass, i, slot, faults, |s| s.init(pass));
    }
    call(pass, i, slot, faults, |s| s.resume_thread(pass));
    call(pass, i, slot, faults, |s| s.actuation(pass));
}

/// After a pass with script errors, CoppeliaSim pauses the simulation when the scene's
/// `pauseAtError` switch is on (notes §2). Returns whether a pause was requested.
pub fn pause_after_faults(
    scheduler: &mut Scheduler,
    faults: &[ScriptFault],
    pause_at_error: bool,
) -> bool {
    !faults.is_empty() && pause_at_error && scheduler.pause()
}

/// Calls one callback of a live script; on error, runs its cleanup and kills it.
fn call<S: Script>(
    pass: &Pass,
    i: usize,
    slot: &mut Slot<S>,
    faults: &mut Vec<ScriptFault>,
    f: impl FnOnce(&mut S) -> Result<(), String>,
) {
    let Slot::Alive(script) = slot else { return };
    if let Err(message) = f(script) {
        faults.push(ScriptFault { script: i, message });
        if let Err(cleanup_error) = script.cleanup(pass) {
            faults.push(ScriptFault {
                script: i,
                message: cleanup_error,
            });
        }
        *slot = Slot::Dead;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::standin::scheduler::{Scheduler, SimState};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records every callback as "<name>:<callback>@<k>".
    pub(crate) struct Recorder {
        name: String,
        log: Rc<RefCell<Vec<String>>>,
        fail_on: Option<(&'static str, u64)>,
        has_thread: bool,
    }

    impl Recorder {
        fn record(&self, what: &str, pass: &Pass) -> Result<(), String> {
            self.log
                .borrow_mut()
                .push(format!("{}:{what}@{}", self.name, pass.index));
            match self.fail_on {
                Some((w, k)) if w == what && k == pass.index => {
                    Err(format!("{} failed", self.name))
                }
                _ => Ok(()),
            }
        }
    }

    impl Script for Recorder {
        fn init(&mut self, p: &Pass) -> Result<(), String> {
            self.record("init", p)
        }
        fn resume_thread(&mut self, p: &Pass) -> Result<(), String> {
            if self.has_thread {
                self.record("thread", p)
            } else {
                Ok(())
            }
        }
        fn actuation(&mut self, p: &Pass) -> Result<(), String> {
            self.record("act", p)
        }
        fn sensing(&mut self, p: &Pass) -> Result<(), String> {
            self.record("sense", p)
        }
        fn cleanup(&mut self, p: &Pass) -> Result<(), String> {
            self.record("cleanup", p)
        }
    }

    struct Harness {
        log: Rc<RefCell<Vec<String>>>,
        names: Vec<&'static str>,
        fail_on: Option<(usize, &'static str, u64)>,
        loads: usize,
    }

    impl Harness {
        fn new(names: &[&'static str]) -> Self {
            Harness {
                log: Rc::default(),
                names: names.to_vec(),
                fail_on: None,
                loads: 0,
            }
        }

        fn run(
            &mut self,
            sched: &mut Scheduler,
            slots: &mut Vec<Slot<Recorder>>,
        ) -> Vec<ScriptFault> {
            self.run_keeping(sched, slots, |_, _| {})
        }

        /// Runs one pass; `before_complete` sees the faults before the pass completes,
        /// where the engine decides about pausing.
        fn run_keeping(
            &mut self,
            sched: &mut Scheduler,
            slots: &mut Vec<Slot<Recorder>>,
            before_complete: impl FnOnce(&mut Scheduler, &[ScriptFault]),
        ) -> Vec<ScriptFault> {
            let pass = sched.next_pass().unwrap();
            if pass.new_run {
                *slots = self.names.iter().map(|_| Slot::Unloaded).collect();
            }
            let log = self.log.clone();
            let names = self.names.clone();
            let fail_on = self.fail_on;
            let loads = &mut self.loads;
            let mut load = |i: usize| {
                *loads += 1;
                Ok(Recorder {
                    name: names[i].to_owned(),
                    log: log.clone(),
                    fail_on: fail_on.filter(|f| f.0 == i).map(|f| (f.1, f.2)),
                    has_thread: i == 0,
                })
            };
            let gate_log = self.log.clone();
            let mut gate = || gate_log.borrow_mut().push(format!("gate@{}", pass.index));
            let faults = run_pass(&pass, slots, &mut load, &mut gate);
            before_complete(sched, &faults);
            sched.complete_pass(&pass);
            faults
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.borrow_mut())
        }
    }

    #[test]
    fn pass_order_matches_coppeliasim() {
        // Scripts are given in execution order (children before parents).
        let mut h = Harness::new(&["child", "parent"]);
        let mut sched = Scheduler::new(0.05);
        let mut slots = Vec::new();
        sched.start();
        h.run(&mut sched, &mut slots);
        assert_eq!(
            h.take(),
            [
                "child:init@0",
                "child:thread@0",
                "child:act@0",
                "parent:init@0",
                "parent:act@0",
                "gate@0",
                "child:sense@0",
                "parent:sense@0"
            ]
        );
        h.run(&mut sched, &mut slots);
        assert_eq!(
            h.take(),
            [
                "child:thread@1",
                "child:act@1",
                "parent:act@1",
                "gate@1",
                "child:sense@1",
                "parent:sense@1"
            ]
        );
    }

    #[test]
    fn stop_runs_cleanup_in_the_last_pass_only() {
        let mut h = Harness::new(&["a"]);
        let mut sched = Scheduler::new(0.05);
        let mut slots = Vec::new();
        sched.start();
        h.run(&mut sched, &mut slots);
        sched.stop();
        h.take();
        h.run(&mut sched, &mut slots);
        h.run(&mut sched, &mut slots);
        assert_eq!(sched.state(), SimState::LastBeforeStop);
        assert!(!h.take().iter().any(|e| e.contains("cleanup")));
        h.run(&mut sched, &mut slots);
        assert_eq!(
            h.take(),
            [
                "a:thread@3",
                "a:act@3",
                "gate@3",
                "a:sense@3",
                "a:cleanup@3"
            ]
        );
        assert_eq!(sched.state(), SimState::Stopped);
    }

    #[test]
    fn script_error_runs_cleanup_and_kills_the_script() {
        let mut h = Harness::new(&["a", "b"]);
        h.fail_on = Some((1, "act", 1));
        let mut sched = Scheduler::new(0.05);
        let mut slots = Vec::new();
        sched.start();
        assert!(h.run(&mut sched, &mut slots).is_empty());
        h.take();
        let faults = h.run(&mut sched, &mut slots);
        assert_eq!(
            faults,
            [ScriptFault {
                script: 1,
                message: "b failed".into()
            }]
        );
        assert_eq!(
            h.take(),
            [
                "a:thread@1",
                "a:act@1",
                "b:act@1",
                "b:cleanup@1",
                "gate@1",
                "a:sense@1"
            ]
        );
        // Dead for the rest of the run, including the final cleanup.
        h.run(&mut sched, &mut slots);
        assert!(!h.take().iter().any(|e| e.starts_with("b:")));
        sched.stop();
        h.run(&mut sched, &mut slots);
        h.run(&mut sched, &mut slots);
        assert!(!h.take().iter().any(|e| e.starts_with("b:")));
    }

    #[test]
    fn script_error_pauses_only_with_pause_at_error() {
        for pause_at_error in [true, false] {
            let mut h = Harness::new(&["a"]);
            h.fail_on = Some((0, "sense", 1));
            let mut sched = Scheduler::new(0.05);
            let mut slots = Vec::new();
            sched.start();
            h.run(&mut sched, &mut slots);
            // A running pass fails (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp,
            // advanceSimulationByOneStep acts on the pause request at its end).
            let faults = h.run_keeping(&mut sched, &mut slots, |s, f| {
                pause_after_faults(s, f, pause_at_error);
            });
            assert_eq!(faults.len(), 1);
            // The failing pass completed; "last before pause" runs, then time freezes.
            let next = sched.next_pass();
            if pause_at_error {
                assert_eq!(next.unwrap().state, SimState::LastBeforePause);
                h.run(&mut sched, &mut slots);
                assert_eq!(sched.state(), SimState::Paused);
                assert_eq!(sched.next_pass(), None);
            } else {
                assert_eq!(next.unwrap().state, SimState::Running);
            }
            assert!(!pause_after_faults(&mut sched, &[], true));
        }
    }

    #[test]
    fn scripts_reload_for_each_run() {
        let mut h = Harness::new(&["a"]);
        let mut sched = Scheduler::new(0.05);
        let mut slots = Vec::new();
        for _ in 0..2 {
            sched.start();
            h.run(&mut sched, &mut slots);
            sched.stop();
            while sched.next_pass().is_some() {
                h.run(&mut sched, &mut slots);
            }
        }
        assert_eq!(h.loads, 2);
        let inits = h.take().iter().filter(|e| e.contains("init")).count();
        assert_eq!(inits, 2);
    }
}
