//! The `sim` API seen by child scripts and by remote clients: shared state, parameters, and
//! the Lua `sim` table. Which names exist is decided by [`super::api::SIM_API`] for the
//! version the stand-in claims.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use mlua::{Lua, MultiValue, Table, Value};

use super::api;
use super::scheduler::SimState;
use crate::remote_api::ProgramVersion;
use crate::scene::parse::{extension_value, Scene, ScriptKind};

/// The version the stand-in claims by default: 4.6.0 (the first with remote API protocol 2
/// and `sysCall_thread`; `--version` chooses another).
pub const DEFAULT_VERSION: ProgramVersion = ProgramVersion {
    raw: crate::scene::parse::DEFAULT_VERSION,
    revision: 0,
};

/// Verbosity of script errors in CoppeliaSim's log (notes §2).
pub const VERBOSITY_SCRIPTERRORS: i64 = 420;

/// One line of the stand-in's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Where it comes from, e.g. `Dummy0@childScript` or `standin`.
    pub origin: String,
    /// CoppeliaSim verbosity (200 errors … 450 script infos).
    pub verbosity: i64,
    pub message: String,
}

/// Where log lines go: stderr, and a channel when a test or embedder listens.
#[derive(Debug, Clone, Default)]
pub struct LogSink {
    pub tx: Option<Sender<LogLine>>,
    pub quiet: bool,
}

impl LogSink {
    pub fn emit(&self, origin: &str, verbosity: i64, message: &str) {
        if !self.quiet {
            // Through tracing, so the bridge's live view or log file gets it, not the raw
            // terminal (CoppeliaSim prints to its own console).
            match verbosity_name(verbosity) {
                "error" => tracing::error!(target: "standin", "[{origin}] {message}"),
                "warning" => tracing::warn!(target: "standin", "[{origin}] {message}"),
                _ => tracing::info!(target: "standin", "[{origin}] {message}"),
            }
        }
        if let Some(tx) = &self.tx {
            // A listener that went away is not an error for the simulation.
            let _ = tx.send(LogLine {
                origin: origin.into(),
                verbosity,
                message: message.into(),
            });
        }
    }
}

fn verbosity_name(v: i64) -> &'static str {
    match v {
        ..=200 => "error",
        201..=300 => "warning",
        420 => "error",
        430 => "warning",
        _ => "info",
    }
}

/// Simulation state visible to scripts and remote clients; updated by the engine before
/// each pass. Lives on the simulation thread only.
#[derive(Debug)]
pub struct SimView {
    /// The version claimed (`sim.intparam_program_version`, and which names exist).
    pub version: ProgramVersion,
    pub scene: Rc<Scene>,
    pub state: SimState,
    pub time_s: f64,
    pub dt_s: f64,
    pub real_time: bool,
    /// The scene's pauseAtError switch.
    pub pause_at_error: bool,
    /// Named string parameters (`-G key=value`, `sim.setNamedStringParam`).
    pub named: BTreeMap<String, String>,
    /// Start of the process clock behind `sim.getSystemTime`.
    pub process_start: Instant,
    pub log: LogSink,
}

pub type SharedView = Rc<RefCell<SimView>>;

impl SimView {
    /// `sim.getSystemTime()`: seconds since the process first read its clock, 1 ms
    /// resolution (notes §3).
    pub fn system_time_s(&self) -> f64 {
        self.process_start.elapsed().as_millis() as f64 / 1000.0
    }

    /// Object handle of scene object `index` (handles start at 1; documented).
    pub fn handle_of(index: usize) -> i64 {
        index as i64 + 1
    }

    /// Scene object index of `handle`.
    pub fn index_of(&self, handle: i64) -> Option<usize> {
        let index = usize::try_from(handle.checked_sub(1)?).ok()?;
        (index < self.scene.objects.len()).then_some(index)
    }

    pub fn int32_param(&self, param: i64) -> Option<i64> {
        match param {
            1 => Some(self.version.raw),
            30 => Some(self.version.revision),
            36 => Some(0),
            _ => None,
        }
    }

    pub fn bool_param(&self, param: i64) -> Option<bool> {
        match param {
            25 => Some(self.real_time),
            34 => Some(true),
            _ => None,
        }
    }

    pub fn float_param(&self, param: i64) -> Option<f64> {
        (param == 1).then_some(self.dt_s)
    }
}

