//! Running statistics with O(1) memory: mean/min/max/standard deviation (Welford) and the
//! RFC 3550 interarrival jitter estimator.

use super::SpreadMs;

/// Mean, min, max and population standard deviation of a series, updated one value at a time.
///
/// Welford's online algorithm (Knuth, TAOCP vol. 2, 4.2.2): numerically stable, unlike the
/// "sum of squares minus square of sum" shortcut that loses all precision for values with a
/// large mean and a small spread (inter-arrival times of ~50 ms with µs spread).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spread {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Spread {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value; non-finite values are ignored.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        if self.count == 1 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// Population standard deviation (divides by n, not n − 1: it describes the values seen,
    /// it does not estimate a larger population).
    pub fn std_dev(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.m2.max(0.0) / self.count as f64).sqrt())
    }

    /// The series, assumed in nanoseconds, as milliseconds.
    pub fn ns_as_ms(&self) -> Option<SpreadMs> {
        const NS_PER_MS: f64 = 1e6;
        Some(SpreadMs {
            count: self.count,
            mean_ms: self.mean()? / NS_PER_MS,
            min_ms: self.min / NS_PER_MS,
            max_ms: self.max / NS_PER_MS,
            std_dev_ms: self.std_dev()? / NS_PER_MS,
        })
    }
}

/// RFC 3550 interarrival jitter (§6.4.1, reference code in Appendix A.8).
///
/// For consecutive arrivals i−1, i with transit times T = receive time − send time:
/// `D = T(i) − T(i−1)`, `J += (|D| − J) / 16`. Transit times may include any constant offset
/// between the two clocks; it cancels in D, so this works with unsynchronised clocks.
/// Unit: whatever unit the transits are given in (the bridge uses µs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rfc3550Jitter {
    last_transit: Option<f64>,
    jitter: f64,
    updates: u64,
}

impl Rfc3550Jitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// One arrival, in arrival order (RFC 3550 A.8: "not necessarily in sequence").
    pub fn push(&mut self, transit: f64) {
        if !transit.is_finite() {
            return;
        }
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // The gain 1/16 is the RFC's noise-reduction parameter (§6.4.1).
            self.jitter += (d - self.jitter) / 16.0;
            self.updates += 1;
        }
        self.last_transit = Some(transit);
    }

    /// Current estimate; `None` before two arrivals.
    pub fn value(&self) -> Option<f64> {
        (self.updates > 0).then_some(self.jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_hand_computed() {
        let mut s = Spread::new();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            s.push(x);
        }
        // Classic example: mean 5, population std dev 2.
        assert_eq!(s.mean(), Some(5.0));
        assert!((s.std_dev().unwrap() - 2.0).abs() < 1e-12);
        let ms = s.ns_as_ms().unwrap();
        assert_eq!((ms.count, ms.min_ms, ms.max_ms), (8, 2e-6, 9e-6));
    }

    #[test]
    fn spread_empty_and_non_finite() {
        let mut s = Spread::new();
        s.push(f64::NAN);
        assert_eq!(s.ns_as_ms(), None);
        assert_eq!(s.std_dev(), None);
    }

    #[test]
    fn spread_keeps_precision_with_large_mean() {
        // 50 ms in ns with ±1 µs: the naive sum-of-squares formula returns garbage here.
        let mut s = Spread::new();
        for i in 0..10_000 {
            s.push(50_000_000.0 + if i % 2 == 0 { 1_000.0 } else { -1_000.0 });
        }
        assert!((s.std_dev().unwrap() - 1_000.0).abs() < 1e-6);
    }

    #[test]
    fn jitter_hand_computed() {
        let mut j = Rfc3550Jitter::new();
        j.push(100.0);
        assert_eq!(j.value(), None);
        j.push(116.0); // |D| = 16 → J = 0 + 16/16 = 1
        assert_eq!(j.value(), Some(1.0));
        j.push(100.0); // |D| = 16 → J = 1 + 15/16
        assert_eq!(j.value(), Some(1.0 + 15.0 / 16.0));
    }

    #[test]
    fn jitter_of_constant_transit_is_zero_whatever_the_offset() {
        let mut j = Rfc3550Jitter::new();
        for _ in 0..100 {
            j.push(-5e9);
        }
        assert_eq!(j.value(), Some(0.0));
    }
}
