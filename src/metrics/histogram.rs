//! Distributions in microseconds: HdrHistogram's buckets (3 significant digits) kept sparse,
//! with exact count/sum/min/max beside them, in a fixed bucket budget.
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
//!
//! Bucket budget: a distribution never holds more than [`MAX_BUCKETS`] buckets. When a value
//! would open a bucket beyond the budget, the histogram *coarsens*: it drops one sub-bucket
//! bit (2^(b−1) sub-buckets instead of 2^b, relative error 2^−(b−2) instead of 2^−(b−1)),
//! re-keys every bucket it holds and merges their counts, repeating until the new bucket fits.
//! HdrHistogram's layouts are aligned to powers of two, so a bucket with fewer sub-bucket bits
//! is exactly the union of buckets with more: the coarsened histogram is the one that would
//! have been recorded at the coarser precision from the start (tested). The coarsest level,
//! [`MIN_SUB_BITS`], holds every bucket from 0 to [`MAX_RECORDED_US`] within the budget
//! (asserted at compile time), so coarsening always ends there at the latest.

use super::LatencyStats;

/// Significant decimal digits kept at full precision (relative error ≤ 0.1 %), before any
/// coarsening.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Values are clamped to this many µs (about 71 minutes), so one absurd value cannot make a
/// bucket key overflow.
pub const MAX_RECORDED_US: u64 = 1 << 32;

/// log2 of the sub-buckets per bucket at full precision: 2^11 = 2,048 ≥ 2 × 10^3
/// (HdrHistogram's rule for 3 significant digits).
const SUB_BITS: u32 = 11;

/// Most buckets one distribution holds: 1,024 × 12 bytes (u32 key + u64 count) = 12 KiB of
/// heap. A dummy has a latency distribution and possibly an RTT one, so its buckets take at
/// most 24 KiB, leaving 8 KiB of the 32 KiB-per-dummy goal (docs/PERFORMANCE.md) for the rest
/// of its state (the RTF window, about 200 samples at 20 Hz, the 512-byte seq bitmap, the
/// slot). A power of two: the vectors grow by doubling (4, 8, …, 1,024) and never hold more
/// than 1,024 elements, so their capacity never passes the budget either. At this budget the
/// coarsest level is 6 sub-bucket bits (897 buckets up to 2^32 µs, relative error 1/32), and a
/// latency spread over every µs up to 20 ms still keeps 7 bits (591 buckets, 1/64).
pub const MAX_BUCKETS: usize = 1024;

/// Coarsest sub-bucket bits at [`MAX_BUCKETS`]: every bucket from 0 to [`MAX_RECORDED_US`]
/// fits the budget (asserted below), so coarsening never needs to go further.
pub const MIN_SUB_BITS: u32 = 6;

const _: () = assert!(buckets_to_cover(MIN_SUB_BITS) <= MAX_BUCKETS);
// The floor is the finest level that fits: one bit more would not.
const _: () = assert!(buckets_to_cover(MIN_SUB_BITS + 1) > MAX_BUCKETS);

/// The bucket of `v` with `sub_bits` sub-bucket bits: `(bucket << sub_bits) | sub_bucket`,
/// increasing with `v`. Bucket 0 holds 0..2^sub_bits in steps of 1; bucket b ≥ 1 holds
/// 2^(sub_bits+b−1)..2^(sub_bits+b) in steps of 2^b (sub-buckets 2^(sub_bits−1)..2^sub_bits).
#[inline]
const fn key_at(v: u64, sub_bits: u32) -> u32 {
    let mask = (1u64 << sub_bits) - 1;
    let bucket = (64 - sub_bits) - (v | mask).leading_zeros();
    (bucket << sub_bits) | (v >> bucket) as u32
}

/// Smallest value of bucket `key` (layout with `sub_bits`).
const fn lowest_equivalent_at(key: u32, sub_bits: u32) -> u64 {
    let (bucket, sub) = (key >> sub_bits, key as u64 & ((1u64 << sub_bits) - 1));
    sub << bucket
}

/// Largest value of bucket `key` (layout with `sub_bits`).
fn highest_equivalent_at(key: u32, sub_bits: u32) -> u64 {
    lowest_equivalent_at(key, sub_bits) + (1u64 << (key >> sub_bits)) - 1
}

