//! View state of the live view and pure key handling: no terminal, no clock.

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::metrics::{DummySnapshot, RunSnapshot};
use crate::output::columns::{column, ColumnId, Worse, LIVE_SORT_CYCLE};

/// Points kept per sparkline (one per snapshot received).
pub const HISTORY_LEN: usize = 240;

/// What the live view asks the app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    /// Leave the live view and end the run (q, Ctrl-C).
    Quit,
    /// Reset the aggregator's statistics (r).
    ResetStats,
}

/// Table column the dummies are sorted by (s cycles through
/// [`LIVE_SORT_CYCLE`]): one of the shared column definitions, which know their sort
/// direction (worst first) and header.
pub type SortColumn = ColumnId;

/// The next sort column in the live view's cycle.
pub fn next_sort(current: SortColumn) -> SortColumn {
    let i = LIVE_SORT_CYCLE
        .iter()
        .position(|&c| c == current)
        .map_or(0, |i| (i + 1) % LIVE_SORT_CYCLE.len());
    LIVE_SORT_CYCLE[i]
}

/// Short label for the table title: the column's short header and the direction.
pub fn sort_label(sort: SortColumn) -> String {
    let c = column(sort);
    let arrow = match c.worse {
        Worse::Low => " ↑",
        Worse::High => " ↓",
        Worse::None => "",
    };
    format!("{}{arrow}", c.short_title())
}

/// A bounded series for a sparkline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ring {
    values: VecDeque<Option<f64>>,
}

impl Ring {
    pub fn push(&mut self, v: Option<f64>) {
        if self.values.len() == HISTORY_LEN {
            self.values.pop_front();
        }
        self.values.push_back(v.filter(|v| v.is_finite()));
    }

    pub fn values(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.values.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Sparkline histories of one dummy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DummyHistory {
    pub rtf_1s: Ring,
    pub latency_p50_us: Ring,
}

/// Sparkline histories: recorded values only, nothing computed here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub sim_rtf_1s: Ring,
    pub dummies: BTreeMap<u32, DummyHistory>,
}

impl History {
    fn record(&mut self, s: &RunSnapshot) {
        self.sim_rtf_1s
            .push(s.sim.as_ref().and_then(|sim| sim.rtf.last_1s));
        for d in &s.dummies {
            let h = self.dummies.entry(d.id).or_default();
            h.rtf_1s.push(d.rtf.last_1s);
            h.latency_p50_us.push(d.latency.as_ref().map(|l| l.p50_us));
        }
    }
}

/// Everything the live view shows besides the snapshot's own numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewState {
    /// The snapshot drawn (the latest, or the one frozen with p).
    pub shown: RunSnapshot,
    /// Selected dummy, by id (stable when the order changes).
    pub selected: Option<u32>,
    pub sort: SortColumn,
    /// While frozen, new snapshots are ignored.
    pub frozen: bool,
    pub history: History,
    /// The target RTF, marked on the RTF sparklines (1 unless the app says otherwise).
    pub target_rtf: f64,
    /// Dummy rows the table showed last time it was drawn: what PgUp / PgDn move by.
    pub page_rows: usize,
}

/// Rows PgUp / PgDn move before the table was first drawn.
const DEFAULT_PAGE_ROWS: usize = 10;

impl ViewState {
    pub fn new(first: RunSnapshot) -> Self {
        let mut state = Self {
            selected: first.dummies.first().map(|d| d.id),
            shown: first.clone(),
            sort: SortColumn::default(),
            frozen: false,
            history: History::default(),
            target_rtf: 1.0,
            page_rows: DEFAULT_PAGE_ROWS,
        };
        state.history.record(&first);
        state
    }

    /// Takes a new snapshot unless frozen.
    pub fn observe(&mut self, s: RunSnapshot) {
        if self.frozen {
            return;
        }
        self.history.record(&s);
        self.shown = s;
        if self.selected_dummy().is_none() {
            self.selected = self.sorted().first().map(|d| d.id);
        }
    }

    /// Dummies in display order.
    pub fn sorted(&self) -> Vec<&DummySnapshot> {
        let mut v: Vec<&DummySnapshot> = self.shown.dummies.iter().collect();
        let col = column(self.sort);
        v.sort_by(|a, b| col.compare(a, b));
        v
    }

    /// Row index of the selected dummy in display order.
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.sorted().iter().position(|d| d.id == id)
    }

    pub fn selected_dummy(&self) -> Option<&DummySnapshot> {
        let id = self.selected?;
        self.shown.dummies.iter().find(|d| d.id == id)
    }

    fn move_selection(&mut self, delta: isize) {
        let ids: Vec<u32> = self.sorted().iter().map(|d| d.id).collect();
        if ids.is_empty() {
            return;
        }
        let current = self.selected_index().unwrap_or(0) as isize;
        let last = ids.len() as isize - 1;
        let next = (current + delta).clamp(0, last) as usize;
        self.selected = Some(ids[next]);
    }
}

