//! `completions` and `man` come from the clap definition: every shell gets a script that
//! knows the subcommands and flags, and the man pages cover every command.

mod common;

use assert_cmd::Command;
use predicates::str::contains;

fn bridge() -> Command {
    Command::cargo_bin("coppelia-bridge").unwrap()
}

#[test]
fn completion_scripts_know_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        bridge()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("demo"))
            .stdout(contains("target-rtf"));
    }
    bridge()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(contains("possible values"));
}

#[test]
fn man_page_on_stdout_and_one_page_per_command() {
    bridge()
        .arg("man")
        .assert()
        .success()
        .stdout(contains(".TH coppelia-bridge 1"))
        .stdout(contains("completions"));
    let dir = tempfile::tempdir().unwrap();
    bridge()
        .args(["man", "--out-dir"])
        .arg(dir.path().join("man1"))
        .assert()
        .success()
        .stdout(contains("man pages to"));
    for page in [
        "coppelia-bridge.1",
        "coppelia-bridge-run.1",
        "coppelia-bridge-demo.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man1").join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let run = std::fs::read_to_string(dir.path().join("man1/coppelia-bridge-run.1")).unwrap();
    assert!(run.contains("listen"), "run page documents its flags");
}

/// `completions bash | head -1` and `man | head -1`: a reader that stops early ends the
/// output quietly, with no panic.
#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(args);
        let out = common::output_with_stdout_closed(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}: {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
