//! Runs side by side (`coppelia-bridge compare`): the same few figures of every run, for
//! the whole run and per dummy, with each run's difference from the first (the baseline).
//!
//! Pure: final snapshots in, a [`Comparison`] and its text table out. Per-dummy figures
//! are read through the shared column definitions ([`columns`](crate::output::columns)),
//! so they carry the same decimals and units as the end-of-run table, the live view, the
//! report and the exports. Run-wide figures are defined in `docs/METRICS.md`
//! ("Comparing runs").

use std::collections::{BTreeMap, HashMap};

use crate::metrics::{DummySnapshot, RunSnapshot};
use crate::output::columns::{column, Align, Column, ColumnId};
use crate::output::format::{self, UNAVAILABLE};

/// The figures compared, in table order: RTF total / worst, rate, latency p50 / p99, loss.
pub const METRICS: [ColumnId; 6] = [
    ColumnId::RtfTotal,
    ColumnId::RtfWorst1s,
    ColumnId::Rate,
    ColumnId::LatencyP50,
    ColumnId::LatencyP99,
    ColumnId::LossPct,
];

/// A figure's name in the comparison, with its column's unit: the column's header, which
/// for latency percentiles is prefixed (`latency p99 (µs)`, where the dummy tables have
/// `p99 (µs)` beside `latency p50 (µs)`).
pub fn figure_title(c: &Column) -> String {
    if c.key.starts_with("latency_") && !c.header.starts_with("latency") {
        format!("latency {}", c.title())
    } else {
        c.title()
    }
}

/// One scope's figures in one run, in the order of [`METRICS`]; `None` = unavailable.
pub type Figures = [Option<f64>; METRICS.len()];

/// The figures of one dummy (its current session), exactly as its table cells hold them.
pub fn dummy_figures(d: &DummySnapshot) -> Figures {
    METRICS.map(|id| column(id).value(d).number())
}

/// The run-wide figures: the simulation's RTF (remote API; unavailable without it), the
/// sum of the dummies' rates, the run-wide latency distribution, and lost / expected over
/// every dummy with a sequence number.
pub fn run_figures(s: &RunSnapshot) -> Figures {
    let sim_rtf = s.sim.as_ref().map(|sim| &sim.rtf);
    let rates: Vec<f64> = s.dummies.iter().filter_map(|d| d.rate.wall_hz).collect();
    let rate = (!rates.is_empty()).then(|| rates.iter().sum());
    let latency = s.latency.as_ref();
    [
        sim_rtf.and_then(|r| r.total),
        sim_rtf.and_then(|r| r.worst_1s),
        rate,
        latency.map(|l| l.p50_us),
        latency.map(|l| l.p99_us),
        s.loss_pct(),
    ]
    .map(|v| v.filter(|v| v.is_finite()))
}

/// One row group of the comparison: the whole run, or one dummy.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// `run`, or the dummy's `name #id`.
    pub label: String,
    /// The dummy's id; `None` for the whole run.
    pub dummy: Option<u32>,
    /// Per run, in the order given; `None` when the dummy is absent from that run.
    pub per_run: Vec<Option<Figures>>,
}

/// Every run's figures, run-wide first, then per dummy (matched by id, ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Run labels, the baseline first.
    pub runs: Vec<String>,
    pub scopes: Vec<Scope>,
}

/// A difference from the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diff {
    /// other − baseline, in the metric's unit.
    pub abs: f64,
    /// 100 · (other − baseline) / |baseline|; `None` when the baseline is 0.
    pub rel_pct: Option<f64>,
}

/// `other` against `baseline`; `None` when either is unavailable.
pub fn diff(baseline: Option<f64>, other: Option<f64>) -> Option<Diff> {
    let (b, o) = (baseline?, other?);
    if !(b.is_finite() && o.is_finite()) {
        return None;
    }
    let abs = o - b;
    Some(Diff {
        abs,
        rel_pct: (b != 0.0).then(|| 100.0 * abs / b.abs()),
    })
}

