//! The simulation thread: scheduler, Lua scripts, remote API server and pacing together.
//!
//! Lua states are not `Send`, so everything that touches them lives on this one thread;
//! the remote API server runs on it too, at each pass's add-on point (the add-on's
//! `sysCall_actuation`) and between passes while stopped or paused (`sysCall_nonSimulation`),
//! as CoppeliaSim's ZMQ add-on does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciborium::Value;
use rand::SeedableRng;

use super::api;
use super::pacing::{Pacer, Speed, Stall};
use super::pass::{pause_after_faults, run_pass, ScriptFault, Slot};
use super::remote::SimControl;
use super::remote_server::RemoteServer;
use super::scene_edit::{self, LegacyScripts};
use super::scheduler::{Pass, Scheduler, SimState};
use super::script::{LuaScript, ScriptEnv};
use super::sim_lib::{
    self, unknown_param, LogSink, SharedView, SimView, DEFAULT_VERSION, VERBOSITY_SCRIPTERRORS,
};
use super::socket_lib::SocketFaults;
use crate::remote_api::ProgramVersion;
use crate::scene::parse::{parse_scene_for, Scene};
use crate::scene::write::scene_to_xml;

/// The process's first clock read, behind `sim.getSystemTime` (notes §3): shared by every
/// stand-in in the process and kept across runs.
static PROCESS_CLOCK: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Origin of the stand-in's own log lines.
const ORIGIN: &str = "standin";

/// Largest `--clock-offset` accepted, s (a day).
pub const MAX_CLOCK_OFFSET_S: f64 = 86_400.0;

/// Fault injection settings.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fraction of UDP sends silently dropped (0..=1).
    pub drop_rate: f64,
    /// The scripts' `socket.gettime()` runs this many seconds ahead of the host's clock
    /// (negative: behind): a sender host whose clock is not synchronised.
    pub clock_offset_s: f64,
    /// Seed of the drop RNG.
    pub seed: u64,
    /// One wall stall at a simulation time.
    pub stall: Option<Stall>,
    /// Raise a Lua error in every script at this simulation time.
    pub crash_at_s: Option<f64>,
    /// Passes run back-to-back per real-time frame (1 = none).
    pub passes_per_frame: u32,
}

/// Everything the stand-in runs with.
#[derive(Debug, Clone)]
pub struct StandinConfig {
    /// The scene, parsed for [`StandinConfig::version`] (`parse_scene_for`).
    pub scene: Scene,
    /// The CoppeliaSim version claimed: `sim.intparam_program_version`, which `sim.*` names
    /// exist ([`super::api`]), log origins. Default 4.6.0.
    pub version: ProgramVersion,
    /// Overrides the scene's time step, seconds.
    pub dt_s: Option<f64>,
    /// None: the scene's realTime switch decides (real time, else max speed).
    pub speed: Option<Speed>,
    /// `-G key=value` named string parameters.
    pub named_params: BTreeMap<String, String>,
    /// Remote API bind (host, port; port 0 = any free port); None = no remote API.
    pub remote: Option<(String, u16)>,
    /// Start the simulation at once (CoppeliaSim's `-s`).
    pub start: bool,
    pub faults: Faults,
    pub log: LogSink,
}

impl StandinConfig {
    /// Defaults for a scene: remote API on 127.0.0.1:23000, not started, no faults.
    pub fn new(scene: Scene) -> Self {
        StandinConfig {
            scene,
            version: DEFAULT_VERSION,
            dt_s: None,
            speed: None,
            named_params: BTreeMap::new(),
            remote: Some(("127.0.0.1".into(), 23000)),
            start: false,
            faults: Faults {
                passes_per_frame: 1,
                ..Faults::default()
            },
            log: LogSink::default(),
        }
    }
}

/// What a finished stand-in did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Passes run over all runs.
    pub passes: u64,
    /// Runs started.
    pub runs: u64,
    /// Script errors reported.
    pub script_errors: u64,
    /// CPU seconds (user + system) of the simulation thread, which runs the scripts and the
    /// remote API server; `None` where unmeasured. A sweep subtracts it from the process's
    /// to get the bridge's own CPU.
    pub cpu_s: Option<f64>,
}

