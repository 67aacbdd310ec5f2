//! Property tests: every incremental, bounded-memory metric against a naive reference that
//! stores everything and computes the definition from `docs/METRICS.md` directly.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
const T0: i64 = 1_763_700_000 * S;

// ---------------------------------------------------------------------------------------------
// Sequence accounting

/// Naive loss/duplicate/reorder counts over extended (unwrapped) seqs.
fn naive_loss(arrivals: &[(i64, u32)]) -> LossStats {
    let mut seen = BTreeSet::new();
    let (mut dups, mut reordered, mut max) = (0, 0, i64::MIN);
    for &(e, _) in arrivals {
        if !seen.insert(e) {
            dups += 1;
        } else if e < max {
            reordered += 1;
        }
        max = max.max(e);
    }
    let lo = *seen.first().unwrap();
    let hi = *seen.last().unwrap();
    let step = |x: i64| arrivals.iter().find(|a| a.0 == x).unwrap().1;
    let expected = (hi - lo + 1) as u64;
    let received = seen.len() as u64;
    let lost = expected - received;
    let missed = (i64::from(step(hi)) - i64::from(step(lo)) - (hi - lo)).max(0) as u64;
    LossStats {
        expected,
        received,
        lost,
        loss_pct: 100.0 * lost as f64 / expected as f64,
        duplicates: dups,
        reordered,
        missed_steps: missed,
    }
}

/// A stream of seqs: 0..n with some dropped, some duplicated, locally shuffled (displacement
/// well inside the duplicate window), offset by `base` so that some streams wrap past u32::MAX.
/// Each seq carries step = seq + number of skipped passes before it.
fn seq_stream() -> impl Strategy<Value = (u32, Vec<(i64, u32)>)> {
    let base = prop_oneof![any::<u32>(), (u32::MAX - 300)..=u32::MAX];
    (base, 1usize..400, any::<u64>()).prop_map(|(base, n, seed)| {
        let mut rng = Lcg(seed);
        let mut skips = 0u32;
        let mut out: Vec<(i64, u32)> = Vec::new();
        for i in 0..n as i64 {
            if rng.below(10) == 0 {
                skips += rng.below(3) as u32; // passes without a STAMP
            }
            if i > 0 && rng.below(12) == 0 {
                continue; // lost (the first is always kept so the start is known)
            }
            out.push((i, i as u32 + skips));
            if rng.below(15) == 0 {
                out.push((i, i as u32 + skips)); // duplicated
            }
        }
        for _ in 0..out.len() / 5 {
            let a = rng.below(out.len() as u64) as usize;
            let b = (a + rng.below(8) as usize).min(out.len() - 1);
            out.swap(a, b); // reordered by at most 8 places
        }
        (base, out)
    })
}

/// Small deterministic generator for the stream shapes above (proptest shrinks the seed).
#[derive(Debug)]
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

proptest! {
    #[test]
    fn seq_tracker_matches_naive((base, arrivals) in seq_stream()) {
        let wire = |e: i64| base.wrapping_add(e as u32);
        let mut t = SeqTracker::new(wire(arrivals[0].0), Some(base.wrapping_add(arrivals[0].1)));
        for &(e, step) in &arrivals[1..] {
            t.push(wire(e), Some(base.wrapping_add(step)));
        }
        // Steps are offset by `base` too, so step spans are unchanged.
        let want = naive_loss(&arrivals);
        prop_assert_eq!(t.stats(), want);
    }
}

// ---------------------------------------------------------------------------------------------
// Inter-arrival spread and RFC 3550 jitter

