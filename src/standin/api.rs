//! The ONE table of every `sim.*` function and constant the stand-in serves, to child
//! scripts and over the remote API, with the first CoppeliaSim version that has it and where
//! that was read (pure).
//!
//! The stand-in claims one version ([`crate::remote_api::ProgramVersion`], `--version`); an
//! entry is served only when that version has it. Anything else is `nil` in a script and
//! `No such function: sim.<name>` over the remote API, as in CoppeliaSim, whose add-on answers
//! that for any name `zmqRemoteApi.getField` cannot find
//! (zmqRemoteApi@coppeliasim-v4.7.0-rev2:addOns/ZMQ remote API server.lua, handleRequest).
//!
//! Versions were checked per tag (4.3.0-rev12, 4.4.0-rev0, 4.5.1-rev4, 4.6.0-rev0,
//! 4.6.0-rev18, 4.7.0-rev0, 4.7.0-rev2, 4.8.0-rev0, 4.9.0-rev0, 4.10.0-rev0): a C function or
//! constant is registered in coppeliaSimLib `sourceCode/interfaces/luaScriptFunctions.cpp`
//! (`{"sim.name", ...}`), a Lua one is defined in CoppeliaRobotics/lua `sim.lua`.

use crate::remote_api::ProgramVersion;

/// 4.3.0, the oldest version the project supports.
pub const V4_3: i64 = 40300;
/// 4.6.0: remote API protocol 2, `sysCall_thread`, `sim.setStepping`/`sim.step`.
pub const V4_6: i64 = 40600;
/// 4.7.0: script objects, `sim.createScript`, `sim.scripttype_simulation`.
pub const V4_7: i64 = 40700;
/// 4.8.0: `sim.sceneobject_*` names.
pub const V4_8: i64 = 40800;
/// 4.10.0, the newest version the project supports (4.11 embeds Lua 5.4).
pub const V4_10: i64 = 41000;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A function, served to scripts (`lua`) and/or remote clients (`remote`).
    Func { lua: bool, remote: bool },
    /// An integer constant, served to both.
    Const(i64),
}

/// One `sim.*` name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Without the `sim.` prefix.
    pub name: &'static str,
    pub kind: Kind,
    /// First version that has it (raw, e.g. 40700).
    pub since: i64,
    /// First version that no longer has it (this value), if any.
    pub until: Option<i64>,
    /// Where its presence at `since` was read: `repo@tag:file`.
    pub source: &'static str,
}

impl Entry {
    /// Whether `version` has this entry.
    pub fn in_version(&self, version: i64) -> bool {
        version >= self.since && self.until.is_none_or(|u| version < u)
    }
}

const LSF43: &str = "coppeliaSimLib@coppeliasim-v4.3.0-rev12:luaScriptFunctions.cpp";
const LSF47: &str = "coppeliaSimLib@coppeliasim-v4.7.0-rev0:luaScriptFunctions.cpp";
const LSF48: &str = "coppeliaSimLib@coppeliasim-v4.8.0-rev0:luaScriptFunctions.cpp";
const LUA43: &str = "lua@coppeliasim-v4.3.0-rev12:sim.lua";
const LUA46: &str = "lua@coppeliasim-v4.6.0-rev0:sim.lua";
const ADDON46: &str =
    "zmqRemoteApi@coppeliasim-v4.6.0-rev0:addOns/ZMQ remote API server.lua (sim.setStepping, sim.step)";
const INC47: &str = "include@coppeliasim-v4.7.0-rev0:simLib/simConst.h";

const BOTH: Kind = Kind::Func {
    lua: true,
    remote: true,
};
const LUA: Kind = Kind::Func {
    lua: true,
    remote: false,
};
const REMOTE: Kind = Kind::Func {
    lua: false,
    remote: true,
};

const fn f(name: &'static str, kind: Kind, since: i64, source: &'static str) -> Entry {
    Entry {
        name,
        kind,
        since,
        until: None,
        source,
    }
}

const fn c(name: &'static str, value: i64, since: i64, source: &'static str) -> Entry {
    Entry {
        name,
        kind: Kind::Const(value),
        since,
        until: None,
        source,
    }
}