/// Why the stand-in failed.
#[derive(Debug, thiserror::Error)]
pub enum StandinError {
    #[error(transparent)]
    Remote(#[from] super::remote_server::RemoteError),
    #[error("cannot start the simulation thread: {0}")]
    Thread(std::io::Error),
    #[error("the simulation thread panicked: {0}")]
    Panicked(String),
    #[error("CoppeliaSim {0} speaks remote API protocol 1, which the stand-in does not serve: claim 4.6 or later, or use --no-remote")]
    Protocol1(ProgramVersion),
}

/// A running stand-in (its simulation thread).
#[derive(Debug)]
pub struct Standin {
    endpoint: Option<String>,
    shutdown: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Summary>>,
}

impl Standin {
    /// The remote API endpoint actually bound, e.g. `tcp://127.0.0.1:40123`.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The remote API port actually bound.
    pub fn port(&self) -> Option<u16> {
        self.endpoint.as_deref()?.rsplit(':').next()?.parse().ok()
    }

    /// Asks the simulation to stop (running the stop passes, so scripts clean up) and the
    /// thread to end. Returns at once; see [`Standin::join`].
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Whether the simulation thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits for the simulation thread.
    pub fn join(mut self) -> Result<Summary, StandinError> {
        let Some(thread) = self.thread.take() else {
            return Ok(Summary::default());
        };
        thread.join().map_err(|p| {
            let text = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            StandinError::Panicked(text)
        })
    }

    /// [`Standin::request_shutdown`] then [`Standin::join`].
    pub fn shutdown(self) -> Result<Summary, StandinError> {
        self.request_shutdown();
        self.join()
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

/// Binds the remote API (if any) and starts the simulation thread.
pub fn spawn(config: StandinConfig) -> Result<Standin, StandinError> {
    if config.remote.is_some() && !config.version.speaks_protocol_2() {
        return Err(StandinError::Protocol1(config.version));
    }
    let server = match &config.remote {
        Some((host, port)) => Some(RemoteServer::bind(host, *port)?),
        None => None,
    };
    let endpoint = server.as_ref().map(|s| s.endpoint().to_owned());
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("standin-sim".into())
        .spawn(move || Engine::new(config, server, flag).run())
        .map_err(StandinError::Thread)?;
    Ok(Standin {
        endpoint,
        shutdown,
        thread: Some(thread),
    })
}

/// State of the simulation thread.
struct Engine {
    scheduler: Scheduler,
    view: SharedView,
    server: Option<RemoteServer>,
    pacer: Pacer,
    env: ScriptEnv,
    /// Scene object index of each script, in execution order (fixed per run).
    order: Vec<usize>,
    slots: Vec<Slot<LuaScript>>,
    /// Legacy child scripts made by remote `sim.addScript`.
    legacy: LegacyScripts,
    pause_at_error: bool,
    dt_override: Option<f64>,
    speed_override: Option<Speed>,
    faults: Faults,
    shutdown: Arc<AtomicBool>,
    summary: Summary,
}

impl Engine {
    fn new(config: StandinConfig, server: Option<RemoteServer>, shutdown: Arc<AtomicBool>) -> Self {
        let dt_s = config.dt_s.unwrap_or(config.scene.dt_s);
        let speed = speed_for(&config.scene, config.speed);
        let view = Rc::new(RefCell::new(SimView {
            version: config.version,
            real_time: matches!(speed, Speed::RealTime { .. }),
            pause_at_error: config.scene.pause_at_error,
            scene: Rc::new(config.scene),
            state: SimState::Stopped,
            time_s: 0.0,
            dt_s,
            named: config.named_params,
            process_start: *PROCESS_CLOCK.get_or_init(Instant::now),
            log: config.log,
        }));
        let faults = SocketFaults {
            drop_rate: config.faults.drop_rate.clamp(0.0, 1.0),
            clock_offset_s: config.faults.clock_offset_s,
            rng: Rc::new(RefCell::new(rand::rngs::StdRng::seed_from_u64(
                config.faults.seed,
            ))),
        };
        let mut scheduler = Scheduler::new(dt_s);
        if config.start {
            scheduler.start();
        }
        let pause_at_error = view.borrow().pause_at_error;
        Engine {
            scheduler,
            server,
            pacer: Pacer::new(speed, config.faults.passes_per_frame, config.faults.stall),
            env: ScriptEnv {
                view: view.clone(),
                faults,
                crash_at_s: config.faults.crash_at_s,
            },
            view,
            order: Vec::new(),
            slots: Vec::new(),
            legacy: LegacyScripts::default(),
            pause_at_error,
            dt_override: config.dt_s,
            speed_override: config.speed,
            faults: config.faults,
            shutdown,
            summary: Summary::default(),
        }
    }

    fn log(&self, verbosity: i64, message: &str) {
        self.view.borrow().log.emit(ORIGIN, verbosity, message);
    }

    fn run(mut self) -> Summary {
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                if self.scheduler.state() == SimState::Stopped {
                    break;
                }
                // Finish the run properly so scripts get their cleanup (BYE datagrams).
                self.scheduler.stop();
            }
            match self.scheduler.next_pass() {
                Some(pass) => self.run_one(pass),
                None => self.serve_idle(),
            }
        }
        self.summary.runs = self.scheduler.runs();
        self.summary.cpu_s = crate::time::cpu_time_s(crate::time::CpuOf::Thread);
        self.summary
    }

