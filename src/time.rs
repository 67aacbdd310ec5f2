//! Wall-clock time as the whole bridge counts it: nanoseconds since the Unix epoch.
//!
//! Pure modules never read a clock; they take a [`UnixNanos`] argument. The edges (receivers,
//! the run shell, the remote-API driver) read it here, so there is one definition of "now".

/// Wall-clock instant, nanoseconds since the Unix epoch (i64: good until the year 2262).
pub type UnixNanos = i64;

/// Nanoseconds per second.
pub const NS_PER_S: i64 = 1_000_000_000;

/// Wall clock now (`CLOCK_REALTIME`), ns since the Unix epoch; 0 if the clock is set before
/// 1970.
pub fn unix_now_ns() -> UnixNanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `ns` as seconds since the epoch (for JSON and CSV, which speak seconds).
pub fn ns_to_s(ns: UnixNanos) -> f64 {
    ns as f64 / 1e9
}

/// Seconds as whole nanoseconds, rounded; non-finite input gives `None`.
pub fn s_to_ns(s: f64) -> Option<UnixNanos> {
    let ns = (s * 1e9).round();
    (ns.is_finite() && ns.abs() < i64::MAX as f64).then_some(ns as UnixNanos)
}

/// Whose CPU time [`cpu_time_s`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuOf {
    /// The whole process (`RUSAGE_SELF`): every thread, including finished ones.
    Process,
    /// The calling thread only (`RUSAGE_THREAD`, Linux).
    Thread,
}

/// User + system CPU seconds used so far (`getrusage(2)`), or `None` where unsupported.
pub fn cpu_time_s(of: CpuOf) -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let who = match of {
            CpuOf::Process => libc::RUSAGE_SELF,
            CpuOf::Thread => libc::RUSAGE_THREAD,
        };
        // SAFETY: `usage` is a plain C struct that getrusage fills; zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid `who` and a pointer to a live, writable rusage.
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return None;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(tv(usage.ru_utime) + tv(usage.ru_stime))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = of;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time_s(CpuOf::Thread).unwrap();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_time_s(CpuOf::Thread).unwrap();
        assert!(after > before, "{before} -> {after}");
        assert!(cpu_time_s(CpuOf::Process).unwrap() >= after);
    }

    #[test]
    fn conversions_round_and_refuse_nonsense() {
        assert_eq!(s_to_ns(1.5), Some(1_500_000_000));
        assert_eq!(s_to_ns(1e-10), Some(0));
        assert_eq!(s_to_ns(f64::NAN), None);
        assert_eq!(s_to_ns(f64::INFINITY), None);
        assert_eq!(s_to_ns(1e300), None);
        assert_eq!(ns_to_s(2 * NS_PER_S), 2.0);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(unix_now_ns() > 1_577_836_800 * NS_PER_S);
    }
}
