//! `coppelia-bridge standin` from the command line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use predicates::prelude::*;

/// An empty simple XML scene in `dir`.
fn empty_scene(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let scene = dir.path().join("s.simscene.xml");
    std::fs::write(
        &scene,
        "<CoppeliaSim><filetype>simpleScene</filetype></CoppeliaSim>",
    )
    .unwrap();
    scene
}

#[test]
fn a_missing_scene_names_the_path_and_the_fix() {
    assert_cmd::Command::cargo_bin("coppelia-bridge")
        .unwrap()
        .args(["standin", "--scene", "/nonexistent/x.simscene.xml"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot read scene /nonexistent/x.simscene.xml",
        ));
}

#[test]
fn bad_flags_are_refused_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    let scene = empty_scene(&dir);
    for (flag, value, says) in [
        ("--rtf", "0", "positive factor"),
        ("--drop-rate", "2", "between 0 and 1"),
        (
            "--dt",
            "0",
            "is not a time step: use a positive number of seconds",
        ),
    ] {
        assert_cmd::Command::cargo_bin("coppelia-bridge")
            .unwrap()
            .args([
                "standin",
                "--scene",
                scene.to_str().unwrap(),
                flag,
                value,
                "--no-remote",
            ])
            .assert()
            .failure()
            .stderr(predicate::str::contains(says));
    }
    assert_cmd::Command::cargo_bin("coppelia-bridge")
        .unwrap()
        .args(["standin", "--scene", scene.to_str().unwrap(), "-Gnovalue"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("key=value"));
}

#[test]
fn port_zero_prints_the_bound_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let scene = empty_scene(&dir);
    let mut child = Command::cargo_bin("coppelia-bridge")
        .unwrap()
        .args([
            "standin",
            "--scene",
            scene.to_str().unwrap(),
            "--remote-port",
            "0",
            "-Ga=b",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let endpoint = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{line}");
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
}

/// `--version` picks the CoppeliaSim version to behave as (4.3 to 4.10); below 4.6 there is no
/// protocol-2 remote API to serve (zmqRemoteApi@coppeliasim-v4.6.0-rev0 introduced it).
#[test]
fn version_flag_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let scene = empty_scene(&dir);
    for (version, says) in [
        ("4.11", "4.3 to 4.10"),
        ("four", "not a CoppeliaSim version"),
        ("4.5.1", "protocol 1"),
    ] {
        assert_cmd::Command::cargo_bin("coppelia-bridge")
            .unwrap()
            .args(["standin", "--scene", scene.to_str().unwrap()])
            .args(["--version", version, "--remote-port", "0"])
            .assert()
            .failure()
            .stderr(predicate::str::contains(says));
    }
}