    fn serve_idle(&mut self) {
        let Some(mut server) = self.server.take() else {
            std::thread::sleep(Duration::from_millis(20));
            return;
        };
        let mut ctl = Control {
            engine: self,
            in_pass: false,
        };
        server.serve_idle(&mut ctl);
        self.server = Some(server);
        self.apply_after_serving();
    }

    /// Applies what a remote client changed while stopped (scene, dt).
    fn apply_after_serving(&mut self) {
        let dt = self.view.borrow().dt_s;
        if self.scheduler.state() == SimState::Stopped && dt != self.scheduler.dt_s() {
            self.scheduler.set_dt_s(dt);
        }
    }

    fn begin_run(&mut self) {
        self.order = self.view.borrow().scene.script_order();
        self.slots = self.order.iter().map(|_| Slot::Unloaded).collect();
        self.env.crash_at_s = self.faults.crash_at_s;
        self.pacer.start(true, Instant::now());
        let names: Vec<String> = {
            let view = self.view.borrow();
            self.order
                .iter()
                .map(|&i| view.scene.objects[i].alias.clone())
                .collect()
        };
        self.log(
            450,
            &format!(
                "simulation started ({} child scripts: {})",
                names.len(),
                names.join(", ")
            ),
        );
    }

    fn run_one(&mut self, pass: Pass) {
        if pass.new_run {
            self.begin_run();
        } else if pass.state == SimState::FirstAfterPause {
            self.pacer.start(false, Instant::now());
        }
        self.pace(&pass);
        {
            let mut view = self.view.borrow_mut();
            view.state = pass.state;
            view.time_s = pass.time_s;
        }
        let faults = self.execute(&pass);
        self.report_faults(&faults);
        self.summary.passes += 1;
        self.scheduler.complete_pass(&pass);
        self.pacer
            .after_pass(pass.time_s, self.scheduler.dt_s(), Instant::now());
        let mut view = self.view.borrow_mut();
        view.state = self.scheduler.state();
        view.time_s = self.scheduler.time_s();
        drop(view);
        if self.scheduler.state() == SimState::Stopped {
            if let Some(server) = self.server.as_mut() {
                server.after_simulation();
            }
            self.log(
                450,
                &format!("simulation stopped at t = {:.3} s", pass.time_s),
            );
        }
    }

