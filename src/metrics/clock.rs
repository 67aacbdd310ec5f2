//! The offset between a dummy's clock and the bridge's, from ECHO exchanges: NTP's on-wire
//! method (RFC 5905 §8) with interval intersection. Pure: timestamps in, estimate out.
//!
//! One exchange gives four timestamps: t1 the STAMP's send time and t4 the ECHO's read time
//! (sender's clock), t2 the STAMP's receive time and t3 the ECHO's send time (bridge's
//! clock). With θ = bridge clock − sender clock and non-negative one-way delays,
//! `t2 = t1 + θ + d→` and `t4 = t3 − θ + d←` give `t3 − t4 ≤ θ ≤ t2 − t1`: an interval as wide
//! as the exchange's delay `δ = (t4 − t1) − (t3 − t2)`, whose midpoint is NTP's offset.
//! Every exchange in the window bounds θ, so θ lies in their intersection, which is never
//! wider than the minimum-delay exchange's own interval (NTP's clock filter keeps that one
//! exchange; the intersection also uses the tight forward bound of one exchange with the tight
//! backward bound of another). Definitions: `docs/METRICS.md` "Clock offset".

use std::collections::VecDeque;

use thiserror::Error;

use super::ClockOffsetStats;
use crate::wire::Clock;

/// Exchanges kept (the newest): the offset is assumed not to drift by more than its bound
/// within them (64 passes: 3.2 s at 20 Hz; a clock off by 100 ppm drifts 0.3 ms in that time).
pub const WINDOW: usize = 64;

/// Resolution of the sender's timestamps: LuaSocket's `socket.gettime()` is gettimeofday,
/// whole microseconds. Each interval is widened by it on both sides, so truncated stamps
/// never make an interval exclude the true offset.
pub const SENDER_RESOLUTION_S: f64 = 1e-6;

/// Exchanges slower than this are refused: no echo read that late says anything useful, and
/// the bound would be meaningless.
pub const MAX_DELAY_S: f64 = 60.0;

/// A latency median is flagged when the clock could make up this share of it or more.
pub const UNSURE_SHARE: f64 = 0.5;

/// Why an exchange was refused (counted as `implausible_clock`).
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum ExchangeError {
    #[error("the bridge's echo send time precedes its receive time by {0:.6} s")]
    NegativeTurnaround(f64),
    #[error("the exchange's delay is {0:.6} s, below zero: a clock stepped during the exchange")]
    NegativeDelay(f64),
    #[error("the exchange's delay is {0:.1} s, above {MAX_DELAY_S} s")]
    DelayTooLong(f64),
}

/// The interval one exchange allows for θ (bridge − sender), seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    /// t3 − t4, less the sender's resolution.
    pub lo_s: f64,
    /// t2 − t1, plus the sender's resolution.
    pub hi_s: f64,
}

impl Exchange {
    /// The interval of one exchange, or why it is impossible.
    pub fn from_clock(c: &Clock) -> Result<Exchange, ExchangeError> {
        let turnaround = c.bridge_send_unix_s - c.bridge_recv_unix_s;
        if turnaround < 0.0 {
            return Err(ExchangeError::NegativeTurnaround(-turnaround));
        }
        let forward = c.bridge_recv_unix_s - c.sent_unix_s;
        let backward = c.bridge_send_unix_s - c.echo_read_unix_s;
        let exchange = Exchange {
            lo_s: backward - SENDER_RESOLUTION_S,
            hi_s: forward + SENDER_RESOLUTION_S,
        };
        let delay = exchange.delay_s();
        if delay < 0.0 {
            return Err(ExchangeError::NegativeDelay(delay));
        }
        if delay > MAX_DELAY_S {
            return Err(ExchangeError::DelayTooLong(delay));
        }
        Ok(exchange)
    }

    /// The exchange's delay (round trip less the bridge's turnaround), widened by the
    /// sender's resolution: the interval's width.
    pub fn delay_s(&self) -> f64 {
        self.hi_s - self.lo_s
    }

    fn midpoint_s(&self) -> f64 {
        (self.lo_s + self.hi_s) / 2.0
    }
}

/// The newest [`WINDOW`] exchanges of one dummy, and the count of all.
#[derive(Debug, Clone, Default)]
pub struct ClockFilter {
    window: VecDeque<Exchange>,
    exchanges: u64,
}

impl ClockFilter {
    /// Adds one exchange; refused ones leave the filter unchanged.
    pub fn push(&mut self, c: &Clock) -> Result<(), ExchangeError> {
        let e = Exchange::from_clock(c)?;
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(e);
        self.exchanges += 1;
        Ok(())
    }

