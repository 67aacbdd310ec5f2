//! View state of the live view and pure key handling: no terminal, no clock.

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::metrics::{DummySnapshot, RunSnapshot};

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

/// Table column the dummies are sorted by (s cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    #[default]
    Id,
    Name,
    /// Lowest first: the slowest dummy on top.
    Rtf1s,
    /// Lowest first.
    Rate,
    /// Highest first.
    LatencyP99,
    /// Highest first.
    Jitter,
    /// Highest first.
    Loss,
    /// Most first.
    Messages,
}

impl SortColumn {
    /// The next column in the cycle.
    pub fn next(self) -> Self {
        use SortColumn::*;
        match self {
            Id => Name,
            Name => Rtf1s,
            Rtf1s => Rate,
            Rate => LatencyP99,
            LatencyP99 => Jitter,
            Jitter => Loss,
            Loss => Messages,
            Messages => Id,
        }
    }

    /// Short label for the header.
    pub fn label(self) -> &'static str {
        use SortColumn::*;
        match self {
            Id => "id",
            Name => "name",
            Rtf1s => "RTF 1 s ↑",
            Rate => "rate ↑",
            LatencyP99 => "p99 ↓",
            Jitter => "jitter ↓",
            Loss => "loss ↓",
            Messages => "messages ↓",
        }
    }

    /// Sort key: unavailable values go last whatever the direction.
    fn key(self, d: &DummySnapshot) -> Option<f64> {
        use SortColumn::*;
        match self {
            Id | Name => Some(0.0),
            Rtf1s => d.rtf.last_1s,
            Rate => d.rate.wall_hz_1s,
            LatencyP99 => d.latency.as_ref().map(|l| -l.p99_us),
            Jitter => d.jitter_rfc3550_us.map(|j| -j),
            Loss => d.loss.as_ref().map(|l| -l.loss_pct),
            Messages => Some(-(d.messages as f64)),
        }
    }
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
}

impl ViewState {
    pub fn new(first: RunSnapshot) -> Self {
        let mut state = Self {
            selected: first.dummies.first().map(|d| d.id),
            shown: first.clone(),
            sort: SortColumn::default(),
            frozen: false,
            history: History::default(),
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
        match self.sort {
            SortColumn::Id => v.sort_by_key(|d| d.id),
            SortColumn::Name => v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            col => v.sort_by(|a, b| {
                let (ka, kb) = (col.key(a), col.key(b));
                match (ka, kb) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
                .then(a.id.cmp(&b.id))
            }),
        }
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
/// k j), PgUp PgDn, Home End move the selection.
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
        KeyCode::Char('s') => state.sort = state.sort.next(),
        KeyCode::Up | KeyCode::Char('k') => state.move_selection(-1),
        KeyCode::Down | KeyCode::Char('j') => state.move_selection(1),
        KeyCode::PageUp => state.move_selection(-10),
        KeyCode::PageDown => state.move_selection(10),
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
