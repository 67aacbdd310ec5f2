//! One module per subcommand: its flags (clap `Args`) and the wiring of its tasks.

pub mod compare;
pub mod completions;
pub mod convert;
pub mod demo;
pub mod emit;
pub mod probe;
pub mod report;
pub mod run;
pub mod scene;
pub mod standin;
pub mod sweep;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Whether log lines on stderr are coloured (`--color`, set once at start).
static STDERR_COLOR: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Runs the chosen subcommand.
pub fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let color = cli.color.enabled(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = STDERR_COLOR.set(color);
    // `run`, `demo` and `sweep` set up logging themselves (the live view owns the terminal,
    // and the run or sweep directory gets bridge.log).
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Demo(_) | Command::Sweep(_)
    ) {
        init_tracing(true, None)?;
    }
    match cli.command {
        Command::Run(args) => run::execute(args),
        Command::Emit(args) => emit::execute(args),
        Command::Probe(args) => probe::execute(args),
        Command::Scene(args) => scene::execute(args),
        Command::Standin(args) => standin::execute(args),
        Command::Demo(args) => demo::execute(args),
        Command::Report(args) => report::execute(args),
        Command::Compare(args) => compare::execute(args),
        Command::Convert(args) => convert::execute(args),
        Command::Completions(args) => completions::completions(args).map(|()| ExitCode::SUCCESS),
        Command::Man(args) => completions::man(args).map(|()| ExitCode::SUCCESS),
        Command::Sweep(args) => sweep::execute(args),
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

/// Writes `text` to stdout and flushes; the error as it comes (a reader that went away is
/// `BrokenPipe`), never a panic as `print!` would.
pub(crate) fn write_stdout(text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text).and_then(|()| out.flush())
}

/// [`write_stdout`] for commands whose output is text for a reader: one that stopped reading
/// (`| head`) ends the output quietly, as Unix tools do.
pub(crate) fn print_for_reader(text: &[u8]) -> std::io::Result<()> {
    match write_stdout(text) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Logs to stderr (unless the live view owns the terminal) and to `<dir>/bridge.log`;
/// `RUST_LOG` overrides the default level (info). Keep the guard until the end: it flushes
/// the log file.
pub fn init_tracing(
    to_stderr: bool,
    log_dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = STDERR_COLOR.get().copied().unwrap_or(false);
    let stderr = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(crate::output::stderr_log::StderrWriter)
            .with_target(false)
            .with_ansi(ansi)
    });
    let (file, guard) = match log_dir {
        Some(dir) => {
            let (layer, guard) = crate::output::log_file::bridge_log_layer(dir)?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init();
    Ok(guard)
}
