//! Without a terminal (or with `--no-tui`): one concise line per dummy, printed through
//! tracing by the app every `--print-interval`.

use crate::metrics::RunSnapshot;
use crate::output::columns::{column, ColumnId};
use crate::output::format::{opt, opt_us, UNAVAILABLE};
use crate::output::rtf_csv::state_name;

/// A line for the simulation (if the remote API is in use), then one per dummy in id
/// order. `-` marks unavailable values; `OFF-TARGET` ends the line of a dummy whose 1 s
/// RTF is off the target.
pub fn plain_lines(snapshot: &RunSnapshot) -> Vec<String> {
    let mut lines = Vec::with_capacity(snapshot.dummies.len() + 1);
    if let Some(sim) = &snapshot.sim {
        lines.push(format!(
            "sim state={} t={}s rtf1s={} rtf10s={} remote_rtt_p50={}us elapsed={:.1}s",
            sim.state,
            opt(sim.sim_time_s, 3),
            opt(sim.rtf.last_1s, 3),
            opt(sim.rtf.last_10s, 3),
            opt_us(sim.remote_rtt.as_ref().map(|l| l.p50_us)),
            snapshot.elapsed_s
        ));
        if let Some(st) = &sim.stepping {
            lines.push(format!("sim {}", crate::output::format::stepping(st)));
        }
    }
    let mut dummies: Vec<_> = snapshot.dummies.iter().collect();
    dummies.sort_by_key(|d| d.id);
    for d in dummies {
        // The shared column formatters; a unit follows a number only, never a `-`.
        let v = |id: ColumnId| column(id).cell(d);
        let u = |id: ColumnId, unit: &str| {
            let cell = column(id).cell(d);
            if cell == UNAVAILABLE {
                cell
            } else {
                cell + unit
            }
        };
        let mut line = format!(
            "{} #{} {} msgs={} rate={} rtf1s={} rtf10s={} lat_p50={} lat_p99={} jitter={} loss={}",
            d.name,
            d.id,
            state_name(d),
            d.messages,
            u(ColumnId::Rate1s, "Hz"),
            v(ColumnId::Rtf1s),
            v(ColumnId::Rtf10s),
            u(ColumnId::LatencyP50, "us"),
            u(ColumnId::LatencyP99, "us"),
            u(ColumnId::Jitter, "us"),
            u(ColumnId::LossPct, "%"),
        );
        if d.off_target {
            line.push_str(" OFF-TARGET");
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    #[test]
    fn sim_lines_then_one_per_dummy() {
        let mut lines = plain_lines(&sample_run_snapshot());
        assert_eq!(lines.len(), 5);
        assert!(
            lines[0].starts_with("sim state=running t=12.450s rtf1s=0.970"),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines.remove(1),
            "sim stepping 19.4 steps/s · RTF 0.970 (target 1, error -3.0 %)"
        );
        assert_eq!(
            lines[1],
            "Dummy0 #0 active msgs=250 rate=20.0Hz rtf1s=0.998 rtf10s=0.995 lat_p50=182us lat_p99=546us jitter=21.5us loss=0.000%"
        );
        assert!(lines[2].ends_with(" OFF-TARGET"));
        assert!(
            lines[3].contains("lat_p50=- ") && lines[3].ends_with("loss=-"),
            "{}",
            lines[3]
        );
    }
}
