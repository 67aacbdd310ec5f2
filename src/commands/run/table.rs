//! Text renderings of a snapshot: the end-of-run table and the plain periodic lines.
//! `-` marks a value that is unavailable (e.g. latency for a legacy dummy), never zero.

use std::fmt::Write as _;

use crate::metrics::{DummySnapshot, RunSnapshot};
use crate::output::format::opt;

/// The per-dummy table printed when a run ends.
pub fn summary_table(s: &RunSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:>10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7} {:>5} {:>5} {:>8}",
        "dummy", "id", "transport", "msgs", "rate", "RTF1s", "RTF10s", "RTFtot", "RTFwst",
        "lat50 µs", "lat99 µs", "latmax µs", "jit µs", "loss %", "dup", "reord", "state"
    );
    for d in &s.dummies {
        let _ = writeln!(out, "{}", row(d));
    }
    if s.dummies.is_empty() {
        out.push_str("(no dummy sent anything)\n");
    }
    for r in &s.rejected {
        let reasons: Vec<String> = r
            .by_reason
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "rejected from {}: {} ({})",
            r.source,
            r.total,
            reasons.join(", ")
        );
    }
    if let Some(sim) = &s.sim {
        let rtt = sim.remote_rtt.as_ref();
        let _ = writeln!(
            out,
            "simulation: {} {}, sim time {} s, RTF 1s/10s/total/worst {}/{}/{}/{}, remote call RTT (served once per pass) p50/p99 {}/{} µs, unreachable {:.1} s",
            sim.state,
            sim.version.as_deref().unwrap_or(""),
            opt(sim.sim_time_s, 3),
            opt(sim.rtf.last_1s, 3),
            opt(sim.rtf.last_10s, 3),
            opt(sim.rtf.total, 3),
            opt(sim.rtf.worst_1s, 3),
            opt(rtt.map(|r| r.p50_us), 0),
            opt(rtt.map(|r| r.p99_us), 0),
            sim.disconnected_s,
        );
        if let Some(idle) = &sim.remote_rtt_idle {
            let _ = writeln!(
                out,
                "simulation: remote call RTT while stopped/paused p50/p99 {}/{} µs ({} calls)",
                opt(Some(idle.p50_us), 0),
                opt(Some(idle.p99_us), 0),
                idle.count
            );
        }
        if let Some(st) = &sim.stepping {
            let _ = writeln!(out, "simulation: {}", crate::output::format::stepping(st));
        }
    }
    let _ = writeln!(
        out,
        "receive timestamps: {}; kernel drops: {}",
        s.recv_clock.as_str(),
        s.kernel_drops
            .map_or("unknown".to_owned(), |d| d.to_string())
    );
    out
}

fn row(d: &DummySnapshot) -> String {
    let lat = d.latency.as_ref();
    let loss = d.loss.as_ref();
    format!(
        "{:<12} {:>4} {:>10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7} {:>5} {:>5} {:>8}",
        truncate(&d.name, 12),
        d.id,
        d.transport.to_string(),
        d.messages,
        opt(d.rate.wall_hz, 2),
        opt(d.rtf.last_1s, 3),
        opt(d.rtf.last_10s, 3),
        opt(d.rtf.total, 3),
        opt(d.rtf.worst_1s, 3),
        opt(lat.map(|l| l.p50_us), 0),
        opt(lat.map(|l| l.p99_us), 0),
        opt(lat.map(|l| l.max_us), 0),
        opt(d.jitter_rfc3550_us, 1),
        opt(loss.map(|l| l.loss_pct), 2),
        loss.map_or("-".into(), |l| l.duplicates.to_string()),
        loss.map_or("-".into(), |l| l.reordered.to_string()),
        d.state.as_str(),
    )
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
