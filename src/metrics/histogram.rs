//! Distributions in microseconds: hdrhistogram for percentiles, exact count/sum/min/max beside it.
//!
//! Used for one-way latency, receive backlog, script round trip and the remote API round trip.
//! Definitions: `docs/METRICS.md` "Percentiles".

use hdrhistogram::Histogram;

use super::LatencyStats;

/// Significant decimal digits kept by the histogram (relative error ≤ 0.1 %).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Values are clamped to this many µs (about 71 minutes) so that one absurd value cannot grow
/// the auto-resizing histogram without bound.
pub const MAX_RECORDED_US: u64 = 1 << 32;

/// A distribution of non-negative durations in µs.
///
/// The hdrhistogram is allocated on the first value, so an unused distribution (e.g. the round
/// trip of a dummy without ECHO) costs no memory.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    hist: Option<Histogram<u64>>,
    count: u64,
    sum_us: f64,
    min_us: f64,
    max_us: f64,
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value in µs. Negative or non-finite values are refused (returns `false`):
    /// callers decide what such a value means (e.g. "clocks disagree").
    pub fn record(&mut self, us: f64) -> bool {
        if !us.is_finite() || us < 0.0 {
            return false;
        }
        let Some(hist) = self.histogram_mut() else {
            return false;
        };
        // Rounded to whole µs: the histogram's unit. Exact value kept in sum/min/max.
        // `record` grows the auto-resizing histogram (`saturating_record` would clamp to its
        // current top); the clamp to MAX_RECORDED_US keeps that growth bounded.
        let v = (us.round() as u64).min(MAX_RECORDED_US);
        if hist.record(v).is_err() {
            hist.saturating_record(v);
        }
        if self.count == 0 {
            self.min_us = us;
            self.max_us = us;
        } else {
            self.min_us = self.min_us.min(us);
            self.max_us = self.max_us.max(us);
        }
        self.count += 1;
        self.sum_us += us;
        true
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Count, exact min/mean/max, and the fixed percentiles (p50, p90, p99, p99.9);
    /// `None` when nothing was recorded.
    pub fn stats(&self) -> Option<LatencyStats> {
        let hist = self.hist.as_ref().filter(|_| self.count > 0)?;
        // hdrhistogram reports the highest value equivalent to the bucket (≤ 0.1 % above the
        // true value); never report a percentile above the exact maximum.
        // The quantile is nudged down by one part in 10¹²: hdrhistogram takes rank
        // ceil(q·n), and 0.999 · 1000 rounds to 999.0000000000001 in binary floating point,
        // which would pick the 1000th value instead of the 999th (nearest rank).
        let at = |pct: f64| {
            let q = pct / 100.0 * (1.0 - 1e-12);
            (hist.value_at_quantile(q) as f64).min(self.max_us)
        };
        Some(LatencyStats {
            count: self.count,
            min_us: self.min_us,
            mean_us: self.sum_us / self.count as f64,
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p999_us: at(99.9),
            max_us: self.max_us,
        })
    }

    /// Adds every value of `other` (e.g. to summarise all dummies together).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        let Some(theirs) = other.hist.as_ref().filter(|_| other.count > 0) else {
            return;
        };
        let Some(ours) = self.histogram_mut() else {
            return;
        };
        // Both are auto-resizing with the same precision, so adding cannot fail; if it ever
        // did, the exact figures below would still be right and only percentiles would lag.
        let _ = ours.add(theirs);
        if self.count == 0 {
            self.min_us = other.min_us;
            self.max_us = other.max_us;
        } else {
            self.min_us = self.min_us.min(other.min_us);
            self.max_us = self.max_us.max(other.max_us);
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// Forgets every value (keeps the allocation).
    pub fn reset(&mut self) {
        if let Some(h) = self.hist.as_mut() {
            h.reset();
        }
        self.count = 0;
        self.sum_us = 0.0;
        self.min_us = 0.0;
        self.max_us = 0.0;
    }

    fn histogram_mut(&mut self) -> Option<&mut Histogram<u64>> {
        if self.hist.is_none() {
            // `new` only fails for a precision outside 0..=5; 3 is valid.
            self.hist = Histogram::new(SIGNIFICANT_DIGITS).ok();
        }
        self.hist.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_stats() {
        assert_eq!(LatencyHistogram::new().stats(), None);
    }

    #[test]
    fn hand_computed_percentiles_of_1_to_1000() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000 {
            assert!(h.record(f64::from(v)));
        }
        let s = h.stats().unwrap();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.max_us, 1000.0);
        assert!((s.mean_us - 500.5).abs() < 1e-9);
        // Nearest rank: p50 = 500th value, p90 = 900th, p99 = 990th, p99.9 = 999th; all below
        // 2048 so hdrhistogram holds them exactly.
        assert_eq!(s.p50_us, 500.0);
        assert_eq!(s.p90_us, 900.0);
        assert_eq!(s.p99_us, 990.0);
        assert_eq!(s.p999_us, 999.0);
    }

    #[test]
    fn refuses_negative_and_non_finite() {
        let mut h = LatencyHistogram::new();
        assert!(!h.record(-1.0));
        assert!(!h.record(f64::NAN));
        assert!(!h.record(f64::INFINITY));
        assert_eq!(h.stats(), None);
    }

    #[test]
    fn percentile_never_exceeds_exact_max() {
        let mut h = LatencyHistogram::new();
        h.record(123_456.7);
        let s = h.stats().unwrap();
        assert_eq!(s.max_us, 123_456.7);
        assert!(s.p50_us <= s.max_us);
        assert!((s.p50_us - 123_456.7).abs() / 123_456.7 < 1e-3);
    }

    #[test]
    fn huge_values_are_clamped_not_panicking() {
        let mut h = LatencyHistogram::new();
        assert!(h.record(1e300));
        let s = h.stats().unwrap();
        assert_eq!(s.max_us, 1e300);
        assert!(s.p50_us >= MAX_RECORDED_US as f64);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for v in 0..500 {
            let x = f64::from(v) * 3.7;
            if v % 3 == 0 {
                a.record(x);
            } else {
                b.record(x);
            }
            all.record(x);
        }
        a.merge(&b);
        let (m, e) = (a.stats().unwrap(), all.stats().unwrap());
        assert_eq!(m.count, e.count);
        assert_eq!(
            (m.min_us, m.max_us, m.p50_us, m.p999_us),
            (e.min_us, e.max_us, e.p50_us, e.p999_us)
        );
        assert!((m.mean_us - e.mean_us).abs() < 1e-9);
    }

    #[test]
    fn merge_into_empty_and_reset() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        b.record(7.0);
        a.merge(&b);
        assert_eq!(a.stats().unwrap().min_us, 7.0);
        a.reset();
        assert_eq!(a.stats(), None);
        a.record(3.0);
        assert_eq!(a.stats().unwrap().max_us, 3.0);
    }
}
