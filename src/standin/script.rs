//! A child script in its own Lua 5.3 state (mlua, vendored: no system Lua).
//!
//! The chunk is loaded and run at the script's first visit; callbacks are looked up as
//! globals at each call, as CoppeliaSim does. A global `sysCall_thread` makes the script
//! threaded (4.6+): its coroutine is created after `sysCall_init` and resumed once per pass
//! before `sysCall_actuation`; while automatic switching is on (not stepping), it is
//! pre-empted after about 2 ms (notes §2).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, Thread, ThreadStatus, VmState};

use super::pass::Script;
use super::scheduler::Pass;
use super::sim_lib::{self, ScriptFlags, ScriptIdentity, SharedView};
use super::socket_lib::{self, SocketFaults};

/// How long a `sysCall_thread` runs before CoppeliaSim pre-empts it (notes §2).
const AUTO_SWITCH_AFTER: Duration = Duration::from_millis(2);
/// Instructions between two checks of the pre-emption clock.
const HOOK_EVERY: u32 = 1000;

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
    resumed_at: Rc<Cell<Instant>>,
    crash_at_s: Option<f64>,
}

impl LuaScript {
    /// Creates the Lua state for scene object `object`, installs `sim` and `socket`, and
    /// runs the chunk. Errors are reported like CoppeliaSim's script errors.
    pub fn load(object: usize, text: &str, env: &ScriptEnv) -> Result<Self, String> {
        let alias = env.view.borrow().scene.objects[object].alias.clone();
        let me = ScriptIdentity {
            object,
            alias,
            flags: Rc::new(ScriptFlags::default()),
        };
        let lua = Lua::new();
        sim_lib::register(&lua, env.view.clone(), me.clone()).map_err(|e| e.to_string())?;
        socket_lib::register(&lua, env.faults.clone()).map_err(|e| e.to_string())?;
        // CoppeliaSim names the chunk after the script, so messages read
        // `[string "Dummy0@childScript"]:12: ...`.
        lua.load(text)
            .set_name(me.origin())
            .exec()
            .map_err(|e| e.to_string())?;
        Ok(LuaScript {
            lua,
            me,
            thread: None,
            resumed_at: Rc::new(Cell::new(Instant::now())),
            crash_at_s: env.crash_at_s,
        })
    }

    /// `<alias>@childScript`.
    pub fn origin(&self) -> String {
        self.me.origin()
    }

    /// Calls global `name` if the script defines it.
    fn call_global(&self, name: &str) -> Result<(), String> {
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
        let (flags, resumed_at) = (self.me.flags.clone(), self.resumed_at.clone());
        thread.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                let overdue = resumed_at.get().elapsed() >= AUTO_SWITCH_AFTER;
                Ok(if flags.preemptible() && overdue {
                    VmState::Yield
                } else {
                    VmState::Continue
                })
            },
        );
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
        self.resumed_at.set(Instant::now());
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
