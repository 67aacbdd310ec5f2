//! The live view (ratatui) and its plain-text fallback.
//!
//! [`ViewState`] holds what the view adds to the snapshot (selection, sort, freeze,
//! sparkline histories); [`on_key`] is pure; `widgets` has one render function per widget,
//! tested with ratatui's `TestBackend`; [`run_tui`] is the thin terminal loop.

mod plain;
mod state;
pub mod widgets;

use std::time::Duration;

use ratatui::crossterm::event::{self, Event};
use ratatui::DefaultTerminal;
use tokio::sync::{mpsc, watch};

use crate::metrics::RunSnapshot;

pub use plain::plain_lines;
pub use state::{
    next_sort, on_key, sort_label, DummyHistory, History, Ring, SortColumn, UiAction, ViewState,
    HISTORY_LEN,
};

/// What the view shows besides the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Name of the simulation (`--instance`), shown in the title.
    pub instance: String,
    /// Length of a bounded run (`--duration`), s; `None` runs until q.
    pub duration_s: Option<f64>,
    /// Where the bridge listens, e.g. `udp 127.0.0.1:8888`.
    pub listen: String,
}

/// How often keys are polled; also the redraw period.
const TICK: Duration = Duration::from_millis(200);

/// Runs the live view until q (or Ctrl-C) or until the snapshot sender is dropped (the
/// run ended). Key actions go to `actions`; `Quit` is sent before returning. The terminal
/// is restored on return and on panic (ratatui's panic hook plus a drop guard).
pub async fn run_tui(
    rx: watch::Receiver<RunSnapshot>,
    actions: mpsc::Sender<UiAction>,
    info: RunInfo,
) -> std::io::Result<()> {
    run_tui_with_target(rx, actions, info, 1.0).await
}

/// [`run_tui`] with the RTF sparklines' target line at `target_rtf` (`--target-rtf`).
pub async fn run_tui_with_target(
    rx: watch::Receiver<RunSnapshot>,
    actions: mpsc::Sender<UiAction>,
    info: RunInfo,
    target_rtf: f64,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(rx, &actions, &info, target_rtf))
        .await
        .map_err(std::io::Error::other)?
}

/// Restores the terminal when dropped, including during unwinding.
struct TerminalGuard(DefaultTerminal);

impl TerminalGuard {
    fn enter() -> std::io::Result<Self> {
        // try_init installs a panic hook that restores the terminal before printing.
        ratatui::try_init().map(Self)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn run_blocking(
    mut rx: watch::Receiver<RunSnapshot>,
    actions: &mpsc::Sender<UiAction>,
    info: &RunInfo,
    target_rtf: f64,
) -> std::io::Result<()> {
    let mut terminal = TerminalGuard::enter()?;
    let mut state = ViewState::new(rx.borrow_and_update().clone());
    state.target_rtf = target_rtf;
    loop {
        terminal.0.draw(|f| {
            state.page_rows = widgets::screen_layout(f.area(), &state, info).table_rows();
            widgets::render(f, &state, info);
        })?;
        if event::poll(TICK)? {
            if let Event::Key(key) = event::read()? {
                match on_key(&mut state, key) {
                    Some(UiAction::Quit) => {
                        // The app may already be gone; nothing left to tell then.
                        let _ = actions.blocking_send(UiAction::Quit);
                        return Ok(());
                    }
                    Some(action) => {
                        let _ = actions.try_send(action);
                    }
                    None => {}
                }
            }
        }
        match rx.has_changed() {
            Ok(true) => state.observe(rx.borrow_and_update().clone()),
            Ok(false) => {}
            Err(_) => return Ok(()),
        }
    }
}