/// The number of buckets from 0 to [`MAX_RECORDED_US`] in the layout with `sub_bits`: all of
/// bucket 0, half the sub-buckets of each bucket above, up to the key of `MAX_RECORDED_US`.
/// 23,553 at full precision, 897 at 6 bits, 34 at 1 bit.
const fn buckets_to_cover(sub_bits: u32) -> usize {
    let top = key_at(MAX_RECORDED_US, sub_bits);
    let (bucket, sub) = (top >> sub_bits, top & ((1 << sub_bits) - 1));
    let half = 1usize << (sub_bits - 1);
    if bucket == 0 {
        sub as usize + 1
    } else {
        2 * half + (bucket as usize - 1) * half + (sub as usize - half + 1)
    }
}

/// Worst-case relative error of a bucket's highest value over any value in it, with
/// `sub_bits` sub-bucket bits: 2^−(sub_bits−1).
fn relative_error_at(sub_bits: u32) -> f64 {
    1.0 / (1u64 << (sub_bits - 1)) as f64
}

/// Values below this many µs are counted in a dense array while the layout is at full
/// precision, where each of them is its own bucket (key = value): one indexed add instead of
/// a binary search over cold memory, at 10,000 dummies the costliest step of recording
/// (docs/PERFORMANCE.md). 512 × 8 bytes = 4 KiB, allocated and written once, at the first
/// such value, so the memory a distribution takes for its common latencies does not grow in
/// steps afterwards. Which buckets exist, and so the budget, coarsening and the quantiles, are
/// exactly those of the sparse buckets alone (tested).
const DENSE: usize = 512;
const _: () = assert!(DENSE <= 1 << SUB_BITS);

/// Most sparse buckets kept beside the dense counts: past this many, the dense counts are
/// folded into the sparse ones and the distribution goes on sparse only. So a distribution
/// takes at most 4 KiB + 512 × 12 bytes = 10 KiB with its dense counts, and at most
/// [`MAX_BUCKETS`] × 12 bytes = 12 KiB without: never more than before the dense counts.
const SPARSE_BESIDE_DENSE: usize = 512;

/// Counts of the buckets in use, in the layout with `sub_bits`; at most `budget` of them.
///
/// At full precision the buckets of values below [`DENSE`] are counted in `low` (a zero count
/// is a bucket not in use) and every other bucket in `keys`/`counts`, sorted by key. Once
/// coarsened, or once more than [`SPARSE_BESIDE_DENSE`] sparse buckets are needed, all of them
/// are in `keys`/`counts` and `low` is empty (`low_off`) until [`Buckets::clear`].
#[derive(Debug, Clone)]
struct Buckets {
    keys: Vec<u32>,
    counts: Vec<u64>,
    /// Empty, or [`DENSE`] counts indexed by value (only at full precision).
    low: Vec<u64>,
    /// The dense counts were folded into the sparse ones: values below [`DENSE`] go to the
    /// sparse buckets too.
    low_off: bool,
    /// Non-zero counts in `low`.
    low_used: u32,
    /// The non-zero counts of `low` lie in `low_first..=low_last` (when `low_used > 0`).
    low_first: u16,
    low_last: u16,
    /// The value `low` counted last: the line the next value of this distribution most
    /// likely lands in (for [`LatencyHistogram::prefetch`]).
    low_recent: u16,
    /// Sub-bucket bits of the current layout: [`SUB_BITS`] until the budget forces coarsening.
    sub_bits: u32,
    budget: u32,
}

impl Default for Buckets {
    fn default() -> Self {
        Self::with_budget(MAX_BUCKETS)
    }
}

/// Equal when they hold the same buckets with the same counts, whichever array holds them.
impl PartialEq for Buckets {
    fn eq(&self, other: &Self) -> bool {
        (self.sub_bits, self.budget) == (other.sub_bits, other.budget)
            && self.iter().eq(other.iter())
    }
}

