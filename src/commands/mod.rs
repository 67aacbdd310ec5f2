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
    init_tracing();
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level (info).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
