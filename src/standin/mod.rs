//! The headless CoppeliaSim stand-in: runs the scene's real Lua child scripts in embedded
//! Lua 5.3 and serves the ZeroMQ remote API (protocol 2).
//!
//! # Layout
//! - [`api`]: the one table of every `sim.*` name served, with its first version (pure).
//! - [`scheduler`]: simulation state machine, pass times and states (pure).
//! - [`pass`]: one pass over the child scripts in CoppeliaSim's order (generic, pure).
//! - [`script`]: a child script in its own Lua state, threads and pre-emption.
//! - [`sim_lib`]: the `sim` API, constants, parameters, log.
//! - [`socket_lib`]: LuaSocket-compatible `socket` module (real sockets).
//! - [`remote`]: remote API protocol 2: requests, replies, clients, stepping (pure).
//! - [`remote_server`]: the ZMQ REP socket serving [`remote`].
//! - [`scene_edit`]: the scene-building functions remote clients call (pure).
//! - [`pacing`]: wall-clock pacing decisions (real time, RTF, bursts, stalls) (pure).
//! - [`engine`]: the simulation thread tying everything together.

pub mod api;
pub mod engine;
pub mod pacing;
pub mod pass;
pub mod remote;
pub mod remote_server;
pub mod scene_edit;
pub mod scheduler;
pub mod script;
pub mod sim_lib;
pub mod socket_lib;

pub use engine::{
    spawn, Faults, Standin, StandinConfig, StandinError, Summary, MAX_CLOCK_OFFSET_S,
};
pub use pacing::{Speed, Stall};
pub use sim_lib::{LogLine, LogSink, DEFAULT_VERSION};
