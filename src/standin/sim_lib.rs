//! The `sim` API seen by child scripts and by remote clients: shared state, constants,
//! parameters, and the Lua `sim` table.
//!
//! Behaviour follows `/work/shared/coppeliasim-notes.md` §2–§4 and §6 (CoppeliaSim 4.6+:
//! `require('sim')` returns the table).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use mlua::{Lua, MultiValue, Table, Value};

use super::scheduler::SimState;
use crate::scene::parse::{extension_value, Scene};

/// `sim.intparam_program_version` the stand-in reports: 4.6.0 (the first version with
/// remote API protocol 2 and `sysCall_thread`; documented in docs/STANDIN.md).
pub const PROGRAM_VERSION: i64 = 40600;
/// `sim.intparam_program_revision` the stand-in reports.
pub const PROGRAM_REVISION: i64 = 0;

/// Numeric constants of the `sim` namespace (notes §6), shared by the Lua table and the
/// remote API's `zmqRemoteApi.info`.
pub const CONSTANTS: &[(&str, i64)] = &[
    ("simulation_stopped", 0),
    ("simulation_paused", 8),
    ("simulation_advancing", 16),
    ("simulation_advancing_firstafterstop", 16),
    ("simulation_advancing_running", 17),
    ("simulation_advancing_lastbeforepause", 19),
    ("simulation_advancing_firstafterpause", 20),
    ("simulation_advancing_abouttostop", 21),
    ("simulation_advancing_lastbeforestop", 22),
    ("floatparam_simulation_time_step", 1),
    ("boolparam_realtime_simulation", 25),
    ("boolparam_headless", 34),
    ("intparam_program_version", 1),
    ("intparam_program_revision", 30),
    ("intparam_speedmodifier", 36),
    ("handle_all", -2),
    ("handle_self", -4),
    ("handle_world", -1),
    ("handle_scene", -12),
    ("object_dummy_type", 4),
    ("scripttype_main", 0),
    ("scripttype_childscript", 1),
    ("scripttype_simulation", 1),
    ("scripttype_addon", 2),
    ("scripttype_customization", 6),
    ("stringparam_scene_path_and_name", 13),
    ("stringparam_scene_path", 14),
    ("stringparam_scene_name", 15),
    ("verbosity_none", 100),
    ("verbosity_errors", 200),
    ("verbosity_warnings", 300),
    ("verbosity_loadinfos", 400),
    ("verbosity_scripterrors", 420),
    ("verbosity_scriptwarnings", 430),
    ("verbosity_scriptinfos", 450),
    ("verbosity_infos", 500),
    ("verbosity_debug", 600),
    ("verbosity_trace", 700),
];

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
            1 => Some(PROGRAM_VERSION),
            30 => Some(PROGRAM_REVISION),
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

/// Per-script flags the `sim` functions change.
#[derive(Debug)]
pub struct ScriptFlags {
    /// `sim.setStepping(true)`: no automatic thread switch.
    pub stepping: Cell<bool>,
    /// `sim.setThreadAutomaticSwitch(false)`: same effect, older API.
    pub auto_switch: Cell<bool>,
}

impl Default for ScriptFlags {
    fn default() -> Self {
        ScriptFlags {
            stepping: Cell::new(false),
            auto_switch: Cell::new(true),
        }
    }
}

impl ScriptFlags {
    /// Whether the 2 ms pre-emption of `sysCall_thread` applies (notes §2).
    pub fn preemptible(&self) -> bool {
        !self.stepping.get() && self.auto_switch.get()
    }
}

/// What a script's `sim` table needs to know about its script.
#[derive(Debug, Clone)]
pub struct ScriptIdentity {
    pub object: usize,
    pub alias: String,
    pub flags: Rc<ScriptFlags>,
}

impl ScriptIdentity {
    pub fn origin(&self) -> String {
        format!("{}@childScript", self.alias)
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

/// Builds the `sim` table for one script, registers it as global `sim` and as
/// `package.loaded.sim` (4.6+: `require('sim')` returns it).
pub fn register(lua: &Lua, view: SharedView, me: ScriptIdentity) -> mlua::Result<Table> {
    let sim = lua.create_table()?;
    for (name, value) in CONSTANTS {
        sim.set(*name, *value)?;
    }
    add_clock_functions(lua, &sim, &view)?;
    add_object_functions(lua, &sim, &view, &me)?;
    add_param_functions(lua, &sim, &view)?;
    add_thread_functions(lua, &sim, &me)?;
    add_log_functions(lua, &sim, &view, &me)?;
    lua.globals().set("sim", sim.clone())?;
    let loaded: Table = lua.globals().get::<Table>("package")?.get("loaded")?;
    loaded.set("sim", sim.clone())?;
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
    let (v, own) = (view.clone(), me.object);
    sim.set(
        "getObject",
        lua.create_function(move |_, (path, options): (String, Option<Table>)| {
            let no_error = options.is_some_and(|o| {
                o.get::<bool>("noError").unwrap_or(false)
                    || o.get::<i64>("option").unwrap_or(0) & 1 == 1
            });
            let view = v.borrow();
            let found = match path.as_str() {
                "." => Some(own),
                ":" => view.scene.objects[own].parent,
                p => view.scene.find_path(p),
            };
            match found {
                Some(i) => Ok(SimView::handle_of(i)),
                None if no_error => Ok(-1),
                None => Err(lua_err(format!("object does not exist: {path}"))),
            }
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getObjectAlias",
        lua.create_function(move |_, (handle, _options): (i64, Option<i64>)| {
            let view = v.borrow();
            let i = view
                .index_of(handle)
                .ok_or_else(|| lua_err("object does not exist"))?;
            Ok(view.scene.objects[i].alias.clone())
        })?,
    )?;
    let v = view.clone();
    sim.set(
        "getExtensionString",
        lua.create_function(
            move |_, (handle, _index, key): (i64, Option<i64>, Option<String>)| {
                let view = v.borrow();
                let i = view
                    .index_of(handle)
                    .ok_or_else(|| lua_err("object does not exist"))?;
                let ext = &view.scene.objects[i].extension;
                Ok(match key {
                    None => Some(ext.clone()),
                    Some(k) => extension_value(ext, &k).map(str::to_owned),
                })
            },
        )?,
    )?;
    Ok(())
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
    let flags = me.flags.clone();
    sim.set(
        "setStepping",
        lua.create_function(move |_, enable: bool| {
            let previous = i64::from(flags.stepping.replace(enable));
            Ok(previous)
        })?,
    )?;
    let flags = me.flags.clone();
    sim.set(
        "setThreadAutomaticSwitch",
        lua.create_function(move |_, enable: Value| {
            let enable = match enable {
                Value::Boolean(b) => b,
                other => to_i64(&other).is_some_and(|i| i != 0),
            };
            let previous = i64::from(!flags.auto_switch.replace(enable));
            Ok(previous)
        })?,
    )?;
    // sim.step / sim.switchThread yield the sysCall_thread coroutine: written in Lua
    // because a Rust function cannot yield in Lua 5.3.
    let yielders: Table = lua
        .load(
            r#"local function yielder(name)
    return function()
        if not coroutine.isyieldable() then
            error(name .. ': can only be called from a thread (sysCall_thread or a coroutine)', 2)
        end
        coroutine.yield()
    end
end
return { step = yielder('sim.step'), switchThread = yielder('sim.switchThread') }"#,
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
    let (v, origin) = (view.clone(), me.origin());
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
