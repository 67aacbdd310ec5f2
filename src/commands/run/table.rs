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
    clock_lines(&mut out, &s.dummies);
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

/// Clock lines shown per dummy (echo mode); the rest are in summary.json.
const CLOCK_LINES: usize = 8;

/// The clock offset of each echo-mode dummy, and which latencies it makes unsure.
fn clock_lines(out: &mut String, dummies: &[DummySnapshot]) {
    let clocked: Vec<_> = dummies
        .iter()
        .filter_map(|d| d.clock.map(|c| (d, c)))
        .collect();
    for (d, c) in clocked.iter().take(CLOCK_LINES) {
        let mut notes = vec![count(c.exchanges, "exchange")];
        if c.same_host {
            notes.push("same host: one clock".into());
        }
        if c.offset_significant && !c.same_host {
            notes.push("clocks differ: every latency contains the offset".into());
        }
        if !c.consistent {
            notes.push("exchanges disagree: a clock stepped or drifts".into());
        }
        let _ = writeln!(
            out,
            "clock offset {}: {:+.3} ± {:.3} ms ({})",
            d.name,
            c.offset_s * 1e3,
            c.bound_s * 1e3,
            notes.join(", ")
        );
    }
    if clocked.len() > CLOCK_LINES {
        let more = clocked.len() - CLOCK_LINES;
        let _ = writeln!(out, "clock offset: {more} more in summary.json");
    }
    let unsure: Vec<&str> = clocked
        .iter()
        .filter(|(_, c)| c.latency_uncertain)
        .map(|(d, _)| d.name.as_str())
        .collect();
    if !unsure.is_empty() {
        let _ = writeln!(
            out,
            "latency unsure for {}: |clock offset| + bound ≥ half the latency p50, so the \
             clock could make up half of the one-way latency or more; synchronise the clocks \
             (chrony/PTP, docs/REMOTE_HOSTS.md)",
            unsure.join(", ")
        );
    }
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
    fn clock_offsets_and_unsure_latencies_are_listed() {
        let mut s = sample_run_snapshot();
        let clock = crate::metrics::ClockOffsetStats {
            offset_s: 0.25,
            bound_s: 0.0004,
            min_delay_s: 0.0008,
            exchanges: 120,
            window: 64,
            consistent: true,
            same_host: false,
            offset_significant: true,
            latency_uncertain: true,
        };
        s.dummies[0].clock = Some(clock);
        s.dummies[1].clock = Some(crate::metrics::ClockOffsetStats {
            same_host: true,
            latency_uncertain: false,
            consistent: false,
            ..clock
        });
        let text = summary_table(&s);
        let (a, b) = (&s.dummies[0].name, &s.dummies[1].name);
        assert!(
            text.contains(&format!(
                "clock offset {a}: +250.000 ± 0.400 ms (120 exchanges, clocks differ: every \
                 latency contains the offset)\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "clock offset {b}: +250.000 ± 0.400 ms (120 exchanges, same host: one clock, \
             exchanges disagree: a clock stepped or drifts)\n"
        )));
        assert!(
            text.contains(&format!("latency unsure for {a}: ")),
            "{text}"
        );
        assert!(!text.contains(&format!("unsure for {a}, {b}")));
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
