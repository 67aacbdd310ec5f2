//! Numeric constants a remote client needs, and the simulation state as a type.
//!
//! Values from `../shared/coppeliasim-notes.md` §6 (read from CoppeliaSim's public
//! headers; identical in 4.3–4.10).

use std::fmt;

/// `sim.intparam_program_version`: e.g. 40600 for 4.6.0.
pub const INTPARAM_PROGRAM_VERSION: i64 = 1;
/// `sim.intparam_program_revision`.
pub const INTPARAM_PROGRAM_REVISION: i64 = 30;
/// `sim.boolparam_realtime_simulation`.
pub const BOOLPARAM_REALTIME_SIMULATION: i64 = 25;
/// `sim.boolparam_headless`.
pub const BOOLPARAM_HEADLESS: i64 = 34;
/// `sim.handle_self`.
pub const HANDLE_SELF: i64 = -4;

/// Default endpoint of the ZMQ remote API add-on (port 23000, `zmqRemoteApi.rpcPort`).
pub const DEFAULT_ENDPOINT: &str = "tcp://127.0.0.1:23000";

/// `sim.getSimulationState()` decoded. Unknown values are kept, not rejected, so a newer
/// CoppeliaSim with an extra state still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimState {
    Stopped,
    Paused,
    /// `simulation_advancing_firstafterstop` (16): the first pass after a start.
    FirstAfterStop,
    Running,
    LastBeforePause,
    FirstAfterPause,
    /// A stop was requested; two more passes run (notes §2).
    AboutToStop,
    LastBeforeStop,
    Other(i64),
}

impl SimState {
    /// Decodes the integer CoppeliaSim returns.
    pub fn from_raw(raw: i64) -> Self {
        match raw {
            0 => Self::Stopped,
            8 => Self::Paused,
            16 => Self::FirstAfterStop,
            17 => Self::Running,
            19 => Self::LastBeforePause,
            20 => Self::FirstAfterPause,
            21 => Self::AboutToStop,
            22 => Self::LastBeforeStop,
            other => Self::Other(other),
        }
    }

    /// The integer CoppeliaSim uses.
    pub fn raw(self) -> i64 {
        match self {
            Self::Stopped => 0,
            Self::Paused => 8,
            Self::FirstAfterStop => 16,
            Self::Running => 17,
            Self::LastBeforePause => 19,
            Self::FirstAfterPause => 20,
            Self::AboutToStop => 21,
            Self::LastBeforeStop => 22,
            Self::Other(raw) => raw,
        }
    }

    /// Short name for reports (`running`, `stopped`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Paused => "paused",
            Self::FirstAfterStop => "first pass after stop",
            Self::Running => "running",
            Self::LastBeforePause => "last pass before pause",
            Self::FirstAfterPause => "first pass after pause",
            Self::AboutToStop => "about to stop",
            Self::LastBeforeStop => "last pass before stop",
            Self::Other(_) => "unknown",
        }
    }

    /// True while passes run (bit `simulation_advancing` = 16 set).
    pub fn is_advancing(self) -> bool {
        self.raw() & 16 != 0
    }

    /// Stopped (0): not paused, not advancing.
    pub fn is_stopped(self) -> bool {
        self == Self::Stopped
    }
}

impl fmt::Display for SimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.raw())
    }
}

/// CoppeliaSim's program version, from `intparam_program_version` and `_revision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramVersion {
    /// As reported, e.g. 40600.
    pub raw: i64,
    pub revision: i64,
}

impl ProgramVersion {
    /// (major, minor, patch): 40600 → (4, 6, 0).
    pub fn parts(self) -> (i64, i64, i64) {
        (self.raw / 10000, (self.raw / 100) % 100, self.raw % 100)
    }

    /// Protocol 2 of the remote API exists from 4.6.0 on (notes §1).
    pub fn speaks_protocol_2(self) -> bool {
        self.raw >= 40600
    }
}

impl fmt::Display for ProgramVersion {
    /// `4.6.0` (the revision is reported separately).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = self.parts();
        write!(f, "{major}.{minor}.{patch}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_state_round_trips_and_unknown_is_kept() {
        for raw in [0, 8, 16, 17, 19, 20, 21, 22, 99, -1] {
            assert_eq!(SimState::from_raw(raw).raw(), raw);
        }
        assert_eq!(SimState::from_raw(99), SimState::Other(99));
        assert_eq!(SimState::from_raw(17).name(), "running");
        assert_eq!(SimState::Running.to_string(), "running (17)");
    }

    #[test]
    fn advancing_bit_matches_the_state_table() {
        assert!(!SimState::Stopped.is_advancing());
        assert!(!SimState::Paused.is_advancing());
        for s in [16, 17, 19, 20, 21, 22] {
            assert!(SimState::from_raw(s).is_advancing(), "{s}");
        }
    }

    #[test]
    fn version_formats_as_dotted_triple() {
        let v = ProgramVersion {
            raw: 40600,
            revision: 18,
        };
        assert_eq!(v.to_string(), "4.6.0");
        assert!(v.speaks_protocol_2());
        let old = ProgramVersion {
            raw: 40501,
            revision: 4,
        };
        assert_eq!(old.to_string(), "4.5.1");
        assert!(!old.speaks_protocol_2());
        assert_eq!(
            ProgramVersion {
                raw: 41000,
                revision: 0
            }
            .to_string(),
            "4.10.0"
        );
    }
}
