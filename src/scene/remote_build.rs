//! Building the same scene inside a running CoppeliaSim through the ZeroMQ remote API.
//!
//! The sequence of calls is a PURE plan ([`build_plan`]): a list of `(func, args)` steps whose
//! arguments may refer to the handle returned by an earlier step, and whose result may be
//! checked. [`execute_plan`] runs it through any `call(func, args)` function, e.g. the remote
//! API client's.
//!
//! Only functions every supported version has are used (checked per tag, 4.6.0-rev0 to
//! 4.10.0-rev0, in coppeliaSimLib `luaScriptFunctions.cpp`; the table is
//! `crate::standin::api::SIM_API`): `sim.createDummy`, `sim.setObjectAlias`,
//! `sim.getObjectAlias`, `sim.setFloatParam`, `sim.setBoolParam`, `sim.saveScene`, and for the
//! script either `sim.createScript` + `sim.setObjectParent` (4.7+, a script object under the
//! dummy) or `sim.addScript` + `sim.setScriptStringParam` + `sim.associateScriptWithObject`
//! (4.6; deprecated but still present in 4.10). There is no `sim.setExtensionString` in any
//! version, so each dummy's settings (`id{N} host{...} port{...}`) travel in the script text
//! itself, as a first line `COPPELIA_BRIDGE_CONFIG = '...'` the script reads like an
//! extension string; the alias `DummyN` also carries the id in its digits.
//!
//! Before saving, the plan reads its own result back: every dummy's alias
//! (`sim.getObjectAlias`), every script's text (`sim.getScriptStringParam` with the server's
//! `sim.scriptstringparam_text`: 2 in 4.6, 10110 from 4.7.0-rev0), and on 4.7+ every script
//! object's parent (`sim.getObjectParent`).

use ciborium::Value;
use thiserror::Error;

use super::generate::{alias, extension_string, validate, SceneError, SceneOptions};

/// `sim.floatparam_simulation_time_step` (notes §6).
const FLOATPARAM_SIMULATION_TIME_STEP: i64 = 1;
/// `sim.boolparam_realtime_simulation` (notes §6).
const BOOLPARAM_REALTIME_SIMULATION: i64 = 25;
/// `sim.scripttype_childscript` (4.6), equal to `sim.scripttype_simulation` (4.7+)
/// (coppeliaSimLib@coppeliasim-v4.7.0-rev0:luaScriptFunctions.cpp).
const SCRIPTTYPE_CHILD: i64 = 1;
/// First version with `sim.createScript` (coppeliaSimLib@coppeliasim-v4.7.0-rev0).
const CREATE_SCRIPT_SINCE: i64 = 40700;
/// `sim.scriptstringparam_text` from 4.7.0-rev0 (include@coppeliasim-v4.7.0-rev0:simConst.h).
pub const SCRIPTSTRINGPARAM_TEXT_4_7: i64 = 10110;
/// Dummy size, m (as in the XML scene).
const DUMMY_SIZE_M: f64 = 0.05;

/// How scripts are created on the target version, with the server's value of
/// `sim.scriptstringparam_text` (to set or read a script's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptApi {
    /// 4.7+: `sim.createScript(sim.scripttype_simulation, text)`, then parent it to the dummy.
    CreateScript { scriptstringparam_text: i64 },
    /// 4.6: `sim.addScript`, `sim.setScriptStringParam(h, text_param, text)`,
    /// `sim.associateScriptWithObject`.
    AddScript { scriptstringparam_text: i64 },
}

impl ScriptApi {
    /// The API for `sim.intparam_program_version` (e.g. 40600), given the server's value of
    /// `sim.scriptstringparam_text`.
    pub fn for_version(
        program_version: i64,
        scriptstringparam_text: Option<i64>,
    ) -> Result<Self, PlanError> {
        if program_version < 40600 {
            return Err(PlanError::Unsupported(program_version));
        }
        let scriptstringparam_text = scriptstringparam_text.ok_or(PlanError::NoTextParam)?;
        Ok(if program_version >= CREATE_SCRIPT_SINCE {
            ScriptApi::CreateScript {
                scriptstringparam_text,
            }
        } else {
            ScriptApi::AddScript {
                scriptstringparam_text,
            }
        })
    }

    fn text_param(self) -> i64 {
        match self {
            ScriptApi::CreateScript {
                scriptstringparam_text,
            }
            | ScriptApi::AddScript {
                scriptstringparam_text,
            } => scriptstringparam_text,
        }
    }
}