/// Error text for parameters the stand-in does not know.
pub fn unknown_param(kind: &str, param: i64) -> String {
    format!("{kind} parameter {param} is not supported by the stand-in (see docs/STANDIN.md)")
}

/// A script's auto-yield "forbid level" (`CScriptObject::changeAutoYieldingForbidLevel`,
/// coppeliaSimLib@coppeliasim-v4.7.0-rev2:scriptObject.cpp): `sim.setStepping(true)` and
/// `sim.setThreadAutomaticSwitch(false)` raise it, their opposites lower it (not below 0), a
/// number sets it; while it is 0 a running coroutine is pre-empted after about 2 ms.
#[derive(Debug, Default)]
pub struct ScriptFlags {
    pub forbid_level: Cell<i64>,
}

impl ScriptFlags {
    /// Whether the 2 ms pre-emption applies (`CScriptObject::shouldAutoYield`).
    pub fn preemptible(&self) -> bool {
        self.forbid_level.get() == 0
    }

    /// Changes the level by `dx` (or sets it), returning the previous level.
    fn change(&self, dx: i64, absolute: bool) -> i64 {
        let previous = self.forbid_level.get();
        let next = if absolute { dx } else { (previous + dx).max(0) };
        self.forbid_level.set(next);
        previous
    }
}

/// What a script's `sim` table needs to know about its script.
#[derive(Debug, Clone)]
pub struct ScriptIdentity {
    /// Scene object the script belongs to: the object of a legacy child script, or the
    /// script object itself (4.7+).
    pub object: usize,
    /// The object `sim.getObject` paths start from: the script object, or its parent when the
    /// script object's "parent is proxy" option is on; the object itself for a legacy child
    /// script (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp, simGetObject_internal).
    pub emitter: Option<usize>,
    /// Log origin, e.g. `/Dummy0@childScript`.
    pub origin: String,
    pub flags: Rc<ScriptFlags>,
}

impl ScriptIdentity {
    /// The identity of the script of scene object `object` in `version`.
    pub fn new(scene: &Scene, object: usize, version: ProgramVersion) -> Self {
        let o = &scene.objects[object];
        let emitter = match o.script_kind {
            ScriptKind::Object {
                parent_is_proxy: true,
            } => o.parent,
            _ => Some(object),
        };
        ScriptIdentity {
            object,
            emitter,
            origin: origin(scene, object, version),
            flags: Rc::new(ScriptFlags::default()),
        }
    }

    pub fn origin(&self) -> String {
        self.origin.clone()
    }
}

/// Log origin of a script (`CScriptObject::getShortDescriptiveName`): the object's short
/// path with a leading `/`; legacy child scripts add `@childScript` up to 4.6
/// (coppeliaSimLib@coppeliasim-v4.6.0-rev18:scriptObject.cpp) and `@simulationScript` from
/// 4.7 (coppeliaSimLib@coppeliasim-v4.7.0-rev0:scriptObject.cpp); a script object adds nothing.
pub fn origin(scene: &Scene, object: usize, version: ProgramVersion) -> String {
    let path = scene.short_path(object);
    match scene.objects[object].script_kind {
        ScriptKind::Object { .. } => path,
        ScriptKind::Child if version.raw >= api::V4_7 => format!("{path}@simulationScript"),
        ScriptKind::Child => format!("{path}@childScript"),
    }
}

/// `sim.getObjectType` of a scene object kind (include@coppeliasim-v4.7.0-rev0:simConst.h,
/// scene object types).
pub fn object_type(kind: &str) -> i64 {
    match kind {
        "shape" => 0,
        "joint" => 1,
        "graph" => 2,
        "camera" => 3,
        "dummy" => 4,
        "proximitySensor" => 5,
        "path" => 8,
        "visionSensor" => 9,
        "forceSensor" => 12,
        "light" => 13,
        "ocTree" => 15,
        "pointCloud" => 16,
        _ => 17, // script
    }
}

