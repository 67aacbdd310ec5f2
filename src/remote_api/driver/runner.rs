//! The driver thread's loop (I/O: the client, the clocks, the channels). Decisions that can
//! be pure live in `tracker` and `pacing`.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use crate::remote_api::backoff::Backoff;
use crate::remote_api::client::Client;
use crate::remote_api::error::RemoteError;
use crate::remote_api::transport::Transport;
use crate::time::unix_now_ns;

use super::pacing::{Pacer, StepStats};
use super::tracker::{Poll, Tracker};
use super::{Control, DriverEvent, DriverOptions, EventSink};

/// Stepping statistics are reported over windows of this many seconds.
const STATS_WINDOW_S: f64 = 1.0;

pub(super) struct Runner<T: Transport, S: EventSink> {
    client: Client<T>,
    opts: DriverOptions,
    sink: S,
    control: Receiver<Control>,
    clock: Instant,
    tracker: Tracker,
    backoff: Backoff,
    pacer: Option<Pacer>,
    stats: StepStats,
    /// The driver started the current run, so it stops it at the end.
    started_by_us: bool,
    /// Setup succeeded at least once.
    connected_once: bool,
    /// The last call succeeded.
    connected: bool,
    /// Set while reconnecting: the time of the last successful call before the outage.
    outage_since: Option<Instant>,
    /// `Disconnected` was emitted and no call succeeded since (report an outage once).
    reported_down: bool,
    last_ok: Instant,
    next_poll_s: f64,
    stop: bool,
}

impl<T: Transport, S: EventSink> Runner<T, S> {
    pub(super) fn new(
        client: Client<T>,
        opts: DriverOptions,
        sink: S,
        control: Receiver<Control>,
    ) -> Self {
        let now = Instant::now();
        Self {
            client,
            backoff: Backoff::new(opts.backoff),
            pacer: opts.stepping.map(|rtf| Pacer::new(rtf, 0.05)),
            opts,
            sink,
            control,
            clock: now,
            tracker: Tracker::new(),
            stats: StepStats::new(),
            started_by_us: false,
            connected_once: false,
            connected: false,
            outage_since: None,
            reported_down: false,
            last_ok: now,
            next_poll_s: 0.0,
            stop: false,
        }
    }

    pub(super) fn run(mut self) {
        if self.connect_loop() {
            while !self.stop {
                if let Err(e) = self.tick() {
                    self.on_error(e);
                }
            }
        }
        self.finish();
    }

    /// Tries `setup` until it works, the driver is stopped, or a non-recoverable error.
    fn connect_loop(&mut self) -> bool {
        loop {
            self.check_control();
            if self.stop {
                return false;
            }
            match self.setup() {
                Ok(()) => return true,
                Err(e) if e.is_unreachable() => {
                    self.disconnected(&e);
                    let delay = self.backoff.next_delay(rand::random::<f64>());
                    self.sleep(delay);
                }
                Err(e) => {
                    self.fail(&e);
                    return false;
                }
            }
        }
    }

    /// Reads version and dt, loads the scene, enables stepping, starts the simulation.
    /// Runs at the first connection and after each reconnection (CoppeliaSim may have
    /// restarted: a new process knows nothing of our stepping, notes §5).
    fn setup(&mut self) -> Result<(), RemoteError> {
        let version = self.client.program_version()?;
        self.call_ok();
        if let Some(since) = self.outage_since.take() {
            self.emit(DriverEvent::Reconnected {
                gap_s: since.elapsed().as_secs_f64(),
            });
        }
        let state = self.client.get_simulation_state()?;
        let responsible = !self.connected_once || self.started_by_us;
        if responsible {
            self.load_scene_if_stopped(state.is_stopped())?;
        }
        let dt_s = self.client.get_simulation_time_step()?;
        let real_time = self.client.real_time_mode()?;
        self.emit(DriverEvent::Connected {
            version,
            dt_s,
            real_time,
        });
        if let Some(pacer) = &mut self.pacer {
            pacer.set_dt(dt_s);
            self.ensure_stepping()?;
        }
        let state = self.client.get_simulation_state()?;
        if responsible && state.is_stopped() && self.opts.start_if_stopped {
            self.client.start_simulation()?;
            self.started_by_us = true;
            self.emit(DriverEvent::StartedSimulation {
                wall_ns: unix_now_ns(),
            });
        }
        self.connected_once = true;
        self.backoff.reset();
        self.next_poll_s = self.now_s();
        Ok(())
    }

    fn load_scene_if_stopped(&mut self, stopped: bool) -> Result<(), RemoteError> {
        let Some(scene) = self.opts.scene.clone() else {
            return Ok(());
        };
        if !stopped {
            // CoppeliaSim refuses to load a scene while a simulation runs: attach instead.
            tracing::warn!(
                scene = %scene.display(),
                "simulation already running: not loading the scene, attaching to the running one"
            );
            return Ok(());
        }
        self.client.load_scene(&scene.to_string_lossy())
    }

    /// Turns our stepping on, exactly one level: `sim.setStepping` counts levels per client
    /// (+1 for true, −1 for false, not below 0) and returns the previous one, so undo an extra
    /// level if we already had one. Only a remote `sim.stopSimulation` resets the level; a run
    /// stopped otherwise keeps it, so after a restart this finds 1 and leaves 1
    /// (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, sim.setStepping,
    /// the sim.stopSimulation wrapper, sysCall_afterSimulation).
    fn ensure_stepping(&mut self) -> Result<(), RemoteError> {
        if self.client.set_stepping(true)? > 0 {
            self.client.set_stepping(false)?;
        }
        Ok(())
    }

