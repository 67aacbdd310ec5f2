//! Folds the remote-API driver's events into the simulation-wide snapshot (pure).

use crate::metrics::aggregator::{Notice, NoticeLevel};
use crate::metrics::{
    LatencyHistogram, RtfTracker, SimSnapshot, SteppingSnapshot, UnixNanos, WallSource,
};
use crate::remote_api::driver::DriverEvent;
use crate::remote_api::SimState;

/// What the bridge knows about the simulation.
#[derive(Debug)]
pub struct SimView {
    state: Option<SimState>,
    sim_time_s: Option<f64>,
    rtf: RtfTracker,
    rtt: LatencyHistogram,
    version: Option<String>,
    disconnected_since: Option<UnixNanos>,
    disconnected_total_s: f64,
    target_rtf: f64,
    stepping: Option<SteppingSnapshot>,
    failed: Option<String>,
}

impl SimView {
    pub fn new(run_start_ns: UnixNanos, target_rtf: f64) -> Self {
        Self {
            state: None,
            sim_time_s: None,
            rtf: RtfTracker::with_origin(WallSource::RemotePoll, run_start_ns),
            rtt: LatencyHistogram::new(),
            version: None,
            disconnected_since: None,
            disconnected_total_s: 0.0,
            target_rtf,
            stepping: None,
            failed: None,
        }
    }

    /// Whether simulation passes run now (silence from dummies then means trouble).
    pub fn is_advancing(&self) -> bool {
        self.disconnected_since.is_none() && self.state.is_some_and(SimState::is_advancing)
    }

    /// The unrecoverable error the driver ended with, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Whether the driver ever reached CoppeliaSim.
    pub fn connected_once(&self) -> bool {
        self.version.is_some()
    }

    /// Updates the view; returns what to tell the user.
    pub fn on_event(&mut self, ev: &DriverEvent) -> Vec<Notice> {
        let note = |level, kind, message: String| {
            vec![Notice {
                level,
                kind,
                dummy: None,
                message,
            }]
        };
        match ev {
            DriverEvent::Connected {
                version,
                dt_s,
                real_time,
            } => {
                self.version = Some(format!("{version} rev {}", version.revision));
                note(
                    NoticeLevel::Info,
                    "sim_connected",
                    format!("connected to CoppeliaSim {version} (rev {}), dt {dt_s} s, real-time mode {}", version.revision, if *real_time { "on" } else { "off" }),
                )
            }
            DriverEvent::StateChanged { from, to, .. } => {
                self.state = Some(*to);
                let from = from.map_or("unknown".to_owned(), |f| f.name().to_owned());
                note(
                    NoticeLevel::Info,
                    "sim_state",
                    format!("simulation state: {from} → {}", to.name()),
                )
            }
            DriverEvent::SimTime {
                wall_ns,
                sim_time_s,
            } => {
                self.sim_time_s = Some(*sim_time_s);
                self.rtf.push(*wall_ns, *sim_time_s);
                Vec::new()
            }
            DriverEvent::Restarted {
                previous_sim_time_s,
                sim_time_s,
                wall_ns,
            } => {
                // A new run: windows spanning the restart would mix two timelines.
                self.rtf.reset();
                self.rtf.push(*wall_ns, *sim_time_s);
                note(
                    NoticeLevel::Warn,
                    "sim_restarted",
                    format!("simulation restarted (time went from {previous_sim_time_s:.3} s back to {sim_time_s:.3} s): dummies begin new sessions"),
                )
            }
            DriverEvent::CallRtt { us } => {
                self.rtt.record(*us as f64);
                Vec::new()
            }
            DriverEvent::StartedSimulation { .. } => note(
                NoticeLevel::Info,
                "sim_started",
                "started the simulation (it will be stopped at the end)".into(),
            ),
            DriverEvent::Disconnected { wall_ns, error } => {
                self.disconnected_since.get_or_insert(*wall_ns);
                note(NoticeLevel::Warn, "sim_disconnected", format!("CoppeliaSim stopped answering ({error}); UDP collection goes on, reconnecting with backoff"))
            }
            DriverEvent::Reconnected { gap_s } => {
                self.disconnected_since = None;
                self.disconnected_total_s += gap_s;
                note(
                    NoticeLevel::Warn,
                    "sim_reconnected",
                    format!("CoppeliaSim answers again after {gap_s:.1} s"),
                )
            }
            DriverEvent::SteppingStats {
                steps,
                steps_per_s,
                achieved_rtf,
                pacing_error,
            } => {
                self.stepping = Some(SteppingSnapshot {
                    steps: *steps,
                    steps_per_s: *steps_per_s,
                    achieved_rtf: *achieved_rtf,
                    target_rtf: self.target_rtf,
                    pacing_error: *pacing_error,
                });
                Vec::new()
            }
            DriverEvent::Failed { error } => {
                self.failed = Some(error.clone());
                note(
                    NoticeLevel::Warn,
                    "sim_failed",
                    format!("remote API: {error}"),
                )
            }
            DriverEvent::Finished { stopped_simulation } => {
                if *stopped_simulation {
                    // No poll follows the driver's own stop: record it, or the summary would
                    // report the last polled state ("running").
                    self.state = Some(SimState::Stopped);
                }
                note(
                    NoticeLevel::Info,
                    "sim_finished",
                    if *stopped_simulation {
                        "stopped the simulation the bridge had started".into()
                    } else {
                        "left the simulation as it was".into()
                    },
                )
            }
        }
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
                self.state
                    .map_or("unknown".to_owned(), |s| s.name().to_owned())
            },
            sim_time_s: self.sim_time_s,
            rtf: self.rtf.stats(now_ns),
            remote_rtt: self.rtt.stats(),
            version: self.version.clone(),
            disconnected_s: self.disconnected_total_s + ongoing,
            stepping: self.stepping.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_api::ProgramVersion;

