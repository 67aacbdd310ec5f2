use super::*;
use crate::output::fixtures::sample_run_snapshot;

fn spec(dummies: &[u32], dt_s: &[f64], transports: &[Transport]) -> SweepSpec {
    SweepSpec {
        dummies: dummies.to_vec(),
        dt_s: dt_s.to_vec(),
        transports: transports.to_vec(),
    }
}

#[test]
fn expansion_is_the_cartesian_product_dummies_innermost() {
    let combos = expand(&spec(
        &[1, 10, 100],
        &[0.05, 0.01],
        &[Transport::Udp, Transport::Tcp],
    ))
    .unwrap();
    assert_eq!(combos.len(), 12);
    let first: Vec<_> = combos[..4]
        .iter()
        .map(|c| (c.transport, c.dt_s, c.dummies))
        .collect();
    assert_eq!(
        first,
        [
            (Transport::Udp, 0.05, 1),
            (Transport::Udp, 0.05, 10),
            (Transport::Udp, 0.05, 100),
            (Transport::Udp, 0.01, 1)
        ]
    );
    assert_eq!(combos[11].transport, Transport::Tcp);
    let indexes: Vec<_> = combos.iter().map(|c| c.index).collect();
    assert_eq!(indexes, (1..=12).collect::<Vec<_>>());
    assert_eq!(combos[2].dir_name(), "003-udp-dt0.05-d100");
}

#[test]
fn duplicates_run_once() {
    let combos = expand(&spec(&[4, 4, 2], &[0.05, 0.05], &[Transport::Udp])).unwrap();
    let dummies: Vec<_> = combos.iter().map(|c| c.dummies).collect();
    assert_eq!(dummies, [4, 2]);
}

#[test]
fn bad_specs_name_the_flag() {
    let err = expand(&spec(&[], &[0.05], &[Transport::Udp])).unwrap_err();
    assert!(err.to_string().contains("--dummies"), "{err}");
    let err = expand(&spec(&[0], &[0.05], &[Transport::Udp])).unwrap_err();
    assert_eq!(err, SweepSpecError::Dummies(0));
    let err = expand(&spec(&[1], &[0.0], &[Transport::Udp])).unwrap_err();
    assert!(err.to_string().contains("--dt 0 s"), "{err}");
    let err = expand(&spec(&[1], &[0.05], &[])).unwrap_err();
    assert!(err.to_string().contains("--transport"), "{err}");
}

fn combo(index: usize, dummies: u32, dt_s: f64) -> Combination {
    Combination {
        index,
        dummies,
        dt_s,
        transport: Transport::Udp,
    }
}

#[test]
fn a_row_carries_the_runs_own_figures() {
    let snap = sample_run_snapshot();
    let row = row_from_run(
        combo(1, 4, 0.05),
        RunFigures {
            snapshot: &snap,
            bridge_cpu_s: Some(0.5),
        },
    );
    let messages: u64 = snap.dummies.iter().map(|d| d.messages).sum();
    let sim = snap.sim.as_ref().unwrap();
    assert_eq!(row.status, RowStatus::Ok);
    assert_eq!(row.messages, Some(messages));
    assert_eq!(row.rtf_total, sim.rtf.total);
    assert_eq!(row.rtf_worst_1s, sim.rtf.worst_1s);
    assert_eq!(row.passes_per_s, sim.rtf.total.map(|r| r / 0.05));
    let lat = snap.latency.as_ref().unwrap();
    assert_eq!(row.latency_p50_us, Some(lat.p50_us));
    assert_eq!(row.latency_p99_us, Some(lat.p99_us));
    let cpu_us = row.cpu_us_per_message.unwrap();
    assert!((cpu_us - 0.5e6 / messages as f64).abs() < 1e-9);
    // Loss over every dummy with sequence numbers, by hand.
    let (lost, expected) = snap
        .dummies
        .iter()
        .filter_map(|d| d.loss.as_ref())
        .fold((0, 0), |(l, x), s| (l + s.lost, x + s.expected));
    assert_eq!(row.loss_pct, Some(100.0 * lost as f64 / expected as f64));
}

#[test]
fn without_the_remote_api_rtf_is_the_lowest_dummys() {
    let mut snap = sample_run_snapshot();
    snap.sim = None;
    let row = row_from_run(
        combo(1, 4, 0.05),
        RunFigures {
            snapshot: &snap,
            bridge_cpu_s: None,
        },
    );
    let lowest = snap
        .dummies
        .iter()
        .filter_map(|d| d.rtf.total)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(row.rtf_total, Some(lowest));
    assert_eq!(row.cpu_us_per_message, None);
}

#[test]
fn failed_rows_keep_the_error_and_no_figures_and_stay_out_of_plots() {
    let snap = sample_run_snapshot();
    let ok = |i, n| {
        row_from_run(
            combo(i, n, 0.05),
            RunFigures {
                snapshot: &snap,
                bridge_cpu_s: Some(1.0),
            },
        )
    };
    let rows = vec![
        ok(1, 1),
        failed_row(combo(2, 10, 0.05), "cannot bind"),
        ok(3, 100),
    ];
    assert_eq!(rows[1].error.as_deref(), Some("cannot bind"));
    assert_eq!(rows[1].rtf_total, None);
    let x = XAxis::of(&rows);
    assert_eq!(x, XAxis::Dummies);
    let lines = series(&rows, x, |r| r.rtf_total);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].0, "udp dt 0.05 s");
    let xs: Vec<f64> = lines[0].1.iter().map(|p| p.0).collect();
    assert_eq!(xs, [1.0, 100.0]);
}

#[test]
fn a_dt_only_sweep_plots_against_dt() {
    let rows = vec![
        failed_row(combo(1, 8, 0.05), "x"),
        failed_row(combo(2, 8, 0.01), "x"),
    ];
    assert_eq!(XAxis::of(&rows), XAxis::Dt);
}

#[test]
fn rows_round_trip_through_json_with_snake_case_names() {
    let row = failed_row(combo(1, 2, 0.01), "boom");
    let text = serde_json::to_string(&row).unwrap();
    assert!(text.contains("\"transport\":\"udp\""), "{text}");
    assert!(text.contains("\"status\":\"failed\""), "{text}");
    let back: SweepRow = serde_json::from_str(&text).unwrap();
    assert_eq!(back, row);
}