    /// Sleeps as pacing requires, in slices so a shutdown is not delayed.
    fn pace(&mut self, pass: &Pass) {
        let dt = self.scheduler.dt_s();
        let delay = self.pacer.delay_before(pass.time_s, dt, Instant::now());
        let until = Instant::now() + delay;
        while !self.shutdown.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn execute(&mut self, pass: &Pass) -> Vec<ScriptFault> {
        let mut slots = std::mem::take(&mut self.slots);
        let mut server = self.server.take();
        let order = self.order.clone();
        let env = self.env.clone();
        let scene = self.view.borrow().scene.clone();
        let mut load = |i: usize| {
            let object = order[i];
            let text = scene.objects[object].script.as_deref().unwrap_or("");
            LuaScript::load(object, text, &env)
        };
        let mut gate = || {
            if let Some(server) = server.as_mut() {
                let shutdown = self.shutdown.clone();
                let mut ctl = Control {
                    engine: self,
                    in_pass: true,
                };
                server.serve_actuation(&mut ctl, &shutdown);
            }
        };
        let faults = run_pass(pass, &mut slots, &mut load, &mut gate);
        self.slots = slots;
        self.server = server;
        faults
    }

    fn report_faults(&mut self, faults: &[ScriptFault]) {
        if faults.is_empty() {
            return;
        }
        let view = self.view.borrow();
        for fault in faults {
            let origin = sim_lib::origin(&view.scene, self.order[fault.script], view.version);
            view.log
                .emit(&origin, VERBOSITY_SCRIPTERRORS, &fault.message);
        }
        drop(view);
        self.summary.script_errors += faults.len() as u64;
        if pause_after_faults(&mut self.scheduler, faults, self.pause_at_error) {
            self.log(
                300,
                "simulation paused after a script error (scene switch pauseAtError)",
            );
        }
    }
}

fn speed_for(scene: &Scene, requested: Option<Speed>) -> Speed {
    requested.unwrap_or(if scene.real_time {
        Speed::RealTime { rtf: 1.0 }
    } else {
        Speed::MaxSpeed
    })
}

/// The engine as the remote API server sees it.
struct Control<'a> {
    engine: &'a mut Engine,
    /// Served at a pass's add-on point (the state is the pass's), not between passes.
    in_pass: bool,
}

fn float(v: f64) -> Value {
    Value::Float(v)
}

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

fn arg_i64(args: &[Value], i: usize) -> Result<i64, String> {
    match args.get(i) {
        Some(Value::Integer(n)) => i64::try_from(*n).map_err(|_| "integer out of range".to_owned()),
        Some(Value::Float(f)) if f.fract() == 0.0 => Ok(*f as i64),
        _ => Err(format!("argument #{} must be an integer", i + 1)),
    }
}

fn arg_text(args: &[Value], i: usize) -> Result<String, String> {
    match args.get(i) {
        Some(Value::Text(s)) => Ok(s.clone()),
        Some(Value::Bytes(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(format!("argument #{} must be a string", i + 1)),
    }
}

impl Control<'_> {
    fn time_s(&self) -> f64 {
        self.engine.scheduler.time_s()
    }

    fn state_code(&self) -> i64 {
        if self.in_pass {
            self.engine.view.borrow().state.raw()
        } else {
            self.engine.scheduler.state().raw()
        }
    }

    fn load_scene(&mut self, path: &str) -> Result<Vec<Value>, String> {
        if self.engine.scheduler.state() != SimState::Stopped {
            return Err(format!("sim.loadScene({path}): stop the simulation first"));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("sim.loadScene: cannot read {path}: {e}"))?;
        let version = self.engine.view.borrow().version.raw;
        let scene =
            parse_scene_for(&text, version).map_err(|e| format!("sim.loadScene: {path}: {e}"))?;
        self.engine.legacy.clear();
        let speed = speed_for(&scene, self.engine.speed_override);
        let mut view = self.engine.view.borrow_mut();
        view.dt_s = self.engine.dt_override.unwrap_or(scene.dt_s);
        self.engine.scheduler.set_dt_s(view.dt_s);
        view.real_time = matches!(speed, Speed::RealTime { .. });
        view.pause_at_error = scene.pause_at_error;
        self.engine.pause_at_error = scene.pause_at_error;
        view.scene = Rc::new(scene);
        drop(view);
        self.engine.pacer = Pacer::new(
            speed,
            self.engine.faults.passes_per_frame,
            self.engine.faults.stall,
        );
        self.engine.log(
            450,
            &format!("scene loaded: {}", PathBuf::from(path).display()),
        );
        Ok(vec![])
    }

    fn object_call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        let mut view = self.engine.view.borrow_mut();
        let view = &mut *view;
        let handle = || arg_i64(args, 0);
        let object = |view: &SimView| {
            let h = arg_i64(args, 0)?;
            view.index_of(h)
                .ok_or_else(|| format!("object does not exist: handle {h}"))
        };
        Ok(match name {
            // A remote client has no emitting object: only absolute paths resolve
            // (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simInternal.cpp, simGetObject_internal).
            "getObject" => {
                let path = arg_text(args, 0)?;
                let index = view.scene.resolve(None, &path).ok_or_else(|| {
                    format!("object does not exist or ill-formatted path: {path}")
                })?;
                vec![int(SimView::handle_of(index))]
            }
            "getObjectAlias" => vec![Value::Text(view.scene.objects[object(view)?].alias.clone())],
            "getObjectType" => vec![int(sim_lib::object_type(
                &view.scene.objects[object(view)?].kind,
            ))],
            "getObjectParent" => vec![int(scene_edit::parent_of(&view.scene, handle()?)?)],
            "getExtensionString" => {
                let key = arg_text(args, 2).unwrap_or_default();
                vec![view
                    .extension_string(handle()?, &key)?
                    .map_or(Value::Null, Value::Text)]
            }
            "createDummy" => vec![int(scene_edit::create_dummy(Rc::make_mut(&mut view.scene)))],
            "setObjectAlias" => {
                scene_edit::set_alias(
                    Rc::make_mut(&mut view.scene),
                    handle()?,
                    &arg_text(args, 1)?,
                )?;
                vec![]
            }
            _ => {
                // setObjectParent
                scene_edit::set_parent(
                    Rc::make_mut(&mut view.scene),
                    handle()?,
                    arg_i64(args, 1)?,
                )?;
                vec![int(1)]
            }
        })
    }

    /// Script functions of `scene --build-remote`; `sim.scriptstringparam_text` must be the
    /// claimed version's value.
    fn script_call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        let mut view = self.engine.view.borrow_mut();
        let view = &mut *view;
        let text_param = api::constant(view.version, "scriptstringparam_text");
        let check_param = |i: usize| {
            let p = arg_i64(args, i)?;
            if Some(p) == text_param {
                Ok(())
            } else {
                Err(format!(
                    "script string parameter {p} is not supported by the stand-in (only sim.scriptstringparam_text)"
                ))
            }
        };
        let legacy = &mut self.engine.legacy;
        let scene = Rc::make_mut(&mut view.scene);
        Ok(match name {
            "addScript" => vec![int(legacy.add(arg_i64(args, 0)?)?)],
            "associateScriptWithObject" => {
                legacy.associate(scene, arg_i64(args, 0)?, arg_i64(args, 1)?)?;
                vec![]
            }
            "setScriptStringParam" => {
                check_param(1)?;
                legacy.set_text(scene, arg_i64(args, 0)?, &arg_text(args, 2)?)?;
                vec![int(1)]
            }
            "getScriptStringParam" => {
                check_param(1)?;
                vec![Value::Text(legacy.text(scene, arg_i64(args, 0)?)?)]
            }
            _ => {
                // createScript(type, text, options, lang)
                let lang = arg_text(args, 3).unwrap_or_else(|_| "lua".into());
                if lang != "lua" {
                    return Err(format!(
                        "sim.createScript: language {lang:?}: the stand-in runs only Lua"
                    ));
                }
                vec![int(scene_edit::create_script(
                    scene,
                    arg_i64(args, 0)?,
                    &arg_text(args, 1)?,
                )?)]
            }
        })
    }

