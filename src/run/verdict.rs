//! Gates for CI (`--min-rtf`, `--max-loss`, `--max-latency-p99`) and the verdict of a run
//! against them (pure: the final snapshot in, a verdict out).
//!
//! Each gate is checked per dummy and for the run as a whole:
//! - `--min-rtf X`: each dummy's total RTF ≥ X, and the simulation-wide total RTF (from
//!   the remote API) ≥ X. A dummy without a total RTF (under 1 s of samples) fails: there is
//!   no evidence it kept up.
//! - `--max-loss PCT`: each dummy's loss % ≤ PCT, and all dummies' lost / expected ≤ PCT.
//!   Legacy dummies carry no sequence numbers: loss does not apply to them.
//! - `--max-latency-p99 D`: each dummy's one-way latency p99 ≤ D, and the p99 over every
//!   message of the run ≤ D. Legacy dummies carry no sender clock: latency does not apply.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::{DummySnapshot, RunSnapshot};

/// The limits a run must meet; `None` = no gate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    pub min_rtf: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_latency_p99: Option<Duration>,
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        *self == Gates::default()
    }

    fn count(&self) -> usize {
        [
            self.min_rtf.is_some(),
            self.max_loss_pct.is_some(),
            self.max_latency_p99.is_some(),
        ]
        .into_iter()
        .filter(|&g| g)
        .count()
    }
}

/// One gate one scope did not meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateFailure {
    /// The flag: `min_rtf`, `max_loss`, `max_latency_p99`.
    pub gate: String,
    /// `run`, or the dummy's name.
    pub scope: String,
    /// The dummy's id; `None` for the run.
    pub dummy: Option<u32>,
    /// The measured value (`None`: unavailable, which fails a gate that needs it).
    pub value: Option<f64>,
    pub limit: f64,
    /// Unit of value and limit.
    pub unit: String,
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, op) = match self.gate.as_str() {
            "min_rtf" => ("RTF total", "<"),
            "max_loss" => ("loss", ">"),
            _ => ("latency p99", ">"),
        };
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let value = self
            .value
            .map_or_else(|| "unavailable".to_owned(), |v| format!("{v:.3}{unit}"));
        write!(
            f,
            "gate --{} failed: {} {what} {value} {op} {}{unit}",
            self.gate.replace('_', "-"),
            self.scope,
            self.limit
        )
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Every gate met (true when there are no gates).
    pub passed: bool,
    /// Number of gates given.
    pub gates: usize,
    pub failures: Vec<GateFailure>,
}

impl Verdict {
    /// One line for people: `verdict: pass (3 gates)` or `verdict: FAIL (2 failures of 3 gates)`.
    pub fn headline(&self) -> String {
        let gates = crate::output::format::count(self.gates as u64, "gate");
        if self.passed {
            format!("verdict: pass ({gates})")
        } else {
            format!(
                "verdict: FAIL ({} of {gates})",
                crate::output::format::count(self.failures.len() as u64, "failure")
            )
        }
    }
}

/// Checks `s` against `gates`.
pub fn verdict(s: &RunSnapshot, gates: &Gates) -> Verdict {
    let mut failures = Vec::new();
    if let Some(min) = gates.min_rtf {
        for d in &s.dummies {
            let v = d.rtf.total;
            if v.is_none_or(|v| v < min) {
                failures.push(failure("min_rtf", Some(d), v, min, ""));
            }
        }
        if let Some(v) = s.sim.as_ref().and_then(|sim| sim.rtf.total) {
            if v < min {
                failures.push(failure("min_rtf", None, Some(v), min, ""));
            }
        }
    }
    if let Some(max) = gates.max_loss_pct {
        for d in &s.dummies {
            if let Some(l) = d.loss.as_ref().filter(|l| l.loss_pct > max) {
                failures.push(failure("max_loss", Some(d), Some(l.loss_pct), max, "%"));
            }
        }
        if let Some(pct) = s.loss_pct().filter(|&p| p > max) {
            failures.push(failure("max_loss", None, Some(pct), max, "%"));
        }
    }
    if let Some(max) = gates.max_latency_p99 {
        let max_us = max.as_secs_f64() * 1e6;
        for d in &s.dummies {
            if let Some(p99) = d.latency.as_ref().map(|l| l.p99_us).filter(|&p| p > max_us) {
                failures.push(failure("max_latency_p99", Some(d), Some(p99), max_us, "µs"));
            }
        }
        if let Some(p99) = s.latency.as_ref().map(|l| l.p99_us).filter(|&p| p > max_us) {
            failures.push(failure("max_latency_p99", None, Some(p99), max_us, "µs"));
        }
    }
    Verdict {
        passed: failures.is_empty(),
        gates: gates.count(),
        failures,
    }
}

