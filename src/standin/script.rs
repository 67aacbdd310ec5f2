//! A child script in its own Lua 5.3 state (mlua, vendored: no system Lua).
//!
//! The chunk is loaded and run at the script's first visit; callbacks are looked up as
//! globals at each call, as CoppeliaSim does. A global `sysCall_thread` makes the script
//! threaded (4.6+): its coroutine is created after `sysCall_init` and resumed once per pass
//! before `sysCall_actuation`.
//!
//! Pre-emption, in every version 4.3-4.10: a count hook runs about every 100 VM instructions
//! and yields whatever coroutine is running (`coroutine.running()` not the main thread) once
//! about 2 ms passed since the script was last called, unless the script's forbid level is
//! above 0 (`sim.setStepping(true)`) (coppeliaSimLib@coppeliasim-v4.5.1-rev4 and
//! @coppeliasim-v4.7.0-rev2:scriptObject.cpp, `_hookFunction_lua`, `shouldAutoYield`). So a
//! self-made coroutine (the 4.3-4.5 pattern) is pre-empted too.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, Thread, ThreadStatus, VmState};

use super::pass::Script;
use super::scheduler::Pass;
use super::sim_lib::{self, ScriptFlags, ScriptIdentity, SharedView};
use super::socket_lib::{self, SocketFaults};

/// `_delayForAutoYielding`: how long a coroutine runs before it is pre-empted.
const AUTO_SWITCH_AFTER: Duration = Duration::from_millis(2);
/// Instructions between two checks of the pre-emption clock (CoppeliaSim: 95 to 104).
const HOOK_EVERY: u32 = 100;

/// Settings a script needs besides its text.
#[derive(Debug, Clone)]
pub struct ScriptEnv {
    pub view: SharedView,
    pub faults: SocketFaults,
    /// `--crash-script-at T`: raise a Lua error in the first sensing at t ≥ T.
    pub crash_at_s: Option<f64>,
}

/// A loaded child script.
#[derive(Debug)]
pub struct LuaScript {
    lua: Lua,
    me: ScriptIdentity,
    thread: Option<Thread>,
    preemption: Preemption,
    crash_at_s: Option<f64>,
}

impl LuaScript {
    /// Creates the Lua state for scene object `object`, installs `sim` and `socket`, and
    /// runs the chunk. Errors are reported like CoppeliaSim's script errors.
    pub fn load(object: usize, text: &str, env: &ScriptEnv) -> Result<Self, String> {
        let me = {
            let view = env.view.borrow();
            ScriptIdentity::new(&view.scene, object, view.version)
        };
        let lua = Lua::new();
        sim_lib::register(&lua, env.view.clone(), me.clone()).map_err(|e| e.to_string())?;
        socket_lib::register(&lua, env.faults.clone()).map_err(|e| e.to_string())?;
        let preemption = Preemption {
            flags: me.flags.clone(),
            resumed_at: Rc::new(Cell::new(Instant::now())),
        };
        preemption.install(&lua).map_err(|e| e.to_string())?;
        // CoppeliaSim names the chunk after the script, so messages read
        // `[string "/Dummy0@childScript"]:12: ...`.
        lua.load(text)
            .set_name(me.origin())
            .exec()
            .map_err(|e| e.to_string())?;
        Ok(LuaScript {
            lua,
            me,
            thread: None,
            preemption,
            crash_at_s: env.crash_at_s,
        })
    }

    /// `<alias>@childScript`.
    pub fn origin(&self) -> String {
        self.me.origin()
    }