    /// `sim.saveScene(path)`: only simple XML scenes.
    fn save_scene(&self, path: &str) -> Result<Vec<Value>, String> {
        if !path.ends_with(".simscene.xml") {
            return Err(format!(
                "sim.saveScene({path}): the stand-in saves only simple XML scenes: use a path ending in .simscene.xml"
            ));
        }
        let xml = {
            let view = self.engine.view.borrow();
            let mut scene = (*view.scene).clone();
            scene.dt_s = view.dt_s;
            scene.real_time = view.real_time;
            scene_to_xml(&scene)
        };
        std::fs::write(path, xml)
            .map_err(|e| format!("sim.saveScene: cannot write {path}: {e}"))?;
        Ok(vec![])
    }

    /// `sim.setBoolParam(boolparam_realtime_simulation)` and
    /// `sim.setFloatParam(floatparam_simulation_time_step)`: only while stopped, as CoppeliaSim
    /// (coppeliaSimLib@coppeliasim-v4.7.0-rev2:simulation.cpp, setIsRealTimeSimulation,
    /// setTimeStep).
    fn set_param(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        let p = arg_i64(args, 0)?;
        let stopped = self.engine.scheduler.state() == SimState::Stopped;
        match (name, p) {
            ("setBoolParam", 25) => {
                let on = matches!(args.get(1), Some(Value::Bool(true)));
                if stopped && self.engine.speed_override.is_none() {
                    self.engine.view.borrow_mut().real_time = on;
                    let speed = if on {
                        Speed::RealTime { rtf: 1.0 }
                    } else {
                        Speed::MaxSpeed
                    };
                    self.engine.pacer = Pacer::new(
                        speed,
                        self.engine.faults.passes_per_frame,
                        self.engine.faults.stall,
                    );
                }
                Ok(vec![int(1)])
            }
            ("setFloatParam", 1) => {
                let dt = match args.get(1) {
                    Some(Value::Float(f)) => *f,
                    Some(Value::Integer(i)) => i128::from(*i) as f64,
                    _ => return Err("argument #2 must be a number".into()),
                };
                if stopped && self.engine.scheduler.set_dt_s(dt) {
                    self.engine.view.borrow_mut().dt_s = dt;
                }
                Ok(vec![int(1)])
            }
            ("setBoolParam", p) => Err(unknown_param("boolean", p)),
            (_, p) => Err(unknown_param("float", p)),
        }
    }