fn failure(
    gate: &str,
    d: Option<&DummySnapshot>,
    value: Option<f64>,
    limit: f64,
    unit: &str,
) -> GateFailure {
    GateFailure {
        gate: gate.to_owned(),
        scope: d.map_or_else(|| "run".to_owned(), |d| d.name.clone()),
        dummy: d.map(|d| d.id),
        value,
        limit,
        unit: unit.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    #[test]
    fn no_gates_pass() {
        let v = verdict(&sample_run_snapshot(), &Gates::default());
        assert!(v.passed && v.failures.is_empty());
        assert_eq!(v.headline(), "verdict: pass (0 gates)");
    }

    #[test]
    fn each_gate_is_checked_per_dummy_and_for_the_run() {
        // The fixture: Dummy0 RTF total 0.996, loss 0/250, p99 546 µs; Dummy1 (TCP) RTF 0.85,
        // loss 4/184 = 2.17 %, p99 720 µs; legacy-2 RTF 0.97, no loss or latency; simulation
        // RTF 0.96; the run: loss 4/434 = 0.92 %, latency p99 630 µs.
        let s = sample_run_snapshot();
        let gates = Gates {
            min_rtf: Some(0.95),
            max_loss_pct: Some(1.0),
            max_latency_p99: Some(Duration::from_micros(600)),
        };
        let v = verdict(&s, &gates);
        assert!(!v.passed);
        let lines: Vec<String> = v.failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "gate --min-rtf failed: Dummy1 RTF total 0.850 < 0.95",
                "gate --max-loss failed: Dummy1 loss 2.174 % > 1 %",
                "gate --max-latency-p99 failed: Dummy1 latency p99 720.000 µs > 600 µs",
                "gate --max-latency-p99 failed: run latency p99 630.000 µs > 600 µs",
            ],
            "legacy-2 is exempt from loss and latency; the run's RTF 0.96 and loss 0.92 % pass"
        );
        assert_eq!(v.headline(), "verdict: FAIL (4 failures of 3 gates)");
        let run_loss = Gates {
            max_loss_pct: Some(0.9),
            ..Gates::default()
        };
        assert_eq!(
            verdict(&s, &run_loss).failures[1].to_string(),
            "gate --max-loss failed: run loss 0.922 % > 0.9 %"
        );
        let loose = Gates {
            min_rtf: Some(0.8),
            max_loss_pct: Some(5.0),
            max_latency_p99: Some(Duration::from_millis(1)),
        };
        assert!(verdict(&s, &loose).passed);
    }

    #[test]
    fn a_dummy_without_a_total_rtf_fails_the_rtf_gate() {
        let mut s = sample_run_snapshot();
        s.dummies[0].rtf.total = None;
        let v = verdict(
            &s,
            &Gates {
                min_rtf: Some(0.5),
                ..Gates::default()
            },
        );
        assert_eq!(v.failures.len(), 1);
        assert_eq!(
            v.failures[0].to_string(),
            "gate --min-rtf failed: Dummy0 RTF total unavailable < 0.5"
        );
        assert_eq!(v.headline(), "verdict: FAIL (1 failure of 1 gate)");
    }
}