impl Buckets {
    /// Panics if `budget` cannot hold the coarsest possible layout (1 sub-bucket bit, 34
    /// buckets up to [`MAX_RECORDED_US`]).
    fn with_budget(budget: usize) -> Self {
        assert!(
            budget >= buckets_to_cover(1) && budget <= u32::MAX as usize,
            "bucket budget {budget} out of range"
        );
        Self {
            keys: Vec::new(),
            counts: Vec::new(),
            low: Vec::new(),
            low_off: false,
            low_used: 0,
            low_first: 0,
            low_last: 0,
            low_recent: 0,
            sub_bits: SUB_BITS,
            budget: budget as u32,
        }
    }

    /// Buckets in use.
    fn len(&self) -> usize {
        self.keys.len() + self.low_used as usize
    }

    /// Every bucket in use and its count, by increasing key.
    fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let (first, low) = match self.low_used {
            0 => (0, &[][..]),
            _ => (
                self.low_first as usize,
                &self.low[self.low_first as usize..=self.low_last as usize],
            ),
        };
        // Below DENSE at full precision, a bucket's key is its value.
        let dense = (first..).zip(low).filter(|&(_, &c)| c > 0);
        dense
            .map(|(v, &c)| (v as u32, c))
            .chain(self.keys.iter().copied().zip(self.counts.iter().copied()))
    }

    /// Adds `n` to the bucket of value `v`; coarsens first if that bucket is new and the
    /// budget is full. Common case: the bucket exists, one indexed add (values below
    /// [`DENSE`]) or one binary search. Adding 0 changes nothing.
    #[inline]
    fn record(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        loop {
            if v < DENSE as u64 && !self.low_off && self.sub_bits == SUB_BITS {
                if self.low.is_empty() {
                    self.open_low();
                }
                let i = v as usize;
                if self.low[i] == 0 {
                    if self.len() >= self.budget as usize {
                        self.coarsen_to(self.sub_bits - 1);
                        continue;
                    }
                    self.note_low_in_use(i);
                }
                self.low[i] += n;
                self.low_recent = i as u16;
                return;
            }
            let key = key_at(v, self.sub_bits);
            match self.keys.binary_search(&key) {
                Ok(i) => {
                    self.counts[i] += n;
                    return;
                }
                Err(_) if !self.low.is_empty() && self.keys.len() >= SPARSE_BESIDE_DENSE => {
                    self.fold_low();
                }
                Err(i) if self.len() < self.budget as usize => {
                    self.keys.insert(i, key);
                    self.counts.insert(i, n);
                    return;
                }
                // Terminates: at the floor level every possible bucket fits the budget, so a
                // full budget there means the bucket exists.
                Err(_) => self.coarsen_to(self.sub_bits - 1),
            }
        }
    }

    /// Allocates `low` and writes it whole, so its pages are resident from now on.
    #[cold]
    #[inline(never)]
    fn open_low(&mut self) {
        self.low.resize(DENSE, 0);
    }

    #[inline]
    fn note_low_in_use(&mut self, i: usize) {
        let i16 = i as u16;
        if self.low_used == 0 {
            (self.low_first, self.low_last) = (i16, i16);
        } else {
            self.low_first = self.low_first.min(i16);
            self.low_last = self.low_last.max(i16);
        }
        self.low_used += 1;
    }

    /// Moves the counts of `low` into `keys`/`counts` (they all come before the sparse keys)
    /// and frees it: coarser layouts are sparse only, and so is a wide spread of values.
    #[cold]
    #[inline(never)]
    fn fold_low(&mut self) {
        self.low_off = true;
        if self.low.is_empty() {
            return;
        }
        let n = self.len();
        // Capacity: a power of two up to the budget, as the vectors' doubling would give.
        let cap = n.next_power_of_two().min(self.budget as usize).max(n);
        let (mut keys, mut counts) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
        for (k, c) in self.iter() {
            keys.push(k);
            counts.push(c);
        }
        (self.keys, self.counts) = (keys, counts);
        self.low = Vec::new();
        self.low_used = 0;
    }

    /// Adds `n` to the bucket `key` of the full-precision layout (the reference tests use
    /// HdrHistogram's keys).
    #[cfg(test)]
    fn add(&mut self, key: u32, n: u64) {
        self.record(lowest_equivalent_at(key, SUB_BITS), n);
    }

    /// Re-keys every bucket into the layout with `sub_bits` (≤ the current one) and merges
    /// the counts that land in the same bucket. In place, no allocation: keys only move down.
    #[cold]
    #[inline(never)]
    fn coarsen_to(&mut self, sub_bits: u32) {
        let from = self.sub_bits;
        assert!(
            (1..=from).contains(&sub_bits),
            "cannot coarsen {from} to {sub_bits} sub-bucket bits"
        );
        if sub_bits == from {
            return;
        }
        self.fold_low();
        let mut w = 0;
        for r in 0..self.keys.len() {
            // A fine bucket lies inside one coarse bucket: its lowest value names it.
            let key = key_at(lowest_equivalent_at(self.keys[r], from), sub_bits);
            let count = self.counts[r];
            if w > 0 && self.keys[w - 1] == key {
                self.counts[w - 1] += count;
            } else {
                self.keys[w] = key;
                self.counts[w] = count;
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.counts.truncate(w);
        self.sub_bits = sub_bits;
    }

    /// Forgets every count and returns to full precision (keeps the allocations).
    fn clear(&mut self) {
        self.keys.clear();
        self.counts.clear();
        self.low.fill(0);
        self.low_used = 0;
        self.low_off = false;
        self.sub_bits = SUB_BITS;
    }

    /// HdrHistogram's `value_at_quantile`: the value of the bucket holding rank
    /// `max(1, ceil(q · total))`, its highest equivalent value (lowest for q = 0).
    fn value_at_quantile(&self, q: f64, total: u64) -> u64 {
        let q = q.min(1.0);
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let mut last = None;
        for (key, count) in self.iter() {
            seen += count;
            if seen >= rank {
                return if q == 0.0 {
                    lowest_equivalent_at(key, self.sub_bits)
                } else {
                    highest_equivalent_at(key, self.sub_bits)
                };
            }
            last = Some(key);
        }
        last.map_or(0, |k| highest_equivalent_at(k, self.sub_bits))
    }
}

/// A distribution of non-negative durations in µs.
///
/// An unused distribution (e.g. the round trip of a dummy without ECHO) holds no buckets; a
/// used one holds at most [`MAX_BUCKETS`].
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

    /// A histogram holding at most `budget` buckets (tests use small ones). Panics below 34,
    /// the buckets of the coarsest possible layout.
    #[cfg(test)]
    pub(crate) fn with_budget(budget: usize) -> Self {
        Self {
            buckets: Buckets::with_budget(budget),
            ..Self::default()
        }
    }

    /// Records one value in µs. Negative or non-finite values are refused (returns `false`):
    /// callers decide what such a value means (e.g. "clocks disagree").
    pub fn record(&mut self, us: f64) -> bool {
        if !us.is_finite() || us < 0.0 {
            return false;
        }
        // Rounded to whole µs: the buckets' unit. Exact value kept in sum/min/max.
        let v = (us.round() as u64).min(MAX_RECORDED_US);
        self.buckets.record(v, 1);
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

    /// Hints the CPU to load the bucket arrays: the dense counts' line of the last value
    /// (one dummy's latencies cluster), and the sparse arrays' middle, where a binary search
    /// starts.
    pub fn prefetch(&self) {
        let b = &self.buckets;
        if let Some(c) = b.low.get(b.low_recent as usize) {
            super::table::prefetch_lines(c);
        }
        if let (Some(k), Some(c)) = (
            b.keys.get(b.keys.len() / 2),
            b.counts.get(b.counts.len() / 2),
        ) {
            super::table::prefetch_lines(k);
            super::table::prefetch_lines(c);
        }
    }

    /// Buckets in use (memory is about 12 bytes each), at most [`MAX_BUCKETS`].
    pub fn buckets_in_use(&self) -> usize {
        self.buckets.len()
    }

    /// Sub-bucket bits of the current layout: 11 (3 significant digits) until the bucket
    /// budget forced coarsening, then fewer, down to [`MIN_SUB_BITS`].
    pub fn sub_bucket_bits(&self) -> u32 {
        self.buckets.sub_bits
    }

    /// Worst-case relative error of the percentiles in [`Self::stats`] at the current
    /// precision: a percentile is at most this fraction above the exact nearest-rank value
    /// (and never below it). 1/1,024 at full precision, 1/32 at the floor. Values below
    /// 2^sub_bucket_bits µs are exact.
    pub fn relative_error(&self) -> f64 {
        relative_error_at(self.buckets.sub_bits)
    }

    /// Count, exact min/mean/max, and the fixed percentiles (p50, p90, p99, p99.9);
    /// `None` when nothing was recorded. The percentiles' precision: [`Self::relative_error`].
    pub fn stats(&self) -> Option<LatencyStats> {
        if self.count == 0 {
            return None;
        }
        // A bucket reports its highest equivalent value (at most `relative_error()` above the
        // true value); never report a percentile above the exact maximum.
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
            relative_error: self.relative_error(),
        })
    }

    /// Adds every value of `other` (e.g. to summarise all dummies together). If `other` is
    /// coarser, this histogram is coarsened to its precision first; the result is then
    /// recorded within this histogram's budget (which may coarsen it further).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.count == 0 {
            return;
        }
        let theirs = other.buckets.sub_bits;
        if theirs < self.buckets.sub_bits {
            self.buckets.coarsen_to(theirs);
        }
        for (key, count) in other.buckets.iter() {
            // Their bucket lies inside one of ours: its lowest value names it.
            self.buckets
                .record(lowest_equivalent_at(key, theirs), count);
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

    /// Forgets every value and returns to full precision (keeps the allocation, at most
    /// [`MAX_BUCKETS`] buckets' worth).
    pub fn reset(&mut self) {
        self.buckets.clear();
        self.count = 0;
        self.sum_us = 0.0;
        self.min_us = 0.0;
        self.max_us = 0.0;
    }
}