/// Every `sim.*` name the stand-in serves.
pub const SIM_API: &[Entry] = &[
    // Clocks and state.
    f("getSimulationTime", BOTH, V4_3, LSF43),
    f("getSimulationTimeStep", BOTH, V4_3, LSF43),
    f("getSimulationState", BOTH, V4_3, LSF43),
    f("getSystemTime", BOTH, V4_3, LSF43),
    // Simulation control (remote clients only in the stand-in).
    f("startSimulation", REMOTE, V4_3, LSF43),
    f("stopSimulation", REMOTE, V4_3, LSF43),
    f("pauseSimulation", REMOTE, V4_3, LSF43),
    f("loadScene", REMOTE, V4_3, LSF43),
    f("saveScene", REMOTE, V4_3, LSF43),
    // Stepping: a script's sim.lua functions, shadowed for remote clients by the add-on.
    f("setStepping", BOTH, V4_6, LUA46),
    f("step", BOTH, V4_6, ADDON46),
    f("switchThread", LUA, V4_3, LUA43),
    f("setThreadAutomaticSwitch", LUA, V4_3, LSF43),
    // Objects.
    f("getObject", BOTH, V4_3, LUA43),
    f("getObjectAlias", BOTH, V4_3, LSF43),
    f("getObjectType", BOTH, V4_3, LSF43),
    f("getObjectParent", BOTH, V4_3, LSF43),
    f("getExtensionString", BOTH, V4_3, LSF43),
    f("createDummy", REMOTE, V4_3, LSF43),
    f("setObjectAlias", REMOTE, V4_3, LSF43),
    f("setObjectParent", REMOTE, V4_3, LSF43),
    // Scripts: legacy child scripts (still present in 4.10) and 4.7's script objects.
    f("addScript", REMOTE, V4_3, LSF43),
    f("associateScriptWithObject", REMOTE, V4_3, LSF43),
    f("setScriptStringParam", REMOTE, V4_3, LSF43),
    f("getScriptStringParam", REMOTE, V4_3, LSF43),
    f("createScript", REMOTE, V4_7, LSF47),
    // Parameters and log.
    f("getInt32Param", BOTH, V4_3, LSF43),
    f("getBoolParam", BOTH, V4_3, LSF43),
    f("getFloatParam", BOTH, V4_3, LSF43),
    f("setBoolParam", REMOTE, V4_3, LSF43),
    f("setFloatParam", REMOTE, V4_3, LSF43),
    f("getNamedStringParam", BOTH, V4_3, LSF43),
    f("setNamedStringParam", BOTH, V4_3, LSF43),
    f("addLog", LUA, V4_3, LSF43),
    // Constants.
    c("simulation_stopped", 0, V4_3, LSF43),
    c("simulation_paused", 8, V4_3, LSF43),
    c("simulation_advancing", 16, V4_3, LSF43),
    c("simulation_advancing_firstafterstop", 16, V4_3, LSF43),
    c("simulation_advancing_running", 17, V4_3, LSF43),
    c("simulation_advancing_lastbeforepause", 19, V4_3, LSF43),
    c("simulation_advancing_firstafterpause", 20, V4_3, LSF43),
    c("simulation_advancing_abouttostop", 21, V4_3, LSF43),
    c("simulation_advancing_lastbeforestop", 22, V4_3, LSF43),
    c("floatparam_simulation_time_step", 1, V4_3, LSF43),
    c("boolparam_realtime_simulation", 25, V4_3, LSF43),
    c("boolparam_headless", 34, V4_3, LSF43),
    c("intparam_program_version", 1, V4_3, LSF43),
    c("intparam_program_revision", 30, V4_3, LSF43),
    c("intparam_speedmodifier", 36, V4_3, LSF43),
    c("handle_all", -2, V4_3, LSF43),
    c("handle_self", -4, V4_3, LSF43),
    c("handle_world", -1, V4_3, LSF43),
    c("handle_scene", -12, V4_3, LSF43),
    c("object_dummy_type", 4, V4_3, LSF43),
    c("object_script_type", 17, V4_7, INC47),
    c("sceneobject_dummy", 4, V4_8, LSF48),
    c("sceneobject_script", 17, V4_8, LSF48),
    c("scripttype_childscript", 1, V4_3, LSF43),
    c("scripttype_main", 0, V4_7, LSF47),
    c("scripttype_simulation", 1, V4_7, LSF47),
    // 4.3-4.6: description=0, name, text (include@coppeliasim-v4.6.0-rev18:simConst.h);
    // 10110 from 4.7.0-rev0 (include@coppeliasim-v4.7.0-rev0:simLib/simConst.h).
    Entry {
        name: "scriptstringparam_text",
        kind: Kind::Const(2),
        since: V4_3,
        until: Some(V4_7),
        source: "include@coppeliasim-v4.6.0-rev18:simLib/simConst.h",
    },
    c("scriptstringparam_text", 10110, V4_7, INC47),
    c("stringparam_scene_path_and_name", 13, V4_3, LSF43),
    c("stringparam_scene_path", 14, V4_3, LSF43),
    c("stringparam_scene_name", 15, V4_3, LSF43),
    c("verbosity_none", 100, V4_3, LSF43),
    c("verbosity_errors", 200, V4_3, LSF43),
    c("verbosity_warnings", 300, V4_3, LSF43),
    c("verbosity_loadinfos", 400, V4_3, LSF43),
    c("verbosity_scripterrors", 420, V4_3, LSF43),
    c("verbosity_scriptwarnings", 430, V4_3, LSF43),
    c("verbosity_scriptinfos", 450, V4_3, LSF43),
    c("verbosity_infos", 500, V4_3, LSF43),
    c("verbosity_debug", 600, V4_3, LSF43),
    c("verbosity_trace", 700, V4_3, LSF43),
];