    /// The offset and its bound, from the window; `None` before the first exchange.
    ///
    /// `same_host` and `latency_p50_us` only decide the two flags of the result.
    pub fn estimate(
        &self,
        same_host: bool,
        latency_p50_us: Option<f64>,
    ) -> Option<ClockOffsetStats> {
        let min_delay = self
            .window
            .iter()
            .min_by(|a, b| a.delay_s().total_cmp(&b.delay_s()))?;
        let lo = self.window.iter().map(|e| e.lo_s).fold(f64::MIN, f64::max);
        let hi = self.window.iter().map(|e| e.hi_s).fold(f64::MAX, f64::min);
        let consistent = lo <= hi;
        let (offset_s, bound_s) = if consistent {
            ((lo + hi) / 2.0, (hi - lo) / 2.0)
        } else {
            // The intervals do not all overlap: a clock stepped or drifts faster than the
            // window allows. Fall back to NTP's choice, the minimum-delay exchange alone.
            (min_delay.midpoint_s(), min_delay.delay_s() / 2.0)
        };
        // The largest error the clock can put into a raw latency figure is |offset| + bound.
        let latency_uncertain = !same_host
            && latency_p50_us
                .is_some_and(|p50| (offset_s.abs() + bound_s) * 1e6 >= UNSURE_SHARE * p50);
        Some(ClockOffsetStats {
            offset_s,
            bound_s,
            min_delay_s: min_delay.delay_s(),
            exchanges: self.exchanges,
            window: self.window.len() as u32,
            consistent,
            same_host,
            offset_significant: offset_s.abs() > bound_s,
            latency_uncertain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One exchange on a synthetic timeline: the sender sends at `t1` (its clock), the
    /// bridge's clock is `theta` ahead, the STAMP takes `fwd` s, the bridge turns around in
    /// `turn` s, the ECHO takes `back` s and waits `read_wait` s before the script reads it.
    fn exchange(t1: f64, theta: f64, fwd: f64, turn: f64, back: f64, read_wait: f64) -> Clock {
        let t2 = t1 + fwd + theta;
        let t3 = t2 + turn;
        let t4 = t3 - theta + back + read_wait;
        Clock {
            dummy_id: 1,
            seq: 0,
            sent_unix_s: t1,
            bridge_recv_unix_s: t2,
            bridge_send_unix_s: t3,
            echo_read_unix_s: t4,
        }
    }

    fn filter(clocks: &[Clock]) -> ClockFilter {
        let mut f = ClockFilter::default();
        for c in clocks {
            f.push(c).unwrap();
        }
        f
    }

    #[test]
    fn one_exchange_is_ntps_offset_and_half_its_delay() {
        // θ = 0.25 s; 100 µs each way, 20 µs turnaround, read at once.
        let f = filter(&[exchange(1000.0, 0.25, 100e-6, 20e-6, 100e-6, 0.0)]);
        let e = f.estimate(false, Some(250_100.0)).unwrap();
        assert!((e.offset_s - 0.25).abs() < 1e-9, "{e:?}");
        assert!((e.bound_s - (100e-6 + 1e-6)).abs() < 1e-9, "{e:?}");
        assert!((e.min_delay_s - 202e-6).abs() < 1e-9);
        assert_eq!((e.exchanges, e.window, e.consistent), (1, 1, true));
    }

    #[test]
    fn a_late_read_widens_the_bound_and_the_intersection_narrows_it() {
        // Every echo is read one 50 ms pass late: alone, each bounds θ to ±25 ms.
        let late = exchange(1000.0, -0.1, 80e-6, 10e-6, 80e-6, 0.05);
        let alone = filter(&[late]).estimate(false, None).unwrap();
        assert!(alone.bound_s > 0.025 && alone.bound_s < 0.0251, "{alone:?}");
        assert!((alone.offset_s - -0.1).abs() <= alone.bound_s);
        // One lucky exchange read 1 ms after arrival tightens the lower end for all.
        let lucky = exchange(1000.05, -0.1, 80e-6, 10e-6, 80e-6, 0.001);
        let both = filter(&[late, lucky]).estimate(false, None).unwrap();
        assert!(both.bound_s < 0.0006, "{both:?}");
        assert!((both.offset_s - -0.1).abs() <= both.bound_s);
    }

    #[test]
    fn the_window_keeps_the_newest_exchanges() {
        // A clock step of +10 ms: once WINDOW new exchanges have arrived, only they count.
        let mut f = ClockFilter::default();
        for i in 0..WINDOW {
            f.push(&exchange(i as f64, 0.0, 50e-6, 5e-6, 50e-6, 0.0))
                .unwrap();
        }
        let mid = f.push(&exchange(100.0, 0.01, 50e-6, 5e-6, 50e-6, 0.0));
        assert!(mid.is_ok());
        let stepped = f.estimate(false, None).unwrap();
        assert!(!stepped.consistent, "old and new intervals cannot overlap");
        for i in 1..WINDOW {
            f.push(&exchange(100.0 + i as f64, 0.01, 50e-6, 5e-6, 50e-6, 0.0))
                .unwrap();
        }
        let e = f.estimate(false, None).unwrap();
        assert!(e.consistent);
        assert!((e.offset_s - 0.01).abs() <= e.bound_s, "{e:?}");
        assert_eq!((e.exchanges, e.window), (2 * WINDOW as u64, WINDOW as u32));
    }

    #[test]
    fn impossible_exchanges_are_refused() {
        let mut c = exchange(1000.0, 0.0, 1e-4, 1e-5, 1e-4, 0.0);
        c.bridge_send_unix_s = c.bridge_recv_unix_s - 1e-3;
        assert!(matches!(
            Exchange::from_clock(&c),
            Err(ExchangeError::NegativeTurnaround(_))
        ));
        let mut c = exchange(1000.0, 0.0, 1e-4, 1e-5, 1e-4, 0.0);
        c.echo_read_unix_s = c.sent_unix_s; // read before the round trip could end
        assert!(matches!(
            Exchange::from_clock(&c),
            Err(ExchangeError::NegativeDelay(_))
        ));
        let c = exchange(1000.0, 0.0, 1e-4, 1e-5, 1e-4, 61.0);
        assert!(matches!(
            Exchange::from_clock(&c),
            Err(ExchangeError::DelayTooLong(_))
        ));
        let mut f = ClockFilter::default();
        assert!(f.push(&c).is_err());
        assert_eq!(f.estimate(false, None), None);
    }

    #[test]
    fn flags_latency_whose_clock_error_could_be_as_large() {
        let f = filter(&[exchange(1000.0, 0.002, 100e-6, 10e-6, 100e-6, 0.0)]);
        // θ ≈ 2 ms ± 0.1 ms: a 2 ms latency median could be all offset, a 4 ms one half.
        let e = f.estimate(false, Some(2_000.0)).unwrap();
        assert!(e.latency_uncertain && e.offset_significant, "{e:?}");
        assert!(f.estimate(false, Some(4_000.0)).unwrap().latency_uncertain);
        assert!(!f.estimate(false, Some(50_000.0)).unwrap().latency_uncertain);
        // Synchronised clocks (θ = 0): the offset is not significant.
        let synced = filter(&[exchange(1000.0, 0.0, 100e-6, 10e-6, 100e-6, 0.0)]);
        assert!(!synced.estimate(false, None).unwrap().offset_significant);
        // One host, one clock: never flagged.
        assert!(!f.estimate(true, Some(2_000.0)).unwrap().latency_uncertain);
        assert!(!f.estimate(false, None).unwrap().latency_uncertain);
    }

    proptest! {
        /// Whatever the offset, delays and read waits, the true offset lies within the
        /// estimate's bound, and the bound is never wider than the best single exchange's.
        #[test]
        fn the_true_offset_is_always_within_the_bound(
            theta in -1e3f64..1e3,
            legs in prop::collection::vec(
                (1e-6f64..0.01, 0.0f64..0.001, 1e-6f64..0.01, 0.0f64..0.1), 1..100),
        ) {
            let mut f = ClockFilter::default();
            let mut best = f64::MAX;
            for (i, (fwd, turn, back, wait)) in legs.iter().enumerate() {
                let c = exchange(1.7e9 + i as f64 * 0.05, theta, *fwd, *turn, *back, *wait);
                // µs truncation of the sender's stamps, as LuaSocket does.
                let c = Clock {
                    sent_unix_s: (c.sent_unix_s * 1e6).floor() / 1e6,
                    echo_read_unix_s: (c.echo_read_unix_s * 1e6).floor() / 1e6,
                    ..c
                };
                f.push(&c).unwrap();
                if i + WINDOW >= legs.len() {
                    best = best.min(Exchange::from_clock(&c).unwrap().delay_s() / 2.0);
                }
            }
            let e = f.estimate(false, None).unwrap();
            prop_assert!(e.consistent);
            // 1 µs of slack: f64 at 1.7e9 s has a 0.24 µs ulp.
            prop_assert!((e.offset_s - theta).abs() <= e.bound_s + 1e-6, "{:?} θ={}", e, theta);
            prop_assert!(e.bound_s <= best + 1e-9);
        }
    }
}
