//! The simulation driver for `run`: a blocking [`Client`] on its own thread, talking to the
//! rest of the bridge through channels.
//!
//! It loads a scene, starts the simulation if asked (and stops it at the end only if it
//! started it), optionally steps it itself paced to a target RTF, polls simulation time and
//! state, and keeps trying with backoff when CoppeliaSim goes away. Pure parts:
//! [`tracker`] (polls → events) and [`pacing`] (when to step, stepping statistics).

pub mod pacing;
pub mod tracker;

mod runner;

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::time::UnixNanos;

use super::backoff::BackoffConfig;
use super::client::{Client, ClientConfig};
use super::constants::{ProgramVersion, SimState};
use super::error::RemoteError;
use super::transport::{Transport, ZmqTransport};

/// How the driver runs the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverOptions {
    /// e.g. `tcp://127.0.0.1:23000`.
    pub endpoint: String,
    /// Deadline of every remote call.
    pub timeout: Duration,
    /// Scene to load (`sim.loadScene`, a path on CoppeliaSim's machine) while stopped.
    pub scene: Option<PathBuf>,
    /// Start the simulation if it is stopped (false with `--no-start`).
    pub start_if_stopped: bool,
    /// `Some(target_rtf)`: stepping mode, the driver calls `sim.step` itself, paced to this
    /// real-time factor (0 = as fast as possible). `None`: CoppeliaSim runs freely.
    pub stepping: Option<f64>,
    /// Polls of `sim.getSimulationTime` + `sim.getSimulationState` per second (default 10).
    pub poll_rate_hz: f64,
    /// Delays between reconnection attempts.
    pub backoff: BackoffConfig,
}

impl DriverOptions {
    /// Defaults for an endpoint: 3 s deadline, start if stopped, no stepping, 10 Hz polls.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            timeout: Duration::from_secs(3),
            scene: None,
            start_if_stopped: true,
            stepping: None,
            poll_rate_hz: 10.0,
            backoff: BackoffConfig::default(),
        }
    }

    fn poll_interval(&self) -> Duration {
        let hz = if self.poll_rate_hz.is_finite() && self.poll_rate_hz > 0.0 {
            self.poll_rate_hz
        } else {
            10.0
        };
        Duration::from_secs_f64(1.0 / hz.min(10_000.0))
    }
}

/// What the driver reports. Wall times are Unix nanoseconds read on the driver thread.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverEvent {
    /// The remote API answered (at start, and again after each reconnection).
    Connected {
        version: ProgramVersion,
        dt_s: f64,
        real_time: bool,
    },
    /// The simulation state changed (`from` is `None` at the first poll).
    StateChanged {
        wall_ns: UnixNanos,
        from: Option<SimState>,
        to: SimState,
    },
    /// One poll: simulation time at wall time (the middle of the call).
    SimTime { wall_ns: UnixNanos, sim_time_s: f64 },
    /// Simulation time went back: a new run started (CoppeliaSim resets it to 0).
    Restarted {
        wall_ns: UnixNanos,
        previous_sim_time_s: f64,
        sim_time_s: f64,
    },
    /// Round trip of the poll's `sim.getSimulationTime` call, µs.
    CallRtt { us: u64 },
    /// The driver started the simulation (so it will stop it at the end).
    StartedSimulation { wall_ns: UnixNanos },
    /// CoppeliaSim stopped answering; the driver keeps trying with backoff.
    Disconnected { wall_ns: UnixNanos, error: String },
    /// CoppeliaSim answers again after `gap_s` seconds without.
    Reconnected { gap_s: f64 },
    /// Stepping mode, about once per second.
    SteppingStats {
        steps: u64,
        steps_per_s: f64,
        achieved_rtf: f64,
        pacing_error: Option<f64>,
    },
    /// An error the driver cannot recover from (e.g. protocol 1, scene not loadable); the
    /// driver ends after it.
    Failed { error: String },
    /// The driver ended; `stopped_simulation` if it stopped the run it had started.
    Finished { stopped_simulation: bool },
}

impl DriverEvent {
    /// Short name of the variant (logs, tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connected { .. } => "connected",
            Self::StateChanged { .. } => "state_changed",
            Self::SimTime { .. } => "sim_time",
            Self::Restarted { .. } => "restarted",
            Self::CallRtt { .. } => "call_rtt",
            Self::StartedSimulation { .. } => "started_simulation",
            Self::Disconnected { .. } => "disconnected",
            Self::Reconnected { .. } => "reconnected",
            Self::SteppingStats { .. } => "stepping_stats",
            Self::Failed { .. } => "failed",
            Self::Finished { .. } => "finished",
        }
    }
}

/// Where events go. `send` returns false when nobody listens any more (the driver then
/// shuts down).
pub trait EventSink: Send + 'static {
    fn send(&mut self, event: DriverEvent) -> bool;
}

impl EventSink for mpsc::Sender<DriverEvent> {
    fn send(&mut self, event: DriverEvent) -> bool {
        mpsc::Sender::send(self, event).is_ok()
    }
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<DriverEvent> {
    fn send(&mut self, event: DriverEvent) -> bool {
        tokio::sync::mpsc::UnboundedSender::send(self, event).is_ok()
    }
}

/// Commands to the driver thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Stop,
}

/// The running driver. Dropping it without [`DriverHandle::shutdown`] also stops the thread
/// (it notices the closed control channel) but does not wait for it.
#[derive(Debug)]
pub struct DriverHandle {
    control: mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl DriverHandle {
    /// Stops the simulation if the driver started it, sends `_*end*_`, and joins the
    /// thread. Takes at most about one call deadline when CoppeliaSim is unreachable.
    pub fn shutdown(mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the simulation driver thread panicked");
            }
        }
    }
}

/// Starts the driver on its own thread with a ZeroMQ client for `options.endpoint`.
pub fn spawn(options: DriverOptions, sink: impl EventSink) -> Result<DriverHandle, RemoteError> {
    let config = ClientConfig {
        timeout: options.timeout,
        ..ClientConfig::default()
    };
    let client: Client<ZmqTransport> = Client::connect(&options.endpoint, config)?;
    spawn_with_client(client, options, sink)
}

/// Starts the driver with a given client (any transport; tests use fakes).
pub fn spawn_with_client<T: Transport + Send + 'static>(
    client: Client<T>,
    options: DriverOptions,
    sink: impl EventSink,
) -> Result<DriverHandle, RemoteError> {
    let (control, control_rx) = mpsc::channel();
    let endpoint = options.endpoint.clone();
    let thread = std::thread::Builder::new()
        .name("coppelia-driver".into())
        .spawn(move || runner::Runner::new(client, options, sink, control_rx).run())
        .map_err(|e| RemoteError::Transport {
            endpoint,
            operation: "spawn the driver thread",
            reason: e.to_string(),
        })?;
    Ok(DriverHandle {
        control,
        thread: Some(thread),
    })
}
