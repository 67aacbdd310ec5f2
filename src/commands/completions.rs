//! `completions SHELL` and `man`: shell completion scripts (clap_complete) and man pages
//! (clap_mangen), both generated from the one clap definition so they never drift.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    coppelia-bridge completions bash > ~/.local/share/bash-completion/completions/coppelia-bridge\n  \
    coppelia-bridge completions zsh > ~/.zfunc/_coppelia-bridge\n  \
    coppelia-bridge completions fish > ~/.config/fish/completions/coppelia-bridge.fish")]
pub struct CompletionsArgs {
    /// The shell to write a completion script for (to stdout).
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    coppelia-bridge man | man -l -\n  \
    coppelia-bridge man --out-dir ~/.local/share/man/man1")]
pub struct ManArgs {
    /// Write one page per command (coppelia-bridge.1, coppelia-bridge-run.1, …) into this
    /// directory instead of printing the main page to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    super::print_for_reader(&script).context("cannot write the completion script to stdout")
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            super::print_for_reader(&page).context("cannot write the man page to stdout")?;
        }
        Some(dir) => {
            let written = write_pages(cmd, &dir)?;
            println!("wrote {} man pages to {}", written, dir.display());
        }
    }
    Ok(())
}

/// Writes the main page and one per subcommand; returns how many.
fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {}: choose a writable --out-dir",
            dir.display()
        )
    })?;
    clap_mangen::generate_to(cmd.clone(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    Ok(1 + cmd.get_subcommands().filter(|s| !s.is_hide_set()).count())
}
