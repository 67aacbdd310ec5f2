//! Building the same scene inside a running CoppeliaSim through the ZeroMQ remote API.
//!
//! The sequence of calls is a PURE plan ([`build_plan`]): a list of `(func, args)` steps whose
//! arguments may refer to the handle returned by an earlier step. [`execute_plan`] runs it
//! through any `call(func, args)` function, e.g. the remote API client's.
//!
//! API per version (coppeliasim-notes §1): 4.7+ creates scripts with `sim.createScript` (a
//! script is then a scene object, attached by parenting it to the dummy); 4.6 uses
//! `sim.addScript` + `sim.setScriptStringParam` + `sim.associateScriptWithObject` (deprecated
//! but still present up to 4.10). `sim.scriptstringparam_text` changed value between versions:
//! ask the server (`zmqRemoteApi.info`) and pass it in.
//! Not verified against a real CoppeliaSim: `sim.setExtensionString`'s availability and
//! `sim.setObjectParent` on a 4.7 script object are readings of the API docs (uncertain).

use ciborium::Value;
use thiserror::Error;

use super::generate::{alias, extension_string, validate, SceneError, SceneOptions};

/// `sim.floatparam_simulation_time_step` (notes §6).
const FLOATPARAM_SIMULATION_TIME_STEP: i64 = 1;
/// `sim.boolparam_realtime_simulation` (notes §6).
const BOOLPARAM_REALTIME_SIMULATION: i64 = 25;
/// `sim.scripttype_childscript` (4.6), equal to `sim.scripttype_simulation` (4.7+) (notes §6).
const SCRIPTTYPE_CHILD: i64 = 1;
/// First version with `sim.createScript` (4.7.0).
const CREATE_SCRIPT_SINCE: i64 = 40700;
/// Dummy size, m (as in the XML scene).
const DUMMY_SIZE_M: f64 = 0.05;

/// How scripts are created on the target version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptApi {
    /// 4.7+: `sim.createScript(sim.scripttype_simulation, text)`, then parent it to the dummy.
    CreateScript,
    /// 4.6: `sim.addScript`, `sim.setScriptStringParam(h, text_param, text)`,
    /// `sim.associateScriptWithObject`.
    AddScript {
        /// Value of `sim.scriptstringparam_text` reported by that server.
        scriptstringparam_text: i64,
    },
}

