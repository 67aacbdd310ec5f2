//! `scene --build-remote` against an in-process fake remote API server (4.7 and 4.6 paths).

mod common;

use std::collections::HashMap;
use std::process::Command;

use ciborium::Value;
use coppelia_bridge::remote_api::fake::{empty_map, FakeAction, FakeServer};
use coppelia_bridge::remote_api::message::encode_ret;

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

fn handle(v: &Value) -> i64 {
    v.as_integer().and_then(|i| i64::try_from(i).ok()).unwrap()
}

/// Answers like a CoppeliaSim of `version`; handles count up from 100. It remembers aliases,
/// script texts and parents, so the builder's read-back finds what it built.
fn server(version: i64) -> FakeServer {
    let mut next_handle = 100;
    let text_param = if version >= 40700 { 10110 } else { 2 };
    let mut alias: HashMap<i64, Value> = HashMap::new();
    let mut text: HashMap<i64, Value> = HashMap::new();
    let mut parent: HashMap<i64, Value> = HashMap::new();
    FakeServer::start(move |seen| {
        let Some(req) = seen else {
            return FakeAction::Reply(encode_ret(vec![]));
        };
        let ret = match req.func.as_str() {
            "sim.getInt32Param" => match req
                .args
                .first()
                .and_then(|a| a.as_integer())
                .map(i64::try_from)
            {
                Some(Ok(1)) => vec![int(version)],
                _ => vec![int(7)],
            },
            "sim.createDummy" | "sim.createScript" | "sim.addScript" => {
                next_handle += 1;
                if req.func == "sim.createScript" {
                    text.insert(next_handle, req.args[1].clone());
                }
                vec![int(next_handle)]
            }
            "sim.setObjectAlias" => {
                alias.insert(handle(&req.args[0]), req.args[1].clone());
                vec![]
            }
            "sim.setScriptStringParam" => {
                text.insert(handle(&req.args[0]), req.args[2].clone());
                vec![int(1)]
            }
            "sim.setObjectParent" => {
                parent.insert(handle(&req.args[0]), req.args[1].clone());
                vec![int(1)]
            }
            "sim.getObjectAlias" => vec![alias[&handle(&req.args[0])].clone()],
            "sim.getScriptStringParam" => vec![text[&handle(&req.args[0])].clone()],
            "sim.getObjectParent" => vec![parent[&handle(&req.args[0])].clone()],
            "zmqRemoteApi.info" => vec![Value::Map(vec![(
                Value::Text("scriptstringparam_text".into()),
                Value::Map(vec![(Value::Text("const".into()), int(text_param))]),
            )])],
            "_*end*_" => return FakeAction::Reply(empty_map()),
            _ => vec![],
        };
        FakeAction::Reply(encode_ret(ret))
    })
    .expect("fake server")
}

fn build(endpoint: &str) -> std::process::Output {
    Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .args([
            "scene",
            "--build-remote",
            "--remote",
            endpoint,
            "--dummies",
            "2",
            "--save",
            "/tmp/built.ttt",
        ])
        .output()
        .unwrap()
}

fn count(funcs: &[String], f: &str) -> usize {
    funcs.iter().filter(|x| x.as_str() == f).count()
}

#[test]
fn builds_with_create_script_on_4_7() {
    let fake = server(40700);
    let out = build(fake.endpoint());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let funcs = fake.funcs();
    assert_eq!(count(&funcs, "sim.createDummy"), 2, "{funcs:?}");
    assert_eq!(count(&funcs, "sim.createScript"), 2, "{funcs:?}");
    assert_eq!(count(&funcs, "sim.addScript"), 0);
    assert_eq!(count(&funcs, "sim.setExtensionString"), 0);
    assert_eq!(count(&funcs, "sim.getScriptStringParam"), 2, "read back");
    assert_eq!(
        funcs
            .iter()
            .rfind(|f| !f.starts_with("_*"))
            .map(String::as_str),
        Some("sim.saveScene")
    );
}

#[test]
fn builds_with_add_script_on_4_6_using_the_servers_constant() {
    let fake = server(40600);
    let out = build(fake.endpoint());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let funcs = fake.funcs();
    assert!(funcs.contains(&"zmqRemoteApi.info".to_owned()), "{funcs:?}");
    assert_eq!(count(&funcs, "sim.addScript"), 2, "{funcs:?}");
    assert_eq!(count(&funcs, "sim.associateScriptWithObject"), 2);
    let text_param: Vec<_> = fake
        .requests()
        .into_iter()
        .flatten()
        .filter(|r| r.func == "sim.setScriptStringParam")
        .map(|r| r.args[1].clone())
        .collect();
    assert_eq!(
        text_param,
        vec![int(2), int(2)],
        "scriptstringparam_text taken from zmqRemoteApi.info"
    );
}

#[test]
fn unreachable_coppeliasim_is_a_clear_error() {
    let (_held, port) = common::refusing_tcp_port();
    let out = Command::new(assert_cmd::cargo::cargo_bin("coppelia-bridge"))
        .args([
            "scene",
            "--build-remote",
            "--remote",
            &format!("tcp://127.0.0.1:{port}"),
            "--remote-timeout",
            "300ms",
            "--save",
            "/tmp/x.ttt",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach CoppeliaSim at tcp://127.0.0.1:"),
        "{err}"
    );
}