proptest! {
    #[test]
    fn spread_matches_two_pass_reference(xs in prop::collection::vec(0.0f64..2e8, 1..300)) {
        let mut s = Spread::new();
        for &x in &xs {
            s.push(x);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let got = s.ns_as_ms().unwrap();
        let tol = 1e-9 * (1.0 + mean / 1e6);
        prop_assert_eq!(got.count, xs.len() as u64);
        prop_assert!((got.mean_ms - mean / 1e6).abs() <= tol);
        prop_assert!((got.std_dev_ms - var.sqrt() / 1e6).abs() <= tol.max(1e-6 * var.sqrt() / 1e6));
        prop_assert_eq!((got.min_ms, got.max_ms), (min / 1e6, max / 1e6));
    }

    #[test]
    fn jitter_matches_rfc3550_a8(transits in prop::collection::vec(-1e7f64..1e7, 0..300)) {
        let mut j = Rfc3550Jitter::new();
        for &t in &transits {
            j.push(t);
        }
        // RFC 3550 A.8, literally: d = transit − last transit; jitter += (|d| − jitter) / 16.
        let mut want = 0.0;
        for w in transits.windows(2) {
            let d = (w[1] - w[0]).abs();
            want += (d - want) / 16.0;
        }
        match j.value() {
            None => prop_assert!(transits.len() < 2),
            Some(v) => prop_assert!((v - want).abs() <= 1e-9 * (1.0 + want)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Latency percentiles

proptest! {
    #[test]
    fn hdr_percentiles_within_precision(values in prop::collection::vec(0u64..5_000_000, 1..2000)) {
        let mut h = LatencyHistogram::new();
        for &v in &values {
            h.record(v as f64);
        }
        check_histogram(&h, &values)?;
        // Under the bucket budget nothing is coarsened: 3 significant digits (1/1,024).
        let mut unbudgeted = LatencyHistogram::with_budget(1 << 16);
        for &v in &values {
            unbudgeted.record(v as f64);
        }
        if unbudgeted.buckets_in_use() <= MAX_BUCKETS {
            prop_assert_eq!(h.relative_error(), 1.0 / 1024.0);
        }
    }

    /// With a small bucket budget (so the histogram coarsens), every quantile stays within
    /// the histogram's current relative error of the exact nearest-rank value, and count, min,
    /// mean and max stay exact.
    #[test]
    fn budgeted_percentiles_within_current_precision(
        values in prop::collection::vec(
            prop_oneof![0u64..2_048, 0u64..200_000, 0u64..=MAX_RECORDED_US],
            1..2000,
        ),
        budget in 34usize..400,
    ) {
        let mut h = LatencyHistogram::with_budget(budget);
        for &v in &values {
            h.record(v as f64);
        }
        prop_assert!(h.buckets_in_use() <= budget);
        check_histogram(&h, &values)?;
    }
}

/// Count, min, mean and max of `h` are exact for `values`, and each percentile is the top of
/// the bucket holding the exact nearest-rank value: at most `h.relative_error()` above it.
fn check_histogram(h: &LatencyHistogram, values: &[u64]) -> Result<(), TestCaseError> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let got = h.stats().unwrap();
    prop_assert_eq!(got.count, values.len() as u64);
    prop_assert_eq!(got.min_us, sorted[0] as f64);
    prop_assert_eq!(got.max_us, *sorted.last().unwrap() as f64);
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
    prop_assert!((got.mean_us - mean).abs() <= 1e-9 * (1.0 + mean));
    prop_assert_eq!(got.relative_error, h.relative_error());
    if let Some(off) = histogram::reference::percentile_off(&got, &sorted) {
        return Err(TestCaseError::fail(off));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RTF windows and rates

/// Store-everything reference for the RTF definitions of METRICS.md.
struct NaiveRtf {
    /// (wall ns, sim s) in wall order.
    pts: Vec<(i64, f64)>,
    origin: i64,
}

impl NaiveRtf {
    /// Index of L(t): the last sample with wall ≤ t.
    fn last_at_or_before(&self, t: i64) -> Option<usize> {
        self.pts.iter().rposition(|p| p.0 <= t)
    }

    fn ratio(&self, a: usize, b: usize) -> f64 {
        let (pa, pb) = (self.pts[a], self.pts[b]);
        (pb.1 - pa.1) * 1e9 / (pb.0 - pa.0) as f64
    }

    fn first(&self) -> (i64, f64) {
        self.pts[0]
    }

    fn last(&self) -> (i64, f64) {
        *self.pts.last().unwrap()
    }

    fn window(&self, w: i64, now: i64) -> Option<f64> {
        let e = self.pts.len() - 1;
        if now - self.pts[e].0 >= w {
            return Some(0.0);
        }
        let a = self.last_at_or_before(self.pts[e].0 - w)?;
        Some(self.ratio(a, e))
    }

    fn rate_1s(&self, now: i64) -> Option<f64> {
        let e = self.pts.len() - 1;
        if now - self.pts[e].0 >= S {
            return Some(0.0);
        }
        let a = self.last_at_or_before(self.pts[e].0 - S)?;
        Some((e - a) as f64 * 1e9 / (self.pts[e].0 - self.pts[a].0) as f64)
    }

    fn total(&self) -> Option<f64> {
        let ((w0, s0), (w1, s1)) = (self.first(), self.last());
        (self.pts.len() >= 2 && w1 - w0 >= S).then(|| (s1 - s0) * 1e9 / (w1 - w0) as f64)
    }

    /// EWMA (1/8) of the wall gaps between samples 0..=i, as METRICS.md defines the
    /// sender's typical gap; `None` before the second sample.
    fn typical_gap(&self, i: usize) -> Option<f64> {
        let mut g: Option<f64> = None;
        for j in 1..=i {
            let x = (self.pts[j].0 - self.pts[j - 1].0) as f64;
            g = Some(g.map_or(x, |g| g + (x - g) / 8.0));
        }
        g
    }

    /// Every aligned window (b_{k−1}, b_k] with first ≤ b_{k−1}, b_k < last: with a sample in
    /// it, the ratio between L(b_{k−1}) and L(b_k); without one (a gap from sample a to a+1),
    /// the ratio across the gap if the typical gap before it is under half a window.
    fn worst(&self) -> Option<(f64, i64)> {
        let (first, last) = (self.first().0, self.last().0);
        let mut k = (first - self.origin).div_euclid(S) + 1;
        if self.origin + (k - 1) * S < first {
            k += 1;
        }
        let mut worst: Option<(f64, i64)> = None;
        while self.origin + k * S < last {
            let a = self.last_at_or_before(self.origin + (k - 1) * S).unwrap();
            let b = self.last_at_or_before(self.origin + k * S).unwrap();
            let rtf = if a != b {
                Some(self.ratio(a, b))
            } else {
                let fast = self.typical_gap(a).is_some_and(|g| g < S as f64 / 2.0);
                (fast && self.pts[a + 1].0 > self.pts[a].0).then(|| self.ratio(a, a + 1))
            };
            if let Some(rtf) = rtf {
                if worst.is_none_or(|w| rtf < w.0) {
                    worst = Some((rtf, k));
                }
            }
            k += 1;
        }
        worst
    }
}

/// A sender timeline: intervals of 10–300 ms (sometimes a stall up to 4 s), simulation
/// advancing 0–0.2 s per sample; first sample up to 1 s after the origin.
fn timeline() -> impl Strategy<Value = (i64, Vec<(i64, f64)>, i64)> {
    let step = prop_oneof![
        9 => (10 * MS..300 * MS, 0.0f64..0.2),
        1 => (300 * MS..4 * S, 0.0f64..0.2),
    ];
    (0..S, prop::collection::vec(step, 1..400), 0..3 * S).prop_map(|(start, steps, after)| {
        let mut wall = T0 + start;
        let mut sim = 3.0;
        let mut pts = Vec::with_capacity(steps.len());
        for (dw, ds) in steps {
            pts.push((wall, sim));
            wall += dw;
            sim += ds;
        }
        let now = pts.last().unwrap().0 + after;
        (T0, pts, now)
    })
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
        _ => false,
    }
}

proptest! {
    #[test]
    fn rtf_tracker_matches_naive((origin, pts, now) in timeline()) {
        let mut t = RtfTracker::with_origin(WallSource::SenderWall, origin);
        for &(w, s) in &pts {
            t.push(w, s);
        }
        let naive = NaiveRtf { pts: pts.clone(), origin };
        let got = t.stats(now);
        prop_assert!(close(got.last_1s, naive.window(S, now)), "1 s {:?} vs {:?}", got.last_1s, naive.window(S, now));
        prop_assert!(close(got.last_10s, naive.window(10 * S, now)), "10 s {:?} vs {:?}", got.last_10s, naive.window(10 * S, now));
        prop_assert!(close(got.total, naive.total()));
        let worst = naive.worst();
        prop_assert!(close(got.worst_1s, worst.map(|w| w.0)), "worst {:?} vs {:?}", got.worst_1s, worst);
        prop_assert!(close(t.rate_1s_hz(now), naive.rate_1s(now)));
        let n = pts.len() as f64;
        let ((w0, s0), (w1, s1)) = (naive.first(), naive.last());
        let span_ok = pts.len() >= 2 && w1 - w0 >= S;
        let want_hz = span_ok.then(|| (n - 1.0) * 1e9 / (w1 - w0) as f64);
        prop_assert!(close(t.session_wall_hz(), want_hz));
        let want_sim_hz = (span_ok && s1 > s0).then(|| (n - 1.0) / (s1 - s0));
        prop_assert!(close(t.session_sim_hz(), want_sim_hz));
    }

    /// Bursty delivery at RTF 1 (CoppeliaSim grouping n passes), any burst period: the
    /// windows read 1 within 2 % unless a window start falls inside a burst.
    #[test]
    fn bursts_at_rtf_one_read_one(per_burst in 1u32..8, gap_ms in 0i64..3, extra in 0u32..40, phase in 0..S) {
        let dt = 0.05;
        let period = i64::from(per_burst) * 50 * MS;
        let bursts = (11 * S / period) as u32 + 2 + extra;
        let mut t = RtfTracker::new(WallSource::SenderWall);
        let mut last = 0;
        for b in 0..bursts {
            for j in 0..per_burst {
                last = T0 + i64::from(b) * period + i64::from(j) * gap_ms * MS;
                t.push(last, f64::from(b * per_burst + j) * dt);
            }
        }
        // Where the window starts fall relative to the bursts (ns after the latest burst start).
        let burst_len = i64::from(per_burst - 1) * gap_ms * MS;
        let in_burst = |w: i64| (last - w - T0).rem_euclid(period) <= burst_len && per_burst > 1;
        let s = t.stats(last + phase);
        if phase < S && !in_burst(S) {
            prop_assert!((s.last_1s.unwrap() - 1.0).abs() <= 0.02, "{:?}", s);
        }
        if !in_burst(10 * S) {
            prop_assert!((s.last_10s.unwrap() - 1.0).abs() <= 0.02, "{:?}", s);
        }
        prop_assert!((s.total.unwrap() - 1.0).abs() <= 0.04, "{:?}", s);
    }
}

// ---------------------------------------------------------------------------------------------
// The same accounting through DummyMetrics: late and duplicated datagrams (older sender
// stamps) must never be mistaken for a restart, including across the u32 wrap.

proptest! {
    #[test]
    fn dummy_loss_matches_naive_without_false_restarts((base, arrivals) in seq_stream()) {
        let cfg = MetricsConfig { run_start_ns: T0, ..MetricsConfig::default() };
        let info = DummyInfo {
            id: 1,
            name: "Dummy1".to_owned(),
            transport: Transport::Udp,
            dt_s: Some(0.05),
            source: ([127, 0, 0, 1], 1).into(),
        };
        let mut m = DummyMetrics::new(info, &cfg);
        for (i, &(e, step)) in arrivals.iter().enumerate() {
            let sent = T0 + e * 50 * MS;
            let recv = T0 + i as i64 * 50 * MS + 400 * MS;
            let s = Sample {
                seq: Some(base.wrapping_add(e as u32)),
                step: Some(base.wrapping_add(step)),
                sim_time_s: f64::from(step) * 0.05,
                sent_unix_ns: Some(sent),
                recv_unix_ns: recv,
                read_unix_ns: recv,
                recv_clock: RecvClock::User,
                rtt_us: None,
            };
            let out = m.record(&s, &cfg);
            prop_assert_eq!(out.new_session, None);
        }
        let snap = m.snapshot(T0, &cfg);
        prop_assert_eq!(snap.messages, arrivals.len() as u64);
        prop_assert_eq!(snap.loss, Some(naive_loss(&arrivals)));
    }
}