impl ScriptApi {
    /// The API for `sim.intparam_program_version` (e.g. 40600); 4.6 needs the server's value of
    /// `sim.scriptstringparam_text`.
    pub fn for_version(
        program_version: i64,
        scriptstringparam_text: Option<i64>,
    ) -> Result<Self, PlanError> {
        if program_version >= CREATE_SCRIPT_SINCE {
            return Ok(ScriptApi::CreateScript);
        }
        if program_version < 40600 {
            return Err(PlanError::Unsupported(program_version));
        }
        scriptstringparam_text
            .map(|v| ScriptApi::AddScript {
                scriptstringparam_text: v,
            })
            .ok_or(PlanError::NoTextParam)
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

/// One planned remote call.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub func: &'static str,
    pub args: Vec<Arg>,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    #[error(transparent)]
    Scene(#[from] SceneError),
    #[error("CoppeliaSim {0} is too old to build scenes remotely (protocol 2 needs 4.6 or later): generate the XML scene with `coppelia-bridge scene --out FILE` instead")]
    Unsupported(i64),
    #[error("CoppeliaSim 4.6 needs the value of sim.scriptstringparam_text (it differs between versions): ask the server with zmqRemoteApi.info('sim')")]
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
}

fn step(func: &'static str, args: Vec<Arg>) -> Step {
    Step { func, args }
}

/// The calls that build `opts`' dummies and scripts and save the scene to `save_path`
/// (a path on the machine running CoppeliaSim). Pure.
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
    for index in 0..opts.dummies {
        push_dummy(&mut plan, opts, api, index);
    }
    plan.push(step("sim.saveScene", vec![Arg::Text(save_path.to_owned())]));
    Ok(plan)
}

fn push_dummy(plan: &mut Vec<Step>, opts: &SceneOptions, api: ScriptApi, index: u32) {
    let dummy = plan.len();
    plan.push(step("sim.createDummy", vec![Arg::Float(DUMMY_SIZE_M)]));
    plan.push(step(
        "sim.setObjectAlias",
        vec![Arg::HandleOf(dummy), Arg::Text(alias(index))],
    ));
    plan.push(step(
        "sim.setExtensionString",
        vec![
            Arg::HandleOf(dummy),
            Arg::Int(-1),
            Arg::Text(extension_string(opts, index)),
        ],
    ));
    let script = plan.len();
    let text = Arg::Text(opts.script.clone());
    match api {
        ScriptApi::CreateScript => {
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
        Arg::HandleOf(target) => {
            let h = handles
                .get(*target)
                .copied()
                .flatten()
                .ok_or(BuildError::BadReference {
                    step,
                    target: *target,
                })?;
            Value::Integer(h.into())
        }
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

    fn funcs(plan: &[Step]) -> Vec<&'static str> {
        plan.iter().map(|s| s.func).collect()
    }

    #[test]
    fn create_script_plan_for_4_7() {
        let plan = build_plan(&opts(1), ScriptApi::CreateScript, "/tmp/s.ttt").unwrap();
        assert_eq!(
            funcs(&plan),
            [
                "sim.setFloatParam",
                "sim.setBoolParam",
                "sim.createDummy",
                "sim.setObjectAlias",
                "sim.setExtensionString",
                "sim.createScript",
                "sim.setObjectParent",
                "sim.saveScene",
            ]
        );
        assert_eq!(plan[0].args, [Arg::Int(1), Arg::Float(0.05)]);
        assert_eq!(plan[3].args, [Arg::HandleOf(2), Arg::Text("Dummy0".into())]);
        assert_eq!(
            plan[4].args[2],
            Arg::Text("id{0} host{127.0.0.1} port{8888}".into())
        );
        assert_eq!(plan[5].args, [Arg::Int(1), Arg::Text("-- script".into())]);
        assert_eq!(
            plan[6].args,
            [Arg::HandleOf(5), Arg::HandleOf(2), Arg::Bool(true)]
        );
        assert_eq!(plan[7].args, [Arg::Text("/tmp/s.ttt".into())]);
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
    }

    #[test]
    fn version_selection() {
        assert_eq!(
            ScriptApi::for_version(40700, None),
            Ok(ScriptApi::CreateScript)
        );
        assert_eq!(
            ScriptApi::for_version(41000, Some(2)),
            Ok(ScriptApi::CreateScript)
        );
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
            build_plan(&bad, ScriptApi::CreateScript, "x"),
            Err(PlanError::Scene(SceneError::ScriptEndsCdata))
        ));
    }

    #[derive(Debug, Error)]
    #[error("fake failure")]
    struct FakeError;

    #[test]
    fn execution_threads_handles_through_later_calls() {
        let plan = build_plan(&opts(2), ScriptApi::CreateScript, "s.ttt").unwrap();
        let mut next = 100;
        let mut log = Vec::new();
        let handles = execute_plan(&plan, |func, args| {
            log.push((func.to_owned(), args));
            next += 1;
            Ok::<_, FakeError>(if returns_handle(func) {
                vec![Value::Integer(next.into())]
            } else {
                vec![]
            })
        })
        .unwrap();
        assert_eq!(handles.len(), plan.len());
        // Call i returns 101 + i: second dummy created at step 7, its script at step 10.
        let parent = &log[11];
        assert_eq!(parent.0, "sim.setObjectParent");
        assert_eq!(
            parent.1,
            [
                Value::Integer(111.into()),
                Value::Integer(108.into()),
                Value::Bool(true)
            ]
        );
    }

    #[test]
    fn execution_stops_at_the_first_failure_and_names_it() {
        let plan = build_plan(&opts(1), ScriptApi::CreateScript, "s.ttt").unwrap();
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
        assert_eq!(calls, 6);
        assert!(
            err.to_string().contains("sim.createScript (step 5)"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_handle_is_an_error_not_a_panic() {
        let plan = build_plan(&opts(1), ScriptApi::CreateScript, "s.ttt").unwrap();
        let err = execute_plan(&plan, |_, _| Ok::<_, FakeError>(vec![])).unwrap_err();
        assert!(matches!(err, BuildError::NoHandle { step: 2, .. }), "{err}");
    }
}
