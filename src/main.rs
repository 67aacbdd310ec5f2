use std::process::ExitCode;

use clap::Parser;
use coppelia_bridge::{cli::Cli, commands};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::execute(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