/// Applies one key press; returns what the app must do, if anything.
/// q / Ctrl-C quit, p freezes, r resets statistics, s cycles the sort column, ↑ ↓ (or
/// k j), PgUp PgDn (by the rows the table shows), Home End move the selection.
pub fn on_key(state: &mut ViewState, key: KeyEvent) -> Option<UiAction> {
    // Terminals on Windows also report releases; act on presses only.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            return Some(UiAction::Quit)
        }
        KeyCode::Char('q') | KeyCode::Esc => return Some(UiAction::Quit),
        KeyCode::Char('r') => {
            state.history = History::default();
            return Some(UiAction::ResetStats);
        }
        KeyCode::Char('p') => state.frozen = !state.frozen,
        KeyCode::Char('s') => state.sort = next_sort(state.sort),
        KeyCode::Up | KeyCode::Char('k') => state.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => state.move_selection(1),
        KeyCode::PageUp => state.move_selection(-(state.page_rows.max(1) as isize)),
        KeyCode::PageDown => state.move_selection(state.page_rows.max(1) as isize),
        KeyCode::Home => state.move_selection(isize::MIN / 2),
        KeyCode::End => state.move_selection(isize::MAX / 2),
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn quit_and_reset_become_actions() {
        let mut s = ViewState::new(sample_run_snapshot());
        assert_eq!(
            on_key(&mut s, key(KeyCode::Char('q'))),
            Some(UiAction::Quit)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(on_key(&mut s, ctrl_c), Some(UiAction::Quit));
        assert!(!s.history.sim_rtf_1s.is_empty());
        assert_eq!(
            on_key(&mut s, key(KeyCode::Char('r'))),
            Some(UiAction::ResetStats)
        );
        assert!(
            s.history.sim_rtf_1s.is_empty(),
            "reset clears the sparklines"
        );
    }

    #[test]
    fn arrows_move_the_selection_within_bounds() {
        let mut s = ViewState::new(sample_run_snapshot());
        assert_eq!(s.selected, Some(0));
        on_key(&mut s, key(KeyCode::Up));
        assert_eq!(s.selected, Some(0));
        on_key(&mut s, key(KeyCode::Down));
        on_key(&mut s, key(KeyCode::Down));
        on_key(&mut s, key(KeyCode::Down));
        assert_eq!(s.selected, Some(2));
        on_key(&mut s, key(KeyCode::Home));
        assert_eq!(s.selected, Some(0));
    }

    #[test]
    fn sort_cycles_and_puts_unavailable_values_last() {
        let mut s = ViewState::new(sample_run_snapshot());
        on_key(&mut s, key(KeyCode::Char('s')));
        on_key(&mut s, key(KeyCode::Char('s')));
        assert_eq!(s.sort, SortColumn::Rtf1s);
        let order: Vec<u32> = s.sorted().iter().map(|d| d.id).collect();
        assert_eq!(order, [1, 0, 2], "slowest first, legacy (no 1 s RTF) last");
        s.sort = SortColumn::LatencyP99;
        let order: Vec<u32> = s.sorted().iter().map(|d| d.id).collect();
        assert_eq!(order, [1, 0, 2]);
        for _ in 0..8 {
            on_key(&mut s, key(KeyCode::Char('s')));
        }
        assert_eq!(
            s.sort,
            SortColumn::LatencyP99,
            "8 presses go round the cycle"
        );
    }

    #[test]
    fn frozen_view_ignores_new_snapshots_until_unfrozen() {
        let mut s = ViewState::new(sample_run_snapshot());
        on_key(&mut s, key(KeyCode::Char('p')));
        let mut next = sample_run_snapshot();
        next.elapsed_s = 99.0;
        s.observe(next.clone());
        assert_eq!(s.shown.elapsed_s, 12.5);
        on_key(&mut s, key(KeyCode::Char('p')));
        s.observe(next);
        assert_eq!(s.shown.elapsed_s, 99.0);
        assert_eq!(s.history.dummies[&0].rtf_1s.len(), 2);
    }

    #[test]
    fn selection_follows_the_dummy_and_recovers_when_it_disappears() {
        let mut s = ViewState::new(sample_run_snapshot());
        s.selected = Some(1);
        let mut next = sample_run_snapshot();
        next.dummies.retain(|d| d.id != 1);
        s.observe(next);
        assert_eq!(s.selected, Some(0));
        s.observe(RunSnapshot {
            dummies: vec![],
            ..sample_run_snapshot()
        });
        assert_eq!(s.selected, None);
        assert_eq!(on_key(&mut s, key(KeyCode::Down)), None);
        assert_eq!(s.selected, None);
    }

    #[test]
    fn history_is_bounded() {
        let mut r = Ring::default();
        for i in 0..(HISTORY_LEN + 10) {
            r.push(Some(i as f64));
        }
        assert_eq!(r.len(), HISTORY_LEN);
        assert_eq!(r.values().next(), Some(Some(10.0)));
    }
}
