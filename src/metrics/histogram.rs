//! Distributions in microseconds: HdrHistogram's buckets (3 significant digits) kept sparse,
//! with exact count/sum/min/max beside them.
//!
//! Used for one-way latency, the script round trip and the remote API round trip.
//! Definitions: `docs/METRICS.md` "Percentiles".
//!
//! Why not the `hdrhistogram` crate itself: its counts are one dense array, 2,048 counters
//! (16 KiB) before the first value above 2 ms, and a bridge at 10,000 dummies keeps one
//! distribution or two per dummy (docs/PERFORMANCE.md, memory goal ≤ 32 KiB per dummy).
//! Latencies cluster in a few dozen to a few hundred of those buckets, so this keeps only
//! the buckets in use, sorted. The bucketing is HdrHistogram's exactly (2,048 sub-buckets,
//! unit 1 µs: every value below 2,048 µs exact, above it ≤ 1/1,024 relative error), and so
//! are the quantiles: a property test compares both on random data, with `hdrhistogram` as
//! the reference.

use super::LatencyStats;

/// Significant decimal digits kept (relative error ≤ 0.1 %).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Values are clamped to this many µs (about 71 minutes), so one absurd value cannot make a
/// bucket key overflow.
pub const MAX_RECORDED_US: u64 = 1 << 32;

/// log2 of the sub-buckets per bucket: 2^11 = 2,048 ≥ 2 × 10^3 (HdrHistogram's rule for
/// 3 significant digits).
const SUB_BITS: u32 = 11;
const SUB_MASK: u64 = (1 << SUB_BITS) - 1;
/// 64 − SUB_BITS: `bucket(v) = BASE − leading_zeros(v | SUB_MASK)`.
const BASE: u32 = 64 - SUB_BITS;

/// The bucket of `v`: `(bucket << SUB_BITS) | sub_bucket`, increasing with `v`.
fn key(v: u64) -> u32 {
    let bucket = BASE - (v | SUB_MASK).leading_zeros();
    (bucket << SUB_BITS) | (v >> bucket) as u32
}

/// Smallest value of bucket `key`.
fn lowest_equivalent(key: u32) -> u64 {
    let (bucket, sub) = (key >> SUB_BITS, u64::from(key) & SUB_MASK);
    sub << bucket
}

/// Largest value of bucket `key`.
fn highest_equivalent(key: u32) -> u64 {
    lowest_equivalent(key) + (1u64 << (key >> SUB_BITS)) - 1
}

/// Counts of the buckets in use, sorted by key.
#[derive(Debug, Clone, Default, PartialEq)]
struct Buckets {
    keys: Vec<u32>,
    counts: Vec<u64>,
}

impl Buckets {
    fn add(&mut self, key: u32, n: u64) {
        match self.keys.binary_search(&key) {
            Ok(i) => self.counts[i] += n,
            Err(i) => {
                self.keys.insert(i, key);
                self.counts.insert(i, n);
            }
        }
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.counts.clear();
    }

    /// HdrHistogram's `value_at_quantile`: the value of the bucket holding rank
    /// `max(1, ceil(q · total))`, its highest equivalent value (lowest for q = 0).
    fn value_at_quantile(&self, q: f64, total: u64) -> u64 {
        let q = q.min(1.0);
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&key, &count) in self.keys.iter().zip(&self.counts) {
            seen += count;
            if seen >= rank {
                return if q == 0.0 {
                    lowest_equivalent(key)
                } else {
                    highest_equivalent(key)
                };
            }
        }
        self.keys.last().map_or(0, |&k| highest_equivalent(k))
    }
}

/// A distribution of non-negative durations in µs.
///
/// An unused distribution (e.g. the round trip of a dummy without ECHO) holds no buckets.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    buckets: Buckets,
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
        // Rounded to whole µs: the buckets' unit. Exact value kept in sum/min/max.
        let v = (us.round() as u64).min(MAX_RECORDED_US);
        self.buckets.add(key(v), 1);
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

    /// Hints the CPU to load the bucket arrays (their middle, where a binary search starts).
    pub fn prefetch(&self) {
        let b = &self.buckets;
        if let (Some(k), Some(c)) = (
            b.keys.get(b.keys.len() / 2),
            b.counts.get(b.counts.len() / 2),
        ) {
            super::table::prefetch_lines(k);
            super::table::prefetch_lines(c);
        }
    }

    /// Buckets in use (memory is about 12 bytes each).
    pub fn buckets_in_use(&self) -> usize {
        self.buckets.keys.len()
    }

    /// Count, exact min/mean/max, and the fixed percentiles (p50, p90, p99, p99.9);
    /// `None` when nothing was recorded.
    pub fn stats(&self) -> Option<LatencyStats> {
        if self.count == 0 {
            return None;
        }
        // A bucket reports its highest equivalent value (≤ 0.1 % above the true value);
        // never report a percentile above the exact maximum.
        // The quantile is nudged down by one part in 10¹²: the rank is ceil(q·n), and
        // 0.999 · 1000 rounds to 999.0000000000001 in binary floating point, which would pick
        // the 1000th value instead of the 999th (nearest rank).
        let at = |pct: f64| {
            let q = pct / 100.0 * (1.0 - 1e-12);
            (self.buckets.value_at_quantile(q, self.count) as f64).min(self.max_us)
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
        if other.count == 0 {
            return;
        }
        for (&key, &count) in other.buckets.keys.iter().zip(&other.buckets.counts) {
            self.buckets.add(key, count);
        }
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
        self.buckets.clear();
        self.count = 0;
        self.sum_us = 0.0;
        self.min_us = 0.0;
        self.max_us = 0.0;
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

    #[test]
    fn bucket_edges_match_hdrhistogram() {
        let reference = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for v in [
            0u64,
            1,
            2047,
            2048,
            2049,
            4095,
            4096,
            123_456,
            MAX_RECORDED_US,
        ] {
            let k = key(v);
            assert_eq!(lowest_equivalent(k), reference.lowest_equivalent(v), "{v}");
            assert_eq!(
                highest_equivalent(k),
                reference.highest_equivalent(v),
                "{v}"
            );
            assert!(lowest_equivalent(k) <= v && v <= highest_equivalent(k));
        }
        assert!(key(2047) < key(2048) && key(4095) < key(4096));
    }

    #[test]
    fn only_buckets_in_use_are_kept() {
        let mut h = LatencyHistogram::new();
        for k in 0..100_000u32 {
            h.record(f64::from(5 + k % 40));
        }
        assert_eq!(h.buckets_in_use(), 40);
    }

    proptest::proptest! {
        /// The same quantiles as the `hdrhistogram` crate with 3 significant digits, on
        /// values spread over six decades.
        #[test]
        fn quantiles_equal_hdrhistogram(
            values in proptest::collection::vec(0u64..5_000_000, 1..400),
            qs in proptest::collection::vec(0.0f64..=1.0, 1..8),
        ) {
            let mut ours = Buckets::default();
            let mut reference = hdrhistogram::Histogram::<u64>::new(3).unwrap();
            for &v in &values {
                ours.add(key(v), 1);
                reference.record(v).unwrap();
            }
            for q in qs {
                proptest::prop_assert_eq!(
                    ours.value_at_quantile(q, values.len() as u64),
                    reference.value_at_quantile(q),
                    "q = {}", q
                );
            }
        }
    }
}