/// One argument of a planned call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Floats(Vec<f64>),
    /// The handle (first returned value, an integer) of the step with this index.
    HandleOf(usize),
}

/// What a read-back step must return (its first value).
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Text(String),
    /// The handle returned by the step with this index.
    HandleOf(usize),
}

/// One planned remote call.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub func: &'static str,
    pub args: Vec<Arg>,
    /// For read-back steps: the value the build must have produced.
    pub expect: Option<Expect>,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    #[error(transparent)]
    Scene(#[from] SceneError),
    #[error("CoppeliaSim {0} is too old to build scenes remotely (protocol 2 needs 4.6 or later): generate the XML scene with `coppelia-bridge scene --out FILE` instead")]
    Unsupported(i64),
    #[error("the server did not give the value of sim.scriptstringparam_text (2 in 4.6, 10110 from 4.7) in zmqRemoteApi.info('sim'): is it CoppeliaSim with its ZMQ remote API add-on?")]
    NoTextParam,
}

/// Why running a plan failed.
#[derive(Debug, Error)]
pub enum BuildError<E: std::error::Error + 'static> {
    #[error("remote call {func} (step {step}) failed: {source}")]
    Call {
        step: usize,
        func: &'static str,
        #[source]
        source: E,
    },
    #[error("remote call {func} (step {step}) returned no integer handle: is the connected server really CoppeliaSim?")]
    NoHandle { step: usize, func: &'static str },
    #[error("step {step} refers to the handle of step {target}, which has none (plan bug)")]
    BadReference { step: usize, target: usize },
    #[error("reading back the built scene: {func} (step {step}) returned {found}, expected {expected}: the scene was not saved")]
    Mismatch {
        step: usize,
        func: &'static str,
        expected: String,
        found: String,
    },
}

fn step(func: &'static str, args: Vec<Arg>) -> Step {
    Step {
        func,
        args,
        expect: None,
    }
}

fn check(func: &'static str, args: Vec<Arg>, expect: Expect) -> Step {
    Step {
        func,
        args,
        expect: Some(expect),
    }
}

/// The script text of dummy `index`: its settings on a first line the script reads
/// (`COPPELIA_BRIDGE_CONFIG`), then the script. Validated options hold only characters that
/// are safe inside a single-quoted Lua string.
pub fn embedded_script_text(opts: &SceneOptions, index: u32) -> String {
    format!(
        "COPPELIA_BRIDGE_CONFIG = '{}' -- written by `coppelia-bridge scene --build-remote`\n{}",
        extension_string(opts, index),
        opts.script
    )
}

/// The calls that build `opts`' dummies and scripts, read them back, and save the scene to
/// `save_path` (a path on the machine running CoppeliaSim). Pure.
///
/// The scene-wide `pauseAtError` switch has no remote API setter that we know of: the saved
/// scene keeps the server's setting (see docs/SCENE.md).
pub fn build_plan(
    opts: &SceneOptions,
    api: ScriptApi,
    save_path: &str,
) -> Result<Vec<Step>, PlanError> {
    validate(opts)?;
    let mut plan = vec![
        step(
            "sim.setFloatParam",
            vec![
                Arg::Int(FLOATPARAM_SIMULATION_TIME_STEP),
                Arg::Float(opts.dt_s),
            ],
        ),
        step(
            "sim.setBoolParam",
            vec![
                Arg::Int(BOOLPARAM_REALTIME_SIMULATION),
                Arg::Bool(opts.real_time),
            ],
        ),
    ];
    let built: Vec<(usize, usize)> = (0..opts.dummies)
        .map(|index| push_dummy(&mut plan, opts, api, index))
        .collect();
    for (index, &(dummy, script)) in (0..opts.dummies).zip(&built) {
        push_read_back(&mut plan, opts, api, index, dummy, script);
    }
    plan.push(step("sim.saveScene", vec![Arg::Text(save_path.to_owned())]));
    Ok(plan)
}

