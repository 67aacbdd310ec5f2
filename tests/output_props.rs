//! Property tests of the exporters' invariants over arbitrary inputs.

use coppelia_bridge::metrics::{RecvClock, Transport};
use coppelia_bridge::output::fixtures::sample_run_snapshot;
use coppelia_bridge::output::report::svg::{cdf, decimate};
use coppelia_bridge::output::samples_csv::{read_sample_rows, SampleCsv};
use coppelia_bridge::output::{render_prometheus, RecordSink, SampleRow};
use proptest::prelude::*;

fn finite() -> impl Strategy<Value = f64> {
    -1e12f64..1e12
}

prop_compose! {
    fn sample_row()(
        dummy in any::<u32>(), session in any::<u32>(), seq in any::<Option<u32>>(),
        step in any::<Option<u32>>(), sim_time_s in finite(), sent in proptest::option::of(finite()),
        recv in finite(), read in finite(), latency in proptest::option::of(finite()),
        rtt in any::<Option<u32>>(), kernel in any::<bool>(), transport in 0..3u8,
    ) -> SampleRow {
        SampleRow {
            dummy, session, seq, step, sim_time_s, sent_unix_s: sent, recv_unix_s: recv,
            read_unix_s: read, latency_us: latency, rtt_us: rtt,
            recv_clock: if kernel { RecvClock::Kernel } else { RecvClock::User },
            transport: [Transport::Udp, Transport::Tcp, Transport::LegacyUdp][transport as usize],
        }
    }
}

proptest! {
    /// Times are written as whole nanoseconds (seconds as `1764470400.123456789`), so they
    /// come back as the float nearest to their nanosecond: within one unit in the last place
    /// of what was written; floats beyond nanoseconds' range come back exactly.
    #[test]
    fn sample_csv_round_trips_to_the_nanosecond(rows in proptest::collection::vec(sample_row(), 0..40)) {
        let mut sink = SampleCsv::new(Vec::new());
        for r in &rows {
            sink.write_record(r).unwrap();
        }
        let bytes = sink.into_inner().unwrap();
        let back = read_sample_rows(&bytes[..]).unwrap();
        prop_assert_eq!(back.len(), rows.len());
        // Rounding to the nanosecond moves a value by ≤ 0.5 ns, the float arithmetic on the
        // way by a few ulps: 1 ns (in the column's unit) plus 4 ulps covers both.
        let near = |a: f64, b: f64, unit_ns: f64| {
            a == b || (a - b).abs() <= 1.0 / unit_ns + 4.0 * a.abs().max(b.abs()) * f64::EPSILON
        };
        let near_opt = |a: Option<f64>, b: Option<f64>, unit_ns: f64| match (a, b) {
            (Some(a), Some(b)) => near(a, b, unit_ns),
            (a, b) => a.is_none() && b.is_none(),
        };
        for (b, r) in back.iter().zip(&rows) {
            prop_assert!(near(b.recv_unix_s, r.recv_unix_s, 1e9), "{:?} {:?}", b, r);
            prop_assert!(near(b.read_unix_s, r.read_unix_s, 1e9), "{:?} {:?}", b, r);
            prop_assert!(near_opt(b.sent_unix_s, r.sent_unix_s, 1e9), "{:?} {:?}", b, r);
            prop_assert!(near_opt(b.latency_us, r.latency_us, 1e3), "{:?} {:?}", b, r);
            prop_assert_eq!(b.sim_time_s, r.sim_time_s);
            prop_assert_eq!(
                (b.dummy, b.session, b.seq, b.step, b.rtt_us, b.recv_clock, b.transport),
                (r.dummy, r.session, r.seq, r.step, r.rtt_us, r.recv_clock, r.transport)
            );
        }
    }

    #[test]
    fn decimation_is_bounded_ordered_and_keeps_the_extremes(
        ys in proptest::collection::vec(-1e9f64..1e9, 1..5000),
        max_points in 2usize..600,
    ) {
        let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
        let out = decimate(&pts, max_points);
        prop_assert!(out.len() <= max_points.max(2));
        prop_assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        let max = ys.iter().copied().fold(f64::MIN, f64::max);
        let min = ys.iter().copied().fold(f64::MAX, f64::min);
        prop_assert!(out.iter().any(|p| p.1 == max));
        prop_assert!(out.iter().any(|p| p.1 == min));
    }

    #[test]
    fn cdf_is_bounded_monotone_and_complete(
        values in proptest::collection::vec(0f64..1e7, 1..3000),
        max_points in 2usize..500,
    ) {
        let c = cdf(&values, max_points);
        prop_assert!(c.len() <= max_points);
        prop_assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        prop_assert_eq!(c.last().unwrap().1, 1.0);
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        prop_assert_eq!(c.last().unwrap().0, max);
    }

    // CoppeliaSim aliases are `[A-Za-z0-9_]` only; instance names are free text. `}` and
    // `,` are left out: valid in quoted label values (text format 0.0.4), but the
    // regex-based prometheus-parse 0.2 splits on them.
    #[test]
    fn prometheus_output_parses_whatever_the_names(
        name in "[A-Za-z0-9_ .:/\\\\\"-]{0,20}",
        instance in "[A-Za-z0-9_ .:/\\\\\"-]{0,12}",
    ) {
        let mut snap = sample_run_snapshot();
        snap.dummies[0].name = name;
        let text = render_prometheus(&snap, &coppelia_bridge::output::prometheus::ExportLabels::new(instance, "scene"));
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let messages = scrape.samples.iter().filter(|s| s.metric == "coppelia_bridge_dummy_messages_total").count();
        prop_assert_eq!(messages, snap.dummies.len());
        let first = scrape.samples.iter().find(|s| {
            s.metric == "coppelia_bridge_dummy_messages_total" && s.labels.get("dummy_id") == Some("0")
        });
        prop_assert!(matches!(first.map(|s| &s.value), Some(prometheus_parse::Value::Counter(v)) if *v == 250.0));
    }
}
