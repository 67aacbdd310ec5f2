//! The dummy child script shipped in `lua/`, embedded so scenes can be generated anywhere.

/// Full text of `lua/coppelia_bridge.lua`.
pub const SCRIPT: &str = include_str!("../lua/coppelia_bridge.lua");