/// Creates one dummy and its script; returns the steps that made them.
fn push_dummy(
    plan: &mut Vec<Step>,
    opts: &SceneOptions,
    api: ScriptApi,
    index: u32,
) -> (usize, usize) {
    let dummy = plan.len();
    plan.push(step("sim.createDummy", vec![Arg::Float(DUMMY_SIZE_M)]));
    plan.push(step(
        "sim.setObjectAlias",
        vec![Arg::HandleOf(dummy), Arg::Text(alias(index))],
    ));
    let script = plan.len();
    let text = Arg::Text(embedded_script_text(opts, index));
    match api {
        ScriptApi::CreateScript { .. } => {
            plan.push(step(
                "sim.createScript",
                vec![Arg::Int(SCRIPTTYPE_CHILD), text],
            ));
            plan.push(step(
                "sim.setObjectParent",
                vec![Arg::HandleOf(script), Arg::HandleOf(dummy), Arg::Bool(true)],
            ));
        }
        ScriptApi::AddScript {
            scriptstringparam_text,
        } => {
            plan.push(step("sim.addScript", vec![Arg::Int(SCRIPTTYPE_CHILD)]));
            plan.push(step(
                "sim.setScriptStringParam",
                vec![
                    Arg::HandleOf(script),
                    Arg::Int(scriptstringparam_text),
                    text,
                ],
            ));
            plan.push(step(
                "sim.associateScriptWithObject",
                vec![Arg::HandleOf(script), Arg::HandleOf(dummy)],
            ));
        }
    }
    (dummy, script)
}

fn push_read_back(
    plan: &mut Vec<Step>,
    opts: &SceneOptions,
    api: ScriptApi,
    index: u32,
    dummy: usize,
    script: usize,
) {
    plan.push(check(
        "sim.getObjectAlias",
        vec![Arg::HandleOf(dummy)],
        Expect::Text(alias(index)),
    ));
    plan.push(check(
        "sim.getScriptStringParam",
        vec![Arg::HandleOf(script), Arg::Int(api.text_param())],
        Expect::Text(embedded_script_text(opts, index)),
    ));
    if let ScriptApi::CreateScript { .. } = api {
        plan.push(check(
            "sim.getObjectParent",
            vec![Arg::HandleOf(script)],
            Expect::HandleOf(dummy),
        ));
    }
}

/// Runs `plan` through `call(func, args) -> returned values`, stopping at the first failure.
/// Returns the handle each step returned (`None` for steps whose result is not a handle).
pub fn execute_plan<E, F>(plan: &[Step], mut call: F) -> Result<Vec<Option<i64>>, BuildError<E>>
where
    E: std::error::Error + 'static,
    F: FnMut(&str, Vec<Value>) -> Result<Vec<Value>, E>,
{
    let mut handles: Vec<Option<i64>> = Vec::with_capacity(plan.len());
    for (index, s) in plan.iter().enumerate() {
        let args = s
            .args
            .iter()
            .map(|a| resolve(a, &handles, index))
            .collect::<Result<Vec<_>, _>>()?;
        let ret = call(s.func, args).map_err(|source| BuildError::Call {
            step: index,
            func: s.func,
            source,
        })?;
        if let Some(expect) = &s.expect {
            check_result(index, s.func, expect, ret.first(), &handles)?;
        }
        let handle = ret.first().and_then(as_i64);
        if handle.is_none() && returns_handle(s.func) {
            return Err(BuildError::NoHandle {
                step: index,
                func: s.func,
            });
        }
        handles.push(handle);
    }
    Ok(handles)
}