/// The entries `version` has.
pub fn entries(version: ProgramVersion) -> impl Iterator<Item = &'static Entry> {
    SIM_API.iter().filter(move |e| e.in_version(version.raw))
}

/// Whether `version` has function `sim.<name>` for scripts (`remote` false) or remote clients.
pub fn has_function(version: ProgramVersion, name: &str, remote: bool) -> bool {
    entries(version).any(|e| {
        e.name == name
            && matches!(e.kind, Kind::Func { lua, remote: r } if if remote { r } else { lua })
    })
}

/// The value of constant `sim.<name>` in `version`.
pub fn constant(version: ProgramVersion, name: &str) -> Option<i64> {
    entries(version).find_map(|e| match e.kind {
        Kind::Const(v) if e.name == name => Some(v),
        _ => None,
    })
}

/// The constants of `version`, for a script's `sim` table and `zmqRemoteApi.info('sim')`.
pub fn constants(version: ProgramVersion) -> impl Iterator<Item = (&'static str, i64)> {
    entries(version).filter_map(|e| match e.kind {
        Kind::Const(v) => Some((e.name, v)),
        Kind::Func { .. } => None,
    })
}

/// The remote functions of `version`.
pub fn remote_functions(version: ProgramVersion) -> impl Iterator<Item = &'static str> {
    entries(version).filter_map(|e| match e.kind {
        Kind::Func { remote: true, .. } => Some(e.name),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(raw: i64) -> ProgramVersion {
        ProgramVersion { raw, revision: 0 }
    }

    #[test]
    fn a_name_is_listed_once_per_version() {
        for raw in [V4_3, 40400, 40501, V4_6, V4_7, V4_8, 40900, V4_10] {
            let mut names: Vec<_> = entries(v(raw)).map(|e| e.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate name in version {raw}");
        }
    }

    #[test]
    fn set_extension_string_exists_in_no_version() {
        // coppeliaSimLib@coppeliasim-v4.{3..10}: luaScriptFunctions.cpp has no sim.setExtensionString.
        assert!(SIM_API.iter().all(|e| e.name != "setExtensionString"));
    }

    #[test]
    fn version_dependent_names() {
        assert!(!has_function(v(40501), "step", false));
        assert!(has_function(v(V4_6), "step", true));
        assert!(!has_function(v(V4_6), "createScript", true));
        assert!(has_function(v(V4_7), "createScript", true));
        assert_eq!(constant(v(V4_6), "scriptstringparam_text"), Some(2));
        assert_eq!(constant(v(V4_7), "scriptstringparam_text"), Some(10110));
        assert_eq!(constant(v(V4_7), "object_script_type"), Some(17));
        assert_eq!(constant(v(V4_7), "sceneobject_script"), None);
        assert_eq!(constant(v(V4_10), "sceneobject_script"), Some(17));
        assert_eq!(constant(v(V4_6), "scripttype_simulation"), None);
    }
}