    /// One iteration: poll when due, else step when due, else sleep until the next of both.
    fn tick(&mut self) -> Result<(), RemoteError> {
        self.check_control();
        if self.stop {
            return Ok(());
        }
        let now = self.now_s();
        if now >= self.next_poll_s {
            self.poll()?;
            self.next_poll_s =
                next_poll_at(self.next_poll_s, self.now_s(), self.opts.poll_interval());
            return Ok(());
        }
        let until_poll = Duration::try_from_secs_f64(self.next_poll_s - now).unwrap_or_default();
        match self.step_delay(now) {
            Some(d) if d.is_zero() => self.step(),
            Some(d) => {
                self.sleep(d.min(until_poll));
                Ok(())
            }
            None => {
                self.sleep(until_poll);
                Ok(())
            }
        }
    }

    /// `None` when the driver does not step now (not stepping, or the simulation is not
    /// advancing: `sim.step` then returns at once and would spin).
    fn step_delay(&self, now: f64) -> Option<Duration> {
        let pacer = self.pacer.as_ref()?;
        let advancing = self.tracker.last()?.state.is_advancing();
        advancing.then(|| pacer.delay_until_due(now))
    }

    fn step(&mut self) -> Result<(), RemoteError> {
        let started = self.now_s();
        self.client.step()?;
        self.call_ok();
        let done = self.now_s();
        if let Some(pacer) = &mut self.pacer {
            pacer.on_step(started);
            self.stats.on_step(done);
            if let Some(r) = self.stats.report_if_due(done, STATS_WINDOW_S, pacer) {
                self.emit(DriverEvent::SteppingStats {
                    steps: r.steps,
                    steps_per_s: r.steps_per_s,
                    achieved_rtf: r.achieved_rtf,
                    pacing_error: r.pacing_error,
                });
            }
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<(), RemoteError> {
        let before_ns = unix_now_ns();
        let t0 = Instant::now();
        let sim_time_s = self.client.get_simulation_time()?;
        let rtt = t0.elapsed();
        let wall_ns = before_ns + (unix_now_ns() - before_ns) / 2;
        let state = self.client.get_simulation_state()?;
        self.call_ok();
        self.emit(DriverEvent::CallRtt {
            us: u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX),
        });
        let obs = self.tracker.observe(Poll {
            wall_ns,
            sim_time_s,
            state,
        });
        for event in obs.events {
            self.emit(event);
        }
        if obs.stepping_may_be_lost && self.pacer.is_some() {
            if let Some(p) = &mut self.pacer {
                p.reset();
            }
            self.ensure_stepping()?;
        }
        Ok(())
    }

    fn on_error(&mut self, e: RemoteError) {
        if !e.is_unreachable() {
            self.fail(&e);
            return;
        }
        self.disconnected(&e);
        if let Some(p) = &mut self.pacer {
            p.reset();
        }
        // On failure `stop` is set and the main loop ends.
        let _reconnected = self.connect_loop();
    }

    /// Records an outage; emits `Disconnected` once per outage.
    fn disconnected(&mut self, e: &RemoteError) {
        self.connected = false;
        if self.reported_down {
            return;
        }
        self.reported_down = true;
        if self.connected_once {
            self.outage_since.get_or_insert(self.last_ok);
        }
        // Reported once, by whoever receives the event (the run logs it as
        // `sim_disconnected`, or fails with it while connecting).
        self.emit(DriverEvent::Disconnected {
            wall_ns: unix_now_ns(),
            error: e.to_string(),
        });
    }

    fn fail(&mut self, e: &RemoteError) {
        self.emit(DriverEvent::Failed {
            error: e.to_string(),
        });
        self.stop = true;
    }

    fn call_ok(&mut self) {
        self.connected = true;
        self.reported_down = false;
        self.last_ok = Instant::now();
    }

    /// Stops the run if we started it, says goodbye, reports.
    fn finish(mut self) {
        let mut stopped = false;
        if self.started_by_us && self.connected {
            match self.client.stop_simulation() {
                Ok(()) => stopped = true,
                Err(e) => tracing::warn!("could not stop the simulation the bridge started: {e}"),
            }
        }
        if self.connected {
            if let Err(e) = self.client.close() {
                tracing::debug!("could not send _*end*_: {e}");
            }
        }
        let _ = self.sink.send(DriverEvent::Finished {
            stopped_simulation: stopped,
        });
    }

    fn emit(&mut self, event: DriverEvent) {
        if !self.sink.send(event) {
            self.stop = true;
        }
    }

    fn check_control(&mut self) {
        match self.control.try_recv() {
            Ok(Control::Stop) | Err(TryRecvError::Disconnected) => self.stop = true,
            Err(TryRecvError::Empty) => {}
        }
    }

    /// Sleeps, waking early when asked to stop.
    fn sleep(&mut self, d: Duration) {
        if d.is_zero() {
            return;
        }
        match self.control.recv_timeout(d) {
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => self.stop = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }

    fn now_s(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }
}

/// Polls keep a fixed schedule; after a slow poll (past its successor's time) the schedule
/// restarts one interval later, so slow calls never leave the loop polling back to back
/// (which would starve stepping).
fn next_poll_at(previous_due_s: f64, now_s: f64, interval: Duration) -> f64 {
    let next = previous_due_s + interval.as_secs_f64();
    if next < now_s {
        now_s + interval.as_secs_f64()
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_keep_their_schedule_and_restart_it_after_a_slow_poll() {
        let tenth = Duration::from_millis(100);
        assert!((next_poll_at(1.0, 1.01, tenth) - 1.1).abs() < 1e-12);
        assert!((next_poll_at(1.0, 1.35, tenth) - 1.45).abs() < 1e-12);
    }
}
