//! What the remote-API driver's events mean for a run (pure): they update the
//! simulation-wide [`SimMetrics`] and become notices for the log and `events.jsonl`.

use crate::event::{EventKind, Notice};
use crate::metrics::{SimMetrics, SteppingSnapshot};
use crate::remote_api::driver::DriverEvent;
use crate::remote_api::SimState;

/// Applies `ev` to `sim`; returns what to tell the user (at most one notice).
pub fn apply(sim: &mut SimMetrics, ev: &DriverEvent, target_rtf: f64) -> Option<Notice> {
    let note = |kind, message: String| Some(Notice::new(kind, None, message));
    match ev {
        DriverEvent::Connected {
            version,
            dt_s,
            real_time,
        } => {
            sim.connected(format!("{version} rev {}", version.revision));
            note(
                EventKind::SimConnected,
                format!(
                    "connected to CoppeliaSim {version} (rev {}), dt {dt_s} s, real-time mode {}",
                    version.revision,
                    if *real_time { "on" } else { "off" }
                ),
            )
        }
        DriverEvent::StateChanged { from, to, .. } => {
            sim.state(to.name(), to.is_advancing());
            let from = from.map_or("unknown", |f| f.name());
            note(
                EventKind::SimState,
                format!("simulation state: {from} → {}", to.name()),
            )
        }
        DriverEvent::SimTime {
            wall_ns,
            sim_time_s,
        } => {
            sim.sim_time(*wall_ns, *sim_time_s);
            None
        }
        DriverEvent::Restarted {
            previous_sim_time_s,
            sim_time_s,
            wall_ns,
        } => {
            sim.restarted(*wall_ns, *sim_time_s);
            note(
                EventKind::SimRestarted,
                format!(
                    "simulation restarted (time went from {previous_sim_time_s:.3} s back to \
                     {sim_time_s:.3} s): dummies begin new sessions"
                ),
            )
        }
        DriverEvent::CallRtt { us } => {
            sim.call_rtt(*us as f64);
            None
        }
        DriverEvent::StartedSimulation { .. } => note(
            EventKind::SimStarted,
            "started the simulation (it will be stopped at the end)".into(),
        ),
        DriverEvent::Disconnected { wall_ns, error } => {
            sim.disconnected(*wall_ns);
            note(
                EventKind::SimDisconnected,
                format!(
                    "CoppeliaSim stopped answering ({error}); UDP collection goes on, \
                     reconnecting with backoff"
                ),
            )
        }
        DriverEvent::Reconnected { gap_s } => {
            sim.reconnected(*gap_s);
            note(
                EventKind::SimReconnected,
                format!("CoppeliaSim answers again after {gap_s:.1} s"),
            )
        }
        DriverEvent::SteppingStats {
            steps,
            steps_per_s,
            achieved_rtf,
            pacing_error,
        } => {
            sim.stepping(SteppingSnapshot {
                steps: *steps,
                steps_per_s: *steps_per_s,
                achieved_rtf: *achieved_rtf,
                target_rtf,
                pacing_error: *pacing_error,
            });
            None
        }
        DriverEvent::Failed { error } => note(EventKind::SimFailed, format!("remote API: {error}")),
        DriverEvent::Finished { stopped_simulation } => {
            if *stopped_simulation {
                // No poll follows the driver's own stop: record it, or the summary would
                // report the last polled state ("running").
                sim.state(SimState::Stopped.name(), false);
            }
            note(
                EventKind::SimFinished,
                if *stopped_simulation {
                    "stopped the simulation the bridge had started".into()
                } else {
                    "left the simulation as it was".into()
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_api::ProgramVersion;

    const S: i64 = 1_000_000_000;

    #[test]
    fn driver_events_update_the_view_and_say_what_happened() {
        let mut sim = SimMetrics::new(0);
        let n = apply(
            &mut sim,
            &DriverEvent::Connected {
                version: ProgramVersion {
                    raw: 40600,
                    revision: 18,
                },
                dt_s: 0.05,
                real_time: false,
            },
            1.0,
        )
        .unwrap();
        assert_eq!(n.kind, EventKind::SimConnected);
        assert!(n.message.contains("4.6.0 (rev 18)"), "{}", n.message);
        let n = apply(
            &mut sim,
            &DriverEvent::StateChanged {
                wall_ns: 0,
                from: None,
                to: SimState::Running,
            },
            1.0,
        )
        .unwrap();
        assert_eq!(n.message, "simulation state: unknown → running");
        assert!(sim.is_advancing());
        assert!(apply(
            &mut sim,
            &DriverEvent::SimTime {
                wall_ns: S,
                sim_time_s: 1.0
            },
            1.0
        )
        .is_none());
        assert_eq!(sim.snapshot(S).version.as_deref(), Some("4.6.0 rev 18"));
    }

    #[test]
    fn the_drivers_own_stop_is_the_final_state() {
        let mut sim = SimMetrics::new(0);
        let running = DriverEvent::StateChanged {
            wall_ns: 0,
            from: None,
            to: SimState::Running,
        };
        apply(&mut sim, &running, 1.0);
        apply(
            &mut sim,
            &DriverEvent::Finished {
                stopped_simulation: false,
            },
            1.0,
        );
        assert_eq!(sim.snapshot(S).state, "running", "attached: left running");
        apply(
            &mut sim,
            &DriverEvent::Finished {
                stopped_simulation: true,
            },
            1.0,
        );
        assert_eq!(sim.snapshot(S).state, "stopped");
        assert!(!sim.is_advancing());
    }

    #[test]
    fn restarts_and_stepping_reach_the_snapshot() {
        let mut sim = SimMetrics::new(0);
        let n = apply(
            &mut sim,
            &DriverEvent::Restarted {
                wall_ns: S,
                previous_sim_time_s: 7.0,
                sim_time_s: 0.0,
            },
            2.0,
        )
        .unwrap();
        assert_eq!(n.kind, EventKind::SimRestarted);
        apply(
            &mut sim,
            &DriverEvent::SteppingStats {
                steps: 10,
                steps_per_s: 40.0,
                achieved_rtf: 2.0,
                pacing_error: Some(0.0),
            },
            2.0,
        );
        let st = sim.snapshot(S).stepping.unwrap();
        assert_eq!((st.steps, st.target_rtf), (10, 2.0));
    }
}
