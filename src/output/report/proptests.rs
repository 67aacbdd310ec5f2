//! Property tests of the report's time series against naive store-everything references.

use proptest::prelude::*;

use super::timeline::{empty_window_gap_ns, Decimator, WindowRtf, WindowValue};
use crate::metrics::{RtfTracker, WallSource};

const MS: i64 = 1_000_000;
/// Run start of the synthetic timelines: a whole second after the epoch, so a reordered first
/// sample can precede the origin without going before the epoch (the tracker clamps sender
/// clocks into 0..2⁶² ns: `metrics/rtf.rs`, `clamp_wall`).
const ORIGIN: i64 = 1000 * MS;

/// Samples as (wall ns, sim s): increments of wall (some reordered back), of sim.
fn timeline() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec(
        (
            0i64..400,
            0u32..6,
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.03),
        ),
        2..300,
    )
    .prop_map(|steps| {
        let (mut wall, mut sim) = (ORIGIN + 5 * MS, 0.0);
        steps
            .into_iter()
            .map(|(dt_ms, dsim, back, stall)| {
                let dt = if stall { 1500 * MS } else { dt_ms * MS / 4 };
                wall += dt;
                sim += f64::from(dsim) * 0.025;
                // A reordered datagram: older by the sender's clock than the newest.
                if back {
                    (wall - 30 * MS, sim)
                } else {
                    (wall, sim)
                }
            })
            .collect()
    })
}

/// The definition, computed from all samples at once (window k: (k−1)·W .. k·W after
/// [`ORIGIN`]).
fn naive(w: i64, samples: &[(i64, f64)]) -> Vec<(i64, f64)> {
    // Samples older than the newest so far are ignored.
    let mut kept: Vec<(i64, f64)> = Vec::new();
    for s in samples.iter().map(|&(t, sim)| (t - ORIGIN, sim)) {
        if kept.last().is_none_or(|l| s.0 >= l.0) {
            kept.push(s);
        }
    }
    let l = |b: i64| kept.iter().rposition(|s| s.0 <= b);
    let rtf = |a: (i64, f64), b: (i64, f64)| (b.1 - a.1) * 1e9 / (b.0 - a.0) as f64;
    let (first, last) = (kept[0].0, kept[kept.len() - 1].0);
    let mut out = Vec::new();
    let k0 = first.div_euclid(w);
    for k in k0..=(last / w + 1) {
        let (lo, hi) = ((k - 1) * w, k * w);
        if lo < first || hi >= last {
            continue; // not preceded by a sample, or not complete
        }
        let (Some(a), Some(b)) = (l(lo), l(hi)) else {
            continue;
        };
        if a != b {
            out.push((k, rtf(kept[a], kept[b])));
        } else if a + 1 < kept.len() {
            // An empty window inside the gap from a to a⁺: scored if the typical gap
            // before it (the gaps up to a) is under min(W, 0.5 s).
            if ewma_upto(&kept, a).is_some_and(|t| t < (w.min(500 * MS)) as f64) {
                out.push((k, rtf(kept[a], kept[a + 1])));
            }
        }
    }
    out
}

/// EWMA (1/8) of the gaps between kept samples 0..=a.
fn ewma_upto(kept: &[(i64, f64)], a: usize) -> Option<f64> {
    let mut g: Option<f64> = None;
    for i in 1..=a {
        let gap = (kept[i].0 - kept[i - 1].0) as f64;
        g = Some(g.map_or(gap, |g| g + (gap - g) / 8.0));
    }
    g
}

#[test]
fn the_empty_window_threshold_is_the_worst_1s_rule_at_one_second() {
    assert_eq!(empty_window_gap_ns(1000 * MS), 500e6);
    assert_eq!(empty_window_gap_ns(100 * MS), 100e6);
}

fn streamed(w: i64, samples: &[(i64, f64)]) -> Vec<WindowValue> {
    let mut r = WindowRtf::new(w, ORIGIN);
    let mut out = Vec::new();
    for &(t, sim) in samples {
        r.push(t, sim, &mut |v| out.push(v));
    }
    out
}

proptest! {
    #[test]
    fn window_rtf_matches_the_naive_definition(samples in timeline(), w_ms in prop::sample::select(vec![100i64, 1000])) {
        let w = w_ms * MS;
        let got: Vec<(i64, f64)> = streamed(w, &samples).iter().map(|v| (v.k, v.rtf)).collect();
        let want = naive(w, &samples);
        prop_assert_eq!(got.len(), want.len(), "got {:?}\nwant {:?}", got, want);
        for (g, n) in got.iter().zip(&want) {
            prop_assert_eq!(g.0, n.0);
            prop_assert!((g.1 - n.1).abs() <= 1e-9 * n.1.abs().max(1.0), "{:?} vs {:?}", g, n);
        }
    }

    #[test]
    fn worst_one_second_window_is_the_trackers_worst_1s(samples in timeline()) {
        let mut tracker = RtfTracker::with_origin(WallSource::SenderWall, ORIGIN);
        for &(t, sim) in &samples {
            tracker.push(t, sim);
        }
        let worst = streamed(1000 * MS, &samples)
            .iter()
            .map(|v| v.rtf)
            .reduce(f64::min);
        let theirs = tracker.stats(samples.iter().map(|s| s.0).max().unwrap()).worst_1s;
        match (worst, theirs) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b),
            (a, b) => prop_assert_eq!(a, b),
        }
    }

    #[test]
    fn decimation_keeps_extremes_and_never_bridges_a_gap(
        ys in prop::collection::vec(-1000.0f64..1000.0, 1..3000),
        gap_every in 5usize..500,
        buckets in 2usize..60,
    ) {
        let mut d = Decimator::new(0.5, buckets);
        let mut gaps = Vec::new();
        let mut x = 0.0;
        let mut input = Vec::new();
        for (i, &y) in ys.iter().enumerate() {
            let step = if i % gap_every == gap_every - 1 { 7.0 } else { 0.1 };
            if step > 1.0 && !input.is_empty() {
                gaps.push((x, x + step));
                d.gap(x, x + step);
            }
            x += step;
            d.push((x, y));
            input.push((x, y));
        }
        let out = d.points();
        prop_assert!(out.len() <= 2 * buckets);
        prop_assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "x order");
        // Every input point's bucket keeps a point as low and one as high as it.
        let bucket = |x: f64| (x / d.width()) as usize;
        for p in &input {
            let same: Vec<&(f64, f64)> = out.iter().filter(|o| bucket(o.0) == bucket(p.0)).collect();
            prop_assert!(same.iter().any(|o| o.1 <= p.1) && same.iter().any(|o| o.1 >= p.1));
        }
        // No line crosses a gap.
        for seg in d.segments() {
            for pair in seg.windows(2) {
                for g in &gaps {
                    prop_assert!(!(pair[0].0 <= g.0 && pair[1].0 >= g.1), "{:?} bridges {:?}", pair, g);
                }
            }
        }
        if gaps.is_empty() {
            prop_assert_eq!(d.segments().len(), 1);
        }
    }
}