/// Compares `runs` (label, final snapshot), the first being the baseline.
pub fn compare(runs: &[(String, &RunSnapshot)]) -> Comparison {
    let mut scopes = vec![Scope {
        label: "run".to_owned(),
        dummy: None,
        per_run: runs.iter().map(|(_, s)| Some(run_figures(s))).collect(),
    }];
    let mut names: BTreeMap<u32, &str> = BTreeMap::new();
    for (_, s) in runs {
        for d in &s.dummies {
            names.entry(d.id).or_insert(&d.name);
        }
    }
    // Each run's dummies by id, once (a search per dummy and run was quadratic).
    let by_id: Vec<HashMap<u32, &DummySnapshot>> = runs
        .iter()
        .map(|(_, s)| s.dummies.iter().map(|d| (d.id, d)).collect())
        .collect();
    for (id, name) in names {
        let per_run = by_id
            .iter()
            .map(|run| run.get(&id).copied().map(dummy_figures))
            .collect();
        scopes.push(Scope {
            label: format!("{name} #{id}"),
            dummy: Some(id),
            per_run,
        });
    }
    Comparison {
        runs: runs.iter().map(|(l, _)| l.clone()).collect(),
        scopes,
    }
}

/// A figure with its column's decimals, or `-`.
pub fn value_cell(c: &Column, v: Option<f64>) -> String {
    format::opt(v, c.decimals)
}

/// A difference with its column's decimals and a sign: `+0.012 (+1.2 %)`, `-` when
/// unavailable, `±0` when equal.
pub fn diff_cell(c: &Column, d: Option<Diff>) -> String {
    let Some(d) = d else {
        return UNAVAILABLE.to_owned();
    };
    let abs = format!("{:+.*}", c.decimals, d.abs);
    let zero = format!("{:+.*}", c.decimals, 0.0);
    if abs == zero || abs == format!("-{}", &zero[1..]) {
        return "±0".to_owned();
    }
    match d.rel_pct {
        Some(r) => format!("{abs} ({r:+.1} %)"),
        None => abs,
    }
}