    /// Calls global `name` if the script defines it.
    fn call_global(&self, name: &str) -> Result<(), String> {
        self.preemption.resumed_at.set(Instant::now());
        match self.lua.globals().get::<Option<Function>>(name) {
            Ok(Some(f)) => f.call::<()>(()).map_err(|e| e.to_string()),
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Creates the `sysCall_thread` coroutine with its pre-emption hook.
    fn create_thread(&mut self) -> Result<(), String> {
        let Some(f) = self
            .lua
            .globals()
            .get::<Option<Function>>("sysCall_thread")
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let thread = self.lua.create_thread(f).map_err(|e| e.to_string())?;
        self.thread = Some(thread);
        Ok(())
    }

    /// `--crash-script-at`: a real Lua error raised inside the script's state.
    fn injected_crash(&mut self, pass: &Pass) -> Result<(), String> {
        match self.crash_at_s {
            Some(at) if pass.time_s >= at => {
                self.crash_at_s = None;
                let code = format!("error('fault injected by --crash-script-at {at}')");
                self.lua
                    .load(code)
                    .set_name(self.me.origin())
                    .exec()
                    .map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }
}

/// Pre-emption state of one script: its forbid level and when it was last called.
#[derive(Debug, Clone)]
struct Preemption {
    flags: Rc<ScriptFlags>,
    resumed_at: Rc<Cell<Instant>>,
}

impl Preemption {
    /// Puts the count hook on `thread`, the coroutine about to run. mlua keeps one hooked
    /// thread per state (a hook inherited by another coroutine switches itself off), so the
    /// hook follows whichever coroutine runs: armed before each resume, re-armed on the
    /// resumer when a nested resume returns.
    fn arm(&self, thread: &Thread) {
        let this = self.clone();
        thread.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                let overdue = this.resumed_at.get().elapsed() >= AUTO_SWITCH_AFTER;
                Ok(if this.flags.preemptible() && overdue {
                    this.resumed_at.set(Instant::now());
                    VmState::Yield
                } else {
                    VmState::Continue
                })
            },
        );
    }

    /// Routes the script's `coroutine.resume` and `coroutine.wrap` through [`Preemption::arm`],
    /// so self-made coroutines are pre-empted too.
    fn install(&self, lua: &Lua) -> mlua::Result<()> {
        let this = self.clone();
        let arm = lua.create_function(move |_, co: Thread| {
            this.arm(&co);
            Ok(())
        })?;
        let wrap: Function = lua
            .load(
                r#"local arm = ...
local create, resume, running = coroutine.create, coroutine.resume, coroutine.running
local pack, unpack = table.pack, table.unpack
local function armed_resume(co, ...)
    arm(co)
    local r = pack(resume(co, ...))
    local cur, main = running()
    if not main then arm(cur) end
    return unpack(r, 1, r.n)
end
coroutine.resume = armed_resume
coroutine.wrap = function(f)
    local co = create(f)
    return function(...)
        local r = pack(armed_resume(co, ...))
        if not r[1] then error(r[2], 2) end
        return unpack(r, 2, r.n)
    end
end"#,
            )
            .set_name("=coroutine")
            .into_function()?;
        wrap.call::<()>(arm)
    }
}

impl Script for LuaScript {
    fn init(&mut self, _pass: &Pass) -> Result<(), String> {
        self.call_global("sysCall_init")?;
        self.create_thread()
    }

    fn resume_thread(&mut self, _pass: &Pass) -> Result<(), String> {
        let Some(thread) = &self.thread else {
            return Ok(());
        };
        if thread.status() != ThreadStatus::Resumable {
            return Ok(());
        }
        self.preemption.resumed_at.set(Instant::now());
        self.preemption.arm(thread);
        thread.resume::<()>(()).map_err(|e| e.to_string())
    }

    fn actuation(&mut self, _pass: &Pass) -> Result<(), String> {
        self.call_global("sysCall_actuation")
    }

    fn sensing(&mut self, pass: &Pass) -> Result<(), String> {
        self.injected_crash(pass)?;
        self.call_global("sysCall_sensing")
    }

    fn cleanup(&mut self, _pass: &Pass) -> Result<(), String> {
        self.call_global("sysCall_cleanup")
    }
}