    fn param_call(&self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        let view = self.engine.view.borrow();
        let p = arg_i64(args, 0)?;
        match name {
            "getInt32Param" => view
                .int32_param(p)
                .map(int)
                .ok_or_else(|| unknown_param("integer", p)),
            "getBoolParam" => view
                .bool_param(p)
                .map(Value::Bool)
                .ok_or_else(|| unknown_param("boolean", p)),
            _ => view
                .float_param(p)
                .map(float)
                .ok_or_else(|| unknown_param("float", p)),
        }
        .map(|v| vec![v])
    }
}

impl SimControl for Control<'_> {
    fn call(&mut self, name: &str, args: &[Value]) -> Result<Vec<Value>, String> {
        let sched = &mut self.engine.scheduler;
        match name {
            "getSimulationTime" => Ok(vec![float(self.time_s())]),
            "getSimulationTimeStep" => Ok(vec![float(sched.dt_s())]),
            "getSimulationState" => Ok(vec![int(self.state_code())]),
            "getSystemTime" => Ok(vec![float(self.engine.view.borrow().system_time_s())]),
            "startSimulation" => {
                sched.start();
                Ok(vec![])
            }
            "stopSimulation" => {
                sched.stop();
                Ok(vec![])
            }
            "pauseSimulation" => {
                sched.pause();
                Ok(vec![])
            }
            "loadScene" => self.load_scene(&arg_text(args, 0)?),
            "saveScene" => self.save_scene(&arg_text(args, 0)?),
            "getObject" | "getObjectAlias" | "getObjectType" | "getObjectParent"
            | "getExtensionString" | "createDummy" | "setObjectAlias" | "setObjectParent" => {
                self.object_call(name, args)
            }
            "addScript"
            | "associateScriptWithObject"
            | "setScriptStringParam"
            | "getScriptStringParam"
            | "createScript" => self.script_call(name, args),
            "getInt32Param" | "getBoolParam" | "getFloatParam" => self.param_call(name, args),
            "setBoolParam" | "setFloatParam" => self.set_param(name, args),
            "getNamedStringParam" => {
                let key = arg_text(args, 0)?;
                Ok(vec![self
                    .engine
                    .view
                    .borrow()
                    .named
                    .get(&key)
                    .cloned()
                    .map_or(Value::Null, Value::Text)])
            }
            "setNamedStringParam" => {
                let (key, value) = (arg_text(args, 0)?, arg_text(args, 1)?);
                self.engine.view.borrow_mut().named.insert(key, value);
                Ok(vec![])
            }
            // api::SIM_API lists a remote function the stand-in forgot to implement.
            other => Err(format!("No such function: sim.{other}")),
        }
    }

    fn advancing(&self) -> bool {
        self.engine.scheduler.next_pass().is_some()
    }

    fn version(&self) -> ProgramVersion {
        self.engine.view.borrow().version
    }
}