fn lua_err(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

fn to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Builds the `sim` table for one script, registers it as global `sim` and, from 4.6, as
/// `package.loaded.sim` (`require('sim')` returns it). Only the names [`api::SIM_API`] gives
/// the claimed version are left in it: anything else is `nil`, as in CoppeliaSim.
pub fn register(lua: &Lua, view: SharedView, me: ScriptIdentity) -> mlua::Result<Table> {
    let sim = lua.create_table()?;
    add_clock_functions(lua, &sim, &view)?;
    add_object_functions(lua, &sim, &view, &me)?;
    add_param_functions(lua, &sim, &view)?;
    add_thread_functions(lua, &sim, &me)?;
    add_log_functions(lua, &sim, &view, &me)?;
    let version = view.borrow().version;
    let names: Vec<String> = sim
        .pairs::<String, Value>()
        .filter_map(|kv| kv.ok())
        .map(|(k, _)| k)
        .collect();
    for name in names {
        if !api::has_function(version, &name, false) {
            sim.set(name, Value::Nil)?;
        }
    }
    for (name, value) in api::constants(version) {
        sim.set(name, value)?;
    }
    lua.globals().set("sim", sim.clone())?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    if version.raw >= api::V4_6 {
        loaded.set("sim", sim.clone())?;
    } else {
        // 4.3-4.5: sim.lua is a plain chunk that fills the global `sim`, so require('sim')
        // gives `true` (notes §2, inferred from lua@coppeliasim-v4.5.1-rev4:sim.lua).
        loaded.set("sim", true)?;
    }
    Ok(sim)
}

fn add_clock_functions(lua: &Lua, sim: &Table, view: &SharedView) -> mlua::Result<()> {
    let v = view.clone();
    sim.set(
        "getSimulationTime",
        lua.create_function(move |_, ()| Ok(v.borrow().time_s))?,
    )?;
    let v = view.clone();
    sim.set(
        "getSimulationTimeStep",
        lua.create_function(move |_, ()| Ok(v.borrow().dt_s))?,
    )?;
    let v = view.clone();
    sim.set(
        "getSimulationState",
        lua.create_function(move |_, ()| Ok(v.borrow().state.raw()))?,
    )?;
    let v = view.clone();
    sim.set(
        "getSystemTime",
        lua.create_function(move |_, ()| Ok(v.borrow().system_time_s()))?,
    )?;
    Ok(())
}

fn add_object_functions(
    lua: &Lua,
    sim: &Table,
    view: &SharedView,
    me: &ScriptIdentity,
) -> mlua::Result<()> {
    let (v, emitter) = (view.clone(), me.emitter);
    sim.set(
        "getObject",
        lua.create_function(move |_, (path, options): (String, Option<Table>)| {
            let (no_error, proxy) = match options {
                Some(o) => (
                    o.get::<Option<bool>>("noError")?.unwrap_or(false),
                    o.get::<Option<i64>>("proxy")?,
                ),
                None => (false, None),
            };
            let view = v.borrow();
            let from = match proxy {
                Some(h) => Some(
                    view.index_of(h)
                        .ok_or_else(|| lua_err("invalid proxy object"))?,
                ),
                None => emitter,
            };
            match view.scene.resolve(from, &path) {
                Some(i) => Ok(SimView::handle_of(i)),
                None if no_error => Ok(-1),
                None => Err(lua_err(format!(
                    "object does not exist or ill-formatted path: {path}"
                ))),
            }
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getObjectAlias",
        lua.create_function(move |_, (handle, _options): (i64, Option<i64>)| {
            let view = v.borrow();
            let i = view.object(handle)?;
            Ok(view.scene.objects[i].alias.clone())
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getObjectType",
        lua.create_function(move |_, handle: i64| {
            let view = v.borrow();
            let i = view.object(handle)?;
            Ok(object_type(&view.scene.objects[i].kind))
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getObjectParent",
        lua.create_function(move |_, handle: i64| {
            let view = v.borrow();
            let i = view.object(handle)?;
            Ok(view.scene.objects[i].parent.map_or(-1, SimView::handle_of))
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getExtensionString",
        lua.create_function(
            move |_, (handle, _index, key): (i64, Option<i64>, Option<String>)| {
                v.borrow()
                    .extension_string(handle, key.as_deref().unwrap_or(""))
                    .map_err(lua_err)
            },
        )?,
    )?;
    Ok(())
}

impl SimView {
    /// Scene object index of `handle`, or CoppeliaSim's error.
    fn object(&self, handle: i64) -> mlua::Result<usize> {
        self.index_of(handle)
            .ok_or_else(|| lua_err("object does not exist"))
    }

    /// `sim.getExtensionString(handle, -1, key)`: `None` when empty or the key is missing;
    /// handle -1 is the scene's own (empty) extension string
    /// (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp, simGetExtensionString_internal).
    pub fn extension_string(&self, handle: i64, key: &str) -> Result<Option<String>, String> {
        if handle == -1 {
            return Ok(None);
        }
        let i = self
            .index_of(handle)
            .ok_or_else(|| "object does not exist".to_owned())?;
        let ext = &self.scene.objects[i].extension;
        Ok(if key.is_empty() {
            Some(ext.clone()).filter(|e| !e.is_empty())
        } else {
            extension_value(ext, key)
        })
    }
}

fn add_param_functions(lua: &Lua, sim: &Table, view: &SharedView) -> mlua::Result<()> {
    let v = view.clone();
    sim.set(
        "getNamedStringParam",
        lua.create_function(move |_, key: String| Ok(v.borrow().named.get(&key).cloned()))?,
    )?;
    let v = view.clone();
    sim.set(
        "setNamedStringParam",
        lua.create_function(move |_, (key, value): (String, mlua::String)| {
            let value = String::from_utf8_lossy(&value.as_bytes()).into_owned();
            v.borrow_mut().named.insert(key, value);
            Ok(())
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getInt32Param",
        lua.create_function(move |_, p: Value| {
            let p = to_i64(&p).ok_or_else(|| lua_err("getInt32Param: integer expected"))?;
            v.borrow()
                .int32_param(p)
                .ok_or_else(|| lua_err(unknown_param("integer", p)))
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getBoolParam",
        lua.create_function(move |_, p: Value| {
            let p = to_i64(&p).ok_or_else(|| lua_err("getBoolParam: integer expected"))?;
            v.borrow()
                .bool_param(p)
                .ok_or_else(|| lua_err(unknown_param("boolean", p)))
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getFloatParam",
        lua.create_function(move |_, p: Value| {
            let p = to_i64(&p).ok_or_else(|| lua_err("getFloatParam: integer expected"))?;
            v.borrow()
                .float_param(p)
                .ok_or_else(|| lua_err(unknown_param("float", p)))
        })?,
    )?;
    Ok(())
}

fn add_thread_functions(lua: &Lua, sim: &Table, me: &ScriptIdentity) -> mlua::Result<()> {
    // sim.lua (lua@coppeliasim-v4.7.0-rev2): setStepping(enable) calls setAutoYield(not
    // enable) for a boolean-ish value, setAutoYield(n) for a number; setAutoYield returns the
    // previous forbid level (coppeliaSimLib@coppeliasim-v4.7.0-rev2:luaScriptFunctions.cpp,
    // _setAutoYield).
    let flags = me.flags.clone();
    sim.set(
        "setStepping",
        lua.create_function(move |_, enable: Value| {
            Ok(match enable {
                Value::Integer(n) => flags.change(n, true),
                Value::Number(n) => flags.change(n as i64, true),
                Value::Nil | Value::Boolean(false) => flags.change(-1, false),
                _ => flags.change(1, false),
            })
        })?,
    )?;
    let flags = me.flags.clone();
    sim.set(
        "setThreadAutomaticSwitch",
        lua.create_function(move |_, enable: Value| {
            let allow = !matches!(enable, Value::Nil | Value::Boolean(false));
            Ok(flags.change(if allow { -1 } else { 1 }, false))
        })?,
    )?;
    // sim.step / sim.switchThread yield the running coroutine: written in Lua because a Rust
    // function cannot yield in Lua 5.3. Outside a coroutine they return silently, as sim.yield
    // does (`local thread, yieldForbidden = coroutine.running(); if not yieldForbidden then
    // coroutine.yield() end`, lua@coppeliasim-v4.7.0-rev2:sim.lua).
    let yielders: Table = lua
        .load(
            r#"local function yield()
    local _, main = coroutine.running()
    if not main then coroutine.yield() end
end
return { step = function() yield() end, switchThread = function() yield() end }"#,
        )
        .set_name("=sim")
        .eval()?;
    sim.set("step", yielders.get::<mlua::Function>("step")?)?;
    sim.set(
        "switchThread",
        yielders.get::<mlua::Function>("switchThread")?,
    )?;
    Ok(())
}

fn add_log_functions(
    lua: &Lua,
    sim: &Table,
    view: &SharedView,
    me: &ScriptIdentity,
) -> mlua::Result<()> {
    let (v, origin) = (view.clone(), me.origin.clone());
    sim.set(
        "addLog",
        lua.create_function(move |_, args: MultiValue| {
            let verbosity = args.front().and_then(to_i64).unwrap_or(450) & 0xffff;
            let message = match args.get(1) {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            v.borrow().log.emit(&origin, verbosity, &message);
            Ok(())
        })?,
    )?;
    Ok(())
}