/// The exact percentiles the histogram's are checked against, shared by the unit and
/// property tests.
#[cfg(test)]
pub(crate) mod reference {
    use crate::metrics::LatencyStats;

    /// Nearest rank: the ⌈per_mille · n / 1000⌉-th smallest value, in integers.
    pub(crate) fn nearest_rank(sorted: &[u64], per_mille: u64) -> u64 {
        let rank = (per_mille * sorted.len() as u64).div_ceil(1000).max(1);
        sorted[(rank - 1) as usize]
    }

    /// The first of p50, p90, p99 and p99.9 in `s` that is not the top of the bucket holding
    /// the exact nearest-rank value of `sorted`, i.e. below it or more than
    /// `s.relative_error` above it.
    pub(crate) fn percentile_off(s: &LatencyStats, sorted: &[u64]) -> Option<String> {
        let err = s.relative_error;
        [
            (500, s.p50_us),
            (900, s.p90_us),
            (990, s.p99_us),
            (999, s.p999_us),
        ]
        .into_iter()
        .find_map(|(pm, got)| {
            let want = nearest_rank(sorted, pm) as f64;
            (got < want || got > want * (1.0 + err))
                .then(|| format!("p{pm}: {got} vs exact {want} (relative error {err})"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::reference::nearest_rank;
    use super::*;

    /// Full-precision bucket of `v` (HdrHistogram's key with 3 significant digits).
    fn key(v: u64) -> u32 {
        key_at(v, SUB_BITS)
    }

    fn lowest_equivalent(key: u32) -> u64 {
        lowest_equivalent_at(key, SUB_BITS)
    }

    fn highest_equivalent(key: u32) -> u64 {
        highest_equivalent_at(key, SUB_BITS)
    }

    /// Buckets recorded at `sub_bits` from the start, with no budget to force coarsening.
    fn fixed_precision(values: &[u64], sub_bits: u32) -> Buckets {
        let mut b = Buckets::with_budget(u32::MAX as usize);
        b.coarsen_to(sub_bits);
        for &v in values {
            b.record(v.min(MAX_RECORDED_US), 1);
        }
        b
    }

    /// Every bucket in use and its count, by key, whichever array holds it.
    fn pairs(b: &Buckets) -> Vec<(u32, u64)> {
        b.iter().collect()
    }

    /// Small deterministic generator (xorshift) for the spread-out tests.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

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

    #[test]
    fn floor_layout_fits_the_budget() {
        assert_eq!(buckets_to_cover(SUB_BITS), 23_553);
        assert_eq!(buckets_to_cover(MIN_SUB_BITS), 897);
        assert_eq!(buckets_to_cover(1), 34);
        // One value at each end of every bucket of the floor layout, 0 to 2^32: more than
        // 7 bits can hold in the budget, exactly one bucket each at 6 bits.
        let mut h = LatencyHistogram::new();
        let mut values = Vec::new();
        let mut k = key_at(0, MIN_SUB_BITS);
        while lowest_equivalent_at(k, MIN_SUB_BITS) <= MAX_RECORDED_US {
            if key_at(lowest_equivalent_at(k, MIN_SUB_BITS), MIN_SUB_BITS) == k {
                let lo = lowest_equivalent_at(k, MIN_SUB_BITS);
                let hi = highest_equivalent_at(k, MIN_SUB_BITS).min(MAX_RECORDED_US);
                values.extend([lo, hi]);
            }
            k += 1;
        }
        for &v in &values {
            assert!(h.record(v as f64));
            assert!(h.buckets_in_use() <= MAX_BUCKETS);
        }
        assert_eq!(h.sub_bucket_bits(), MIN_SUB_BITS);
        assert_eq!(h.buckets_in_use(), buckets_to_cover(MIN_SUB_BITS));
        assert_eq!(h.relative_error(), 1.0 / 32.0);
        // Never more than the budget allocated either (the vectors grow by doubling).
        assert!(h.buckets.keys.capacity() <= MAX_BUCKETS);
        assert!(h.buckets.counts.capacity() <= MAX_BUCKETS);
        // Further values, even absurd ones, find their bucket.
        for v in [0.0, 1.0, 1e5, 1e9, 1e300] {
            assert!(h.record(v));
        }
        assert_eq!(h.sub_bucket_bits(), MIN_SUB_BITS);
        assert_eq!(h.len(), values.len() as u64 + 5);
    }

    #[test]
    fn coarser_layouts_match_hdrhistogram_with_fewer_digits() {
        // HdrHistogram with 2 significant digits has 256 sub-buckets (8 bits), with 1 digit
        // 32 (5 bits): the same bucket edges as ours coarsened to those levels.
        for (digits, sub_bits) in [(2u8, 8u32), (1, 5)] {
            let reference = hdrhistogram::Histogram::<u64>::new(digits).unwrap();
            let mut state = 0x9E37_79B9_7F4A_7C15;
            for i in 0..5_000u64 {
                let v = if i < 600 {
                    i
                } else {
                    xorshift(&mut state) % (1 << (i % 33))
                };
                let k = key_at(v, sub_bits);
                let lo = lowest_equivalent_at(k, sub_bits);
                assert_eq!(lo, reference.lowest_equivalent(v), "{v} at {digits}");
                assert_eq!(
                    highest_equivalent_at(k, sub_bits),
                    reference.highest_equivalent(v),
                    "{v} at {digits}"
                );
                // A full-precision bucket lies inside the coarse bucket of its lowest value.
                let fine = key(v);
                assert_eq!(key_at(lowest_equivalent(fine), sub_bits), k);
                assert_eq!(key_at(highest_equivalent(fine), sub_bits), k);
            }
        }
    }

    #[test]
    fn every_us_to_2_s_and_huge_values_stay_in_budget() {
        let mut values: Vec<u64> = (1..=2_000_000).collect();
        // 2,000 values spread geometrically from 2 s to 2^32 µs, and a few absurd ones.
        let ratio = (MAX_RECORDED_US as f64 / 2e6).powf(1.0 / 2_000.0);
        values.extend((1..=2_000).map(|i| ((2e6 * ratio.powi(i)) as u64).min(MAX_RECORDED_US)));
        let mut h = LatencyHistogram::new();
        for &v in &values {
            assert!(h.record(v as f64));
        }
        for us in [1e10, 1e15, 1e300] {
            assert!(h.record(us));
            values.push(MAX_RECORDED_US); // clamped inside the buckets
        }
        assert!(h.buckets_in_use() <= MAX_BUCKETS, "{}", h.buckets_in_use());
        assert!(h.sub_bucket_bits() >= MIN_SUB_BITS);
        let err = h.relative_error();
        assert!(err <= 1.0 / 32.0);
        values.sort_unstable();
        let s = h.stats().unwrap();
        assert_eq!(s.count, values.len() as u64);
        assert_eq!((s.min_us, s.max_us), (1.0, 1e300));
        assert_eq!(s.relative_error, err);
        if let Some(off) = reference::percentile_off(&s, &values) {
            panic!("{off}");
        }
        // Every per-mille quantile, through the buckets directly.
        for pm in 1..=1000u64 {
            let q = pm as f64 / 1000.0 * (1.0 - 1e-12);
            let got = h.buckets.value_at_quantile(q, h.len()) as f64;
            let want = nearest_rank(&values, pm) as f64;
            assert!(
                got >= want && got <= want * (1.0 + err),
                "q {pm}‰: {got} vs {want}"
            );
        }
    }

    #[test]
    fn dense_20_ms_spread_keeps_7_bits() {
        let mut h = LatencyHistogram::new();
        for v in 0..=20_000u32 {
            h.record(f64::from(v));
        }
        assert_eq!(h.sub_bucket_bits(), 7);
        // 0..127 one each, 7 powers of two of 64, then 16,384..20,000 in steps of 256.
        assert_eq!(h.buckets_in_use(), 128 + 7 * 64 + 15);
        assert_eq!(h.relative_error(), 1.0 / 64.0);
    }

    #[test]
    fn common_latencies_take_one_fixed_block() {
        let mut h = LatencyHistogram::new();
        for v in [3.0, 4.0, 4.0, 511.0, 37.2] {
            h.record(v);
        }
        // Below DENSE: no sparse bucket, one block written whole at the first value.
        let b = &h.buckets;
        assert_eq!(
            (b.keys.capacity(), b.low.len(), b.low.capacity()),
            (0, DENSE, DENSE)
        );
        assert_eq!(pairs(b), [(3, 1), (4, 2), (37, 1), (511, 1)]);
        assert_eq!(h.buckets_in_use(), 4);
        h.record(512.0);
        assert_eq!(pairs(&h.buckets).last(), Some(&(512, 1)));
        assert_eq!(h.buckets.keys.len(), 1);
        // Adding nothing opens no bucket, in either array.
        h.buckets.record(9, 0);
        h.buckets.record(5_000, 0);
        assert_eq!(h.buckets_in_use(), 5);
        // Merged or coarsened, the dense counts land in the sparse buckets.
        let mut coarse = LatencyHistogram::new();
        coarse.buckets.coarsen_to(MIN_SUB_BITS);
        coarse.merge(&h);
        assert!(coarse.sub_bucket_bits() < SUB_BITS && coarse.buckets.low.is_empty());
        assert_eq!(coarse.buckets.iter().map(|(_, c)| c).sum::<u64>(), 6);
        // Reset keeps the block, empty.
        h.reset();
        assert_eq!((h.buckets_in_use(), h.buckets.low.len()), (0, DENSE));
        assert_eq!(pairs(&h.buckets), []);
        // A wide spread: past 512 sparse buckets the dense counts are folded in, so the
        // distribution never holds more than the sparse budget's 12 KiB.
        h.record(5.0);
        for v in 0..SPARSE_BESIDE_DENSE as u32 {
            h.record(f64::from(1_000 + v));
        }
        assert_eq!((h.buckets.low.len(), h.buckets.keys.len()), (DENSE, 512));
        h.record(2_000.0);
        h.record(6.0);
        let b = &h.buckets;
        assert!(b.low.is_empty() && b.keys.capacity() <= MAX_BUCKETS);
        assert_eq!((b.len(), b.sub_bits), (515, SUB_BITS));
        assert_eq!(pairs(b)[..2], [(5, 1), (6, 1)]);
    }

    #[test]
    fn reset_returns_to_full_precision() {
        let mut h = LatencyHistogram::with_budget(100);
        for v in 0..10_000u32 {
            h.record(f64::from(v));
        }
        assert!(h.sub_bucket_bits() < SUB_BITS);
        let cap = h.buckets.keys.capacity();
        h.reset();
        assert_eq!(h.sub_bucket_bits(), SUB_BITS);
        assert_eq!((h.buckets_in_use(), h.buckets.keys.capacity()), (0, cap));
        h.record(2049.0);
        assert_eq!(h.stats().unwrap().p50_us, 2049.0);
    }

    /// Two histograms over disjoint random halves of `values`, one with a small budget.
    fn split(values: &[u64], budget: usize) -> (LatencyHistogram, LatencyHistogram) {
        let (mut fine, mut coarse) = (
            LatencyHistogram::new(),
            LatencyHistogram::with_budget(budget),
        );
        for (i, &v) in values.iter().enumerate() {
            if i % 2 == 0 {
                fine.record(v as f64);
            } else {
                coarse.record(v as f64);
            }
        }
        (fine, coarse)
    }

    #[test]
    fn merge_coarsens_the_finer_to_the_coarser() {
        let mut state = 7;
        let values: Vec<u64> = (0..3_000)
            .map(|_| xorshift(&mut state) % 3_000_000)
            .collect();
        let all_exact = |h: &LatencyHistogram| {
            let min = *values.iter().min().unwrap() as f64;
            let max = *values.iter().max().unwrap() as f64;
            let sum: u64 = values.iter().sum();
            let s = h.stats().unwrap();
            assert_eq!(
                (s.count, s.min_us, s.max_us),
                (values.len() as u64, min, max)
            );
            assert!((s.mean_us - sum as f64 / values.len() as f64).abs() < 1e-6);
        };
        // Fine into coarse: stays at the coarse precision (within its budget).
        let (fine, mut coarse) = split(&values, 200);
        let coarse_bits = coarse.sub_bucket_bits();
        assert!(coarse_bits < fine.sub_bucket_bits());
        coarse.merge(&fine);
        assert!(coarse.sub_bucket_bits() <= coarse_bits);
        assert!(coarse.buckets_in_use() <= 200);
        let b = fixed_precision(&values, coarse.sub_bucket_bits());
        assert_eq!(pairs(&coarse.buckets), pairs(&b));
        all_exact(&coarse);
        // Coarse into fine: the fine one drops to the coarse precision first.
        let (mut fine, coarse) = split(&values, 200);
        fine.merge(&coarse);
        assert_eq!(fine.sub_bucket_bits(), coarse.sub_bucket_bits());
        let b = fixed_precision(&values, fine.sub_bucket_bits());
        assert_eq!(pairs(&fine.buckets), pairs(&b));
        all_exact(&fine);
        // Same quantiles as one histogram recorded at that precision.
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                fine.buckets.value_at_quantile(q, fine.len()),
                b.value_at_quantile(q, values.len() as u64)
            );
        }
    }

    proptest::proptest! {
        /// Coarsening under a small budget gives exactly the buckets (and so the quantiles)
        /// that recording at the final precision from the start gives.
        #[test]
        fn coarsened_equals_recorded_at_final_precision(
            values in proptest::collection::vec(
                // 512..1,700: more than 512 sparse buckets beside the dense ones (a fold).
                proptest::prop_oneof![
                    0u64..3_000,
                    512u64..1_700,
                    0u64..5_000_000,
                    0u64..=MAX_RECORDED_US
                ],
                1..1500,
            ),
            // Above 600, a fold beside the dense counts happens before any coarsening.
            budget in proptest::prop_oneof![34usize..300, 600usize..1_200],
            qs in proptest::collection::vec(0.0f64..=1.0, 1..8),
        ) {
            let mut h = LatencyHistogram::with_budget(budget);
            for &v in &values {
                h.record(v as f64);
                proptest::prop_assert!(h.buckets_in_use() <= budget);
            }
            let bits = h.sub_bucket_bits();
            let held = pairs(&h.buckets);
            proptest::prop_assert_eq!(h.buckets_in_use(), held.len());
            proptest::prop_assert!(held.windows(2).all(|w| w[0].0 < w[1].0), "keys ascend");
            proptest::prop_assert_eq!(
                held.iter().map(|&(_, c)| c).sum::<u64>(),
                values.len() as u64
            );
            let reference = fixed_precision(&values, bits);
            proptest::prop_assert_eq!(pairs(&h.buckets), pairs(&reference));
            // Coarsened only as far as needed: one bit finer would not fit.
            if bits < SUB_BITS {
                proptest::prop_assert!(fixed_precision(&values, bits + 1).len() > budget);
            }
            for q in qs {
                proptest::prop_assert_eq!(
                    h.buckets.value_at_quantile(q, h.len()),
                    reference.value_at_quantile(q, values.len() as u64)
                );
            }
        }
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