/// The side-by-side table printed by `compare`: one row per scope and figure, one column
/// per run, and after every run but the first its difference from the first.
pub fn text_table(c: &Comparison) -> String {
    let mut header = vec!["scope".to_owned(), "figure".to_owned()];
    for (i, r) in c.runs.iter().enumerate() {
        header.push(r.clone());
        if i > 0 {
            header.push(format!("Δ {r}"));
        }
    }
    let mut grid = vec![header];
    for scope in &c.scopes {
        for (m, id) in METRICS.iter().enumerate() {
            let col = column(*id);
            let base = scope.per_run.first().and_then(|f| f.as_ref()?[m]);
            let mut row = vec![
                if m == 0 {
                    scope.label.clone()
                } else {
                    String::new()
                },
                figure_title(col),
            ];
            for (i, figs) in scope.per_run.iter().enumerate() {
                let v = figs.as_ref().and_then(|f| f[m]);
                row.push(match figs {
                    Some(_) => value_cell(col, v),
                    None => "absent".to_owned(),
                });
                if i > 0 {
                    row.push(diff_cell(col, diff(base, v)));
                }
            }
            grid.push(row);
        }
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &grid {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                if i < 2 {
                    pad(cell, w, Align::Left)
                } else {
                    pad(cell, w, Align::Right)
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn pad(s: &str, width: usize, align: Align) -> String {
    match align {
        Align::Left => format!("{s:<width$}"),
        Align::Right => format!("{s:>width$}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;
    use proptest::prelude::*;

    fn labelled(s: &RunSnapshot, l: &str) -> (String, RunSnapshot) {
        (l.to_owned(), s.clone())
    }

    #[test]
    fn a_run_against_itself_differs_by_nothing() {
        let s = sample_run_snapshot();
        let c = compare(&[("a".into(), &s), ("b".into(), &s)]);
        assert_eq!(c.scopes.len(), 1 + s.dummies.len());
        let t = text_table(&c);
        for line in t.lines().skip(1) {
            assert!(
                line.ends_with("±0") || line.ends_with('-'),
                "no difference: {line}"
            );
        }
    }

    #[test]
    fn run_wide_figures_follow_their_definitions() {
        let s = sample_run_snapshot();
        let f = run_figures(&s);
        let sim = s.sim.as_ref().unwrap();
        assert_eq!(f[0], sim.rtf.total);
        assert_eq!(f[1], sim.rtf.worst_1s);
        let rate: f64 = s.dummies.iter().filter_map(|d| d.rate.wall_hz).sum();
        assert_eq!(f[2], Some(rate));
        assert_eq!(f[3], s.latency.as_ref().map(|l| l.p50_us));
        // Fixture: 0 of 250 and 4 of 184 lost; legacy has no seq.
        let loss = f[5].unwrap();
        assert!((loss - 400.0 / 434.0).abs() < 1e-9, "{loss}");
        let mut bare = s.clone();
        bare.sim = None;
        bare.dummies.clear();
        bare.latency = None;
        assert_eq!(run_figures(&bare), [None; 6]);
    }

    #[test]
    fn differences_are_signed_with_the_columns_decimals() {
        let base = sample_run_snapshot();
        let (_, mut worse) = labelled(&base, "b");
        worse.dummies[0].rtf.total = Some(0.896);
        worse.dummies[0].loss.as_mut().unwrap().loss_pct = 1.5;
        worse.dummies.remove(2);
        let c = compare(&[("base".into(), &base), ("worse".into(), &worse)]);
        let t = text_table(&c);
        let header = t.lines().next().unwrap();
        assert!(header.contains("base") && header.contains("Δ worse"), "{t}");
        let line = |scope_row: usize, m: usize| t.lines().nth(1 + scope_row * 6 + m).unwrap();
        let d0_rtf = line(1, 0);
        assert!(d0_rtf.starts_with("Dummy0 #0"), "{t}");
        assert!(d0_rtf.contains("0.996") && d0_rtf.contains("0.896"), "{t}");
        assert!(d0_rtf.ends_with("-0.100 (-10.0 %)"), "{d0_rtf}");
        let d0_loss = line(1, 5);
        assert!(d0_loss.contains("loss (%)"), "{d0_loss}");
        assert!(
            d0_loss.ends_with("+1.500"),
            "no relative change from 0: {d0_loss}"
        );
        assert!(line(3, 0).contains("absent"), "legacy-2 left run b: {t}");
    }

    #[test]
    fn diff_cells() {
        let c = column(ColumnId::LatencyP99);
        assert_eq!(diff_cell(c, diff(Some(500.0), Some(500.2))), "±0");
        assert_eq!(
            diff_cell(c, diff(Some(500.0), Some(750.0))),
            "+250 (+50.0 %)"
        );
        assert_eq!(diff_cell(c, diff(None, Some(1.0))), "-");
        assert_eq!(diff_cell(c, diff(Some(f64::NAN), Some(1.0))), "-");
    }

    proptest! {
        /// baseline + abs = other, and the relative change is abs over |baseline|.
        #[test]
        fn diff_reconstructs_the_other_value(b in -1e6f64..1e6, o in -1e6f64..1e6) {
            let d = diff(Some(b), Some(o)).unwrap();
            prop_assert!((b + d.abs - o).abs() <= 1e-9 * (1.0 + o.abs()));
            match d.rel_pct {
                Some(r) => prop_assert!((r * b.abs() / 100.0 - d.abs).abs() <= 1e-6 * (1.0 + d.abs.abs())),
                None => prop_assert_eq!(b, 0.0),
            }
        }

        /// Every scope has one entry per run, and a dummy is absent exactly where its run
        /// lacks it.
        #[test]
        fn scopes_cover_every_dummy_of_every_run(keep in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 3), 1..4)) {
            let full = sample_run_snapshot();
            let runs: Vec<RunSnapshot> = keep.iter().map(|k| {
                let mut s = full.clone();
                s.dummies = full.dummies.iter().zip(k).filter(|(_, &k)| k).map(|(d, _)| d.clone()).collect();
                s
            }).collect();
            let labelled: Vec<(String, &RunSnapshot)> = runs.iter().enumerate().map(|(i, s)| (format!("r{i}"), s)).collect();
            let c = compare(&labelled);
            let ids: std::collections::BTreeSet<u32> = runs.iter().flat_map(|s| s.dummies.iter().map(|d| d.id)).collect();
            prop_assert_eq!(c.scopes.len(), 1 + ids.len());
            for scope in &c.scopes[1..] {
                prop_assert_eq!(scope.per_run.len(), runs.len());
                for (s, f) in runs.iter().zip(&scope.per_run) {
                    prop_assert_eq!(f.is_some(), s.dummies.iter().any(|d| Some(d.id) == scope.dummy));
                }
            }
        }
    }
}
