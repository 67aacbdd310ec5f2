//! One module per subcommand: its flags (clap `Args`) and the wiring of its tasks.

pub mod demo;
pub mod emit;
pub mod probe;
pub mod report;
pub mod run;
pub mod scene;
pub mod standin;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand.
pub fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Emit(args) => emit::execute(args),
        Command::Probe(args) => probe::execute(args),
        Command::Scene(args) => scene::execute(args),
        Command::Standin(args) => standin::execute(args),
        Command::Demo(args) => demo::execute(args),
        Command::Report(args) => report::execute(args),
    }
}
