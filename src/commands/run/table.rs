//! The table printed when a run ends: one row per dummy, the columns of
//! [`columns::FINAL_TABLE`](crate::output::columns::FINAL_TABLE) (defined once for every
//! view), then the rejected sources and the simulation lines. `-` marks a value that is
//! unavailable (e.g. latency for a legacy dummy), never zero.

use std::fmt::Write as _;

use crate::metrics::{DummySnapshot, RunSnapshot};
use crate::output::columns::{text_table, FINAL_TABLE};
use crate::output::format::{count, opt, opt_count};

/// The per-dummy table printed when a run ends.
pub fn summary_table(s: &RunSnapshot) -> String {
    let dummies: Vec<&DummySnapshot> = s.dummies.iter().collect();
    let mut out = text_table(FINAL_TABLE, &dummies);
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
            count(r.total, "datagram"),
            reasons.join(", ")
        );
    }
    if let Some(sim) = &s.sim {
        let rtt = sim.remote_rtt.as_ref();
        let _ = writeln!(
            out,
            "simulation: {} {}, sim time {} s, RTF 1 s/10 s/total/worst {}/{}/{}/{}, remote call RTT (served once per pass) p50/p99 {}/{} µs, unreachable {:.1} s",
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
                "simulation: remote call RTT while stopped/paused p50/p99 {}/{} µs ({})",
                opt(Some(idle.p50_us), 0),
                opt(Some(idle.p99_us), 0),
                count(idle.count, "call")
            );
        }
        if let Some(st) = &sim.stepping {
            let _ = writeln!(out, "simulation: {}", crate::output::format::stepping(st));
        }
    }
    let backlog = s.backlog.as_ref();
    let _ = writeln!(
        out,
        "receive clock: {}; kernel drops: {}; read backlog p50/p99/max: {}/{}/{} µs",
        s.recv_clock.as_str(),
        opt_count(s.kernel_drops),
        opt(backlog.map(|b| b.p50_us), 0),
        opt(backlog.map(|b| b.p99_us), 0),
        opt(backlog.map(|b| b.max_us), 0),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    #[test]
    fn final_table_uses_the_shared_columns_and_snake_case_words() {
        let t = summary_table(&sample_run_snapshot());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("target  dummy"), "{t}");
        assert!(
            lines[0].contains("p99 µs") && lines[0].contains("loss %"),
            "{t}"
        );
        assert!(lines[1].starts_with("ok      Dummy0"), "{t}");
        assert!(lines[1].contains("21.5"), "jitter with 1 decimal: {t}");
        assert!(
            lines[2].starts_with("off     Dummy1") && lines[2].contains(" tcp "),
            "{t}"
        );
        assert!(
            lines[3].contains("legacy_udp") && lines[3].contains(" idle"),
            "{t}"
        );
        assert!(
            !t.contains("Udp") && !t.contains("Kernel") && !t.contains("-Hz"),
            "{t}"
        );
        assert!(t.contains("rejected from 10.0.0.9:4000: 3 datagrams (bad_version=3)"));
        assert!(
            t.contains(
                "receive clock: kernel; kernel drops: 0; read backlog p50/p99/max: 8/24/95 µs"
            ),
            "{t}"
        );
    }

    #[test]
    fn an_empty_run_says_so() {
        let mut s = sample_run_snapshot();
        s.dummies.clear();
        s.rejected.clear();
        s.sim = None;
        s.kernel_drops = None;
        let t = summary_table(&s);
        assert!(t.contains("(no dummy sent anything)"));
        assert!(t.contains("kernel drops: -;"), "{t}");
    }
}