    const S: i64 = 1_000_000_000;

    #[test]
    fn polls_make_a_global_rtf_and_rtt() {
        let mut v = SimView::new(0, 1.0);
        v.on_event(&DriverEvent::Connected {
            version: ProgramVersion {
                raw: 40600,
                revision: 18,
            },
            dt_s: 0.05,
            real_time: false,
        });
        v.on_event(&DriverEvent::StateChanged {
            wall_ns: 0,
            from: None,
            to: SimState::Running,
        });
        for k in 0..=50 {
            // 10 Hz polls, simulation at half real time.
            v.on_event(&DriverEvent::SimTime {
                wall_ns: k * S / 10,
                sim_time_s: k as f64 * 0.05,
            });
            v.on_event(&DriverEvent::CallRtt { us: 100 + k as u64 });
        }
        let s = v.snapshot(5 * S);
        assert_eq!(s.state, "running");
        assert_eq!(s.version.as_deref(), Some("4.6.0 rev 18"));
        assert!((s.rtf.total.unwrap() - 0.5).abs() < 1e-9, "{:?}", s.rtf);
        assert_eq!(s.remote_rtt.unwrap().count, 51);
        assert!(v.is_advancing());
    }

    #[test]
    fn the_drivers_own_stop_is_the_final_state() {
        let mut v = SimView::new(0, 1.0);
        v.on_event(&DriverEvent::StateChanged {
            wall_ns: 0,
            from: None,
            to: SimState::Running,
        });
        v.on_event(&DriverEvent::Finished {
            stopped_simulation: false,
        });
        assert_eq!(v.snapshot(S).state, "running", "attached: left running");
        v.on_event(&DriverEvent::Finished {
            stopped_simulation: true,
        });
        assert_eq!(v.snapshot(S).state, "stopped");
    }

    #[test]
    fn disconnection_gap_is_recorded_and_stops_idle_counting() {
        let mut v = SimView::new(0, 1.0);
        v.on_event(&DriverEvent::StateChanged {
            wall_ns: 0,
            from: None,
            to: SimState::Running,
        });
        v.on_event(&DriverEvent::Disconnected {
            wall_ns: 2 * S,
            error: "timeout".into(),
        });
        assert!(!v.is_advancing());
        let s = v.snapshot(5 * S);
        assert_eq!(s.state, "unreachable");
        assert!((s.disconnected_s - 3.0).abs() < 1e-9);
        v.on_event(&DriverEvent::Reconnected { gap_s: 4.0 });
        assert!((v.snapshot(9 * S).disconnected_s - 4.0).abs() < 1e-9);
        assert!(v.is_advancing());
    }

    #[test]
    fn restart_resets_the_global_rtf_instead_of_mixing_runs() {
        let mut v = SimView::new(0, 1.0);
        for k in 0..=20 {
            v.on_event(&DriverEvent::SimTime {
                wall_ns: k * S / 10,
                sim_time_s: 5.0 + k as f64 * 0.1,
            });
        }
        let notes = v.on_event(&DriverEvent::Restarted {
            wall_ns: 2 * S,
            previous_sim_time_s: 7.0,
            sim_time_s: 0.0,
        });
        assert_eq!(notes[0].kind, "sim_restarted");
        for k in 1..=20 {
            v.on_event(&DriverEvent::SimTime {
                wall_ns: 2 * S + k * S / 10,
                sim_time_s: k as f64 * 0.1,
            });
        }
        let total = v.snapshot(4 * S).rtf.total.unwrap();
        assert!((total - 1.0).abs() < 1e-9, "RTF after restart {total}");
    }
}
