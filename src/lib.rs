//! coppelia-bridge: a co-simulation bridge for CoppeliaSim.
//!
//! Dummies in a CoppeliaSim scene send one timestamp datagram per simulation step; the
//! bridge receives them, drives the simulation through the ZeroMQ remote API, and
//! reports per-dummy real-time factor, latency, rate, jitter and loss.
//!
//! # Layout
//! - [`time`]: wall-clock time as the bridge counts it (`UnixNanos`), and reading it.
//! - [`event`]: data crossing modules: receiver batches and status, notices and their kinds
//!   (pure).
//! - [`wire`]: v1 datagram/frame codecs and the legacy notebook format (pure).
//! - [`metrics`]: per-dummy and simulation-wide statistics, snapshots, and the aggregator that
//!   owns them (pure).
//! - [`run`]: a measured run as a state machine, `(event, now)` in, actions out (pure).
//! - [`emitter`]: a synthetic dummy sending what the Lua script sends (pure).
//! - [`collector`]: UDP/TCP receivers with kernel timestamps, feeding the aggregator (I/O).
//! - [`remote_api`]: ZeroMQ remote API, protocol 2: CBOR messages (pure) and REQ client (I/O).
//! - [`scene`]: the simple-XML scene format: generator and parser (pure).
//! - [`lua`]: the dummy child script, embedded.
//! - [`standin`]: headless CoppeliaSim stand-in running the real Lua scripts.
//! - [`sweep`]: a scaling sweep as data: combinations to run, one table row per run (pure).
//! - [`output`]: exporters (CSV, JSON, HTML report, sweep table, Prometheus) and the live
//!   view.
//! - [`commands`]: wiring of tasks for each subcommand, shutdown.
//! - [`cli`]: command-line definitions.

pub mod cli;
pub mod collector;
pub mod commands;
pub mod emitter;
pub mod event;
pub mod lua;
pub mod metrics;
pub mod output;
pub mod remote_api;
pub mod run;
pub mod scene;
pub mod standin;
pub mod sweep;
pub mod time;
pub mod wire;