/// Compares a read-back value with what the plan built.
fn check_result<E: std::error::Error>(
    step: usize,
    func: &'static str,
    expect: &Expect,
    found: Option<&Value>,
    handles: &[Option<i64>],
) -> Result<(), BuildError<E>> {
    let found_text = match found {
        Some(Value::Text(t)) => Some(t.clone()),
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let (ok, expected) = match expect {
        Expect::Text(t) => (found_text.as_deref() == Some(t.as_str()), shorten(t)),
        Expect::HandleOf(target) => {
            let h = handle_of(handles, *target, step)?;
            (found.and_then(as_i64) == Some(h), format!("handle {h}"))
        }
    };
    if ok {
        return Ok(());
    }
    let found = match (found_text, found) {
        (Some(t), _) => shorten(&t),
        (None, Some(v)) => format!("{v:?}"),
        (None, None) => "nothing".into(),
    };
    Err(BuildError::Mismatch {
        step,
        func,
        expected,
        found,
    })
}

/// The handle step `target` returned, for step `step`.
fn handle_of<E: std::error::Error>(
    handles: &[Option<i64>],
    target: usize,
    step: usize,
) -> Result<i64, BuildError<E>> {
    handles
        .get(target)
        .copied()
        .flatten()
        .ok_or(BuildError::BadReference { step, target })
}

/// Quoted text, long texts (scripts) shortened for messages.
fn shorten(t: &str) -> String {
    if t.len() > 60 {
        format!("<text, {} bytes>", t.len())
    } else {
        format!("{t:?}")
    }
}

fn returns_handle(func: &str) -> bool {
    matches!(
        func,
        "sim.createDummy" | "sim.createScript" | "sim.addScript"
    )
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn resolve<E: std::error::Error>(
    arg: &Arg,
    handles: &[Option<i64>],
    step: usize,
) -> Result<Value, BuildError<E>> {
    Ok(match arg {
        Arg::Int(i) => Value::Integer((*i).into()),
        Arg::Float(f) => Value::Float(*f),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Text(s) => Value::Text(s.clone()),
        Arg::Floats(v) => Value::Array(v.iter().map(|f| Value::Float(*f)).collect()),
        Arg::HandleOf(target) => Value::Integer(handle_of(handles, *target, step)?.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(n: u32) -> SceneOptions {
        SceneOptions {
            dummies: n,
            script: "-- script".to_owned(),
            ..SceneOptions::default()
        }
    }

    const CREATE: ScriptApi = ScriptApi::CreateScript {
        scriptstringparam_text: SCRIPTSTRINGPARAM_TEXT_4_7,
    };

    fn funcs(plan: &[Step]) -> Vec<&'static str> {
        plan.iter().map(|s| s.func).collect()
    }

    #[test]
    fn create_script_plan_for_4_7() {
        let plan = build_plan(&opts(1), CREATE, "/tmp/s.ttt").unwrap();
        assert_eq!(
            funcs(&plan),
            [
                "sim.setFloatParam",
                "sim.setBoolParam",
                "sim.createDummy",
                "sim.setObjectAlias",
                "sim.createScript",
                "sim.setObjectParent",
                "sim.getObjectAlias",
                "sim.getScriptStringParam",
                "sim.getObjectParent",
                "sim.saveScene",
            ]
        );
        assert_eq!(plan[0].args, [Arg::Int(1), Arg::Float(0.05)]);
        assert_eq!(plan[3].args, [Arg::HandleOf(2), Arg::Text("Dummy0".into())]);
        let text = embedded_script_text(&opts(1), 0);
        assert!(
            text.starts_with("COPPELIA_BRIDGE_CONFIG = 'id{0} host{127.0.0.1} port{8888}'"),
            "{text}"
        );
        assert!(text.ends_with("\n-- script"));
        assert_eq!(plan[4].args, [Arg::Int(1), Arg::Text(text.clone())]);
        assert_eq!(
            plan[5].args,
            [Arg::HandleOf(4), Arg::HandleOf(2), Arg::Bool(true)]
        );
        assert_eq!(plan[7].expect, Some(Expect::Text(text)));
        assert_eq!(plan[7].args[1], Arg::Int(10110));
        assert_eq!(plan[8].expect, Some(Expect::HandleOf(2)));
        assert_eq!(plan[9].args, [Arg::Text("/tmp/s.ttt".into())]);
    }

    /// coppeliaSimLib@coppeliasim-v4.{6,7,10}.0: luaScriptFunctions.cpp has no
    /// sim.setExtensionString; every function planned exists in each supported version.
    #[test]
    fn plans_use_only_functions_every_target_version_has() {
        use crate::remote_api::ProgramVersion;
        use crate::standin::api::has_function;
        for (raw, text_param) in [(40600, 2), (40700, 10110), (40800, 10110), (41000, 10110)] {
            let api = ScriptApi::for_version(raw, Some(text_param)).unwrap();
            let version = ProgramVersion { raw, revision: 0 };
            for s in build_plan(&opts(2), api, "x.simscene.xml").unwrap() {
                let name = s.func.strip_prefix("sim.").unwrap();
                assert!(has_function(version, name, true), "{name} in {raw}");
            }
        }
    }

    #[test]
    fn add_script_plan_for_4_6_uses_the_servers_text_param() {
        let api = ScriptApi::for_version(40600, Some(2)).unwrap();
        let plan = build_plan(&opts(2), api, "x.ttt").unwrap();
        let adds: Vec<_> = plan.iter().filter(|s| s.func == "sim.addScript").collect();
        assert_eq!(adds.len(), 2);
        let set_text: Vec<_> = plan
            .iter()
            .filter(|s| s.func == "sim.setScriptStringParam")
            .collect();
        assert_eq!(set_text[1].args[1], Arg::Int(2));
        assert!(plan
            .iter()
            .any(|s| s.func == "sim.associateScriptWithObject"));
        assert!(!plan.iter().any(|s| s.func == "sim.createScript"));
        assert!(!plan.iter().any(|s| s.func == "sim.getObjectParent"));
    }

    #[test]
    fn version_selection() {
        assert_eq!(ScriptApi::for_version(40700, Some(10110)), Ok(CREATE));
        assert_eq!(ScriptApi::for_version(41000, Some(10110)), Ok(CREATE));
        assert_eq!(
            ScriptApi::for_version(40600, None),
            Err(PlanError::NoTextParam)
        );
        assert_eq!(
            ScriptApi::for_version(40500, Some(2)),
            Err(PlanError::Unsupported(40500))
        );
    }

    #[test]
    fn invalid_options_make_no_plan() {
        let bad = SceneOptions {
            script: "]]>".into(),
            ..opts(1)
        };
        assert!(matches!(
            build_plan(&bad, CREATE, "x"),
            Err(PlanError::Scene(SceneError::ScriptEndsCdata))
        ));
    }

    #[derive(Debug, Error)]
    #[error("fake failure")]
    struct FakeError;

    /// A fake server that remembers aliases, texts and parents like CoppeliaSim.
    fn fake_server(plan: &[Step]) -> Result<Vec<Option<i64>>, BuildError<FakeError>> {
        let mut next = 100;
        let mut alias = std::collections::HashMap::new();
        let mut text = std::collections::HashMap::new();
        let mut parent = std::collections::HashMap::new();
        let int = |v: &Value| as_i64(v).unwrap();
        execute_plan(plan, |func, args| {
            Ok::<_, FakeError>(match func {
                "sim.createDummy" | "sim.addScript" => {
                    next += 1;
                    vec![Value::Integer(next.into())]
                }
                "sim.createScript" => {
                    next += 1;
                    text.insert(next, args[1].clone());
                    vec![Value::Integer(next.into())]
                }
                "sim.setObjectAlias" => {
                    alias.insert(int(&args[0]), args[1].clone());
                    vec![]
                }
                "sim.setScriptStringParam" => {
                    text.insert(int(&args[0]), args[2].clone());
                    vec![]
                }
                "sim.setObjectParent" => {
                    parent.insert(int(&args[0]), args[1].clone());
                    vec![]
                }
                "sim.getObjectAlias" => vec![alias[&int(&args[0])].clone()],
                "sim.getScriptStringParam" => vec![text[&int(&args[0])].clone()],
                "sim.getObjectParent" => vec![parent[&int(&args[0])].clone()],
                _ => vec![],
            })
        })
    }

    #[test]
    fn execution_threads_handles_and_reads_the_result_back() {
        for api in [CREATE, ScriptApi::for_version(40600, Some(2)).unwrap()] {
            let plan = build_plan(&opts(2), api, "s.simscene.xml").unwrap();
            let handles = fake_server(&plan).unwrap();
            assert_eq!(handles.len(), plan.len());
        }
    }

    #[test]
    fn a_wrong_read_back_stops_before_saving() {
        let plan = build_plan(&opts(1), CREATE, "s.simscene.xml").unwrap();
        let mut saved = false;
        let err = execute_plan(&plan, |func, _| {
            saved |= func == "sim.saveScene";
            Ok::<_, FakeError>(match func {
                "sim.getObjectAlias" => vec![Value::Text("Script".into())],
                _ => vec![Value::Integer(7.into())],
            })
        })
        .unwrap_err();
        assert!(!saved);
        assert!(matches!(err, BuildError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("\"Script\""), "{err}");
    }

    #[test]
    fn execution_stops_at_the_first_failure_and_names_it() {
        let plan = build_plan(&opts(1), CREATE, "s.ttt").unwrap();
        let mut calls = 0;
        let err = execute_plan(&plan, |func, _| {
            calls += 1;
            if func == "sim.createScript" {
                Err(FakeError)
            } else {
                Ok(vec![Value::Integer(7.into())])
            }
        })
        .unwrap_err();
        assert_eq!(calls, 5);
        assert!(
            err.to_string().contains("sim.createScript (step 4)"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_handle_is_an_error_not_a_panic() {
        let plan = build_plan(&opts(1), CREATE, "s.ttt").unwrap();
        let err = execute_plan(&plan, |_, _| Ok::<_, FakeError>(vec![])).unwrap_err();
        assert!(matches!(err, BuildError::NoHandle { step: 2, .. }), "{err}");
    }
}
