//! Number formatting shared by the live view, plain lines and the report: one place
//! decides how an unavailable value looks (`-`, never `0`).

/// Shown for an unavailable value (legacy dummy, no data yet).
pub const UNAVAILABLE: &str = "-";

/// `value` with `decimals` digits, or `-`; non-finite values are shown as `-` too.
pub fn opt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => UNAVAILABLE.to_owned(),
    }
}

/// A whole number of microseconds, or `-`.
pub fn opt_us(value: Option<f64>) -> String {
    opt(value, 0)
}

/// An integer count, or `-`.
pub fn opt_count(value: Option<u64>) -> String {
    value.map_or_else(|| UNAVAILABLE.to_owned(), |v| v.to_string())
}

/// Seconds as `1h02m03s`, `2m05s` or `12.3s`, for elapsed and remaining times.
pub fn duration_s(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return UNAVAILABLE.to_owned();
    }
    let whole = seconds as u64;
    let (h, m, s) = (whole / 3600, (whole / 60) % 60, whole % 60);
    match (h, m) {
        (0, 0) => format!("{seconds:.1}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// Wall clock (s since the Unix epoch) as UTC `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339).
pub fn utc_rfc3339(unix_s: f64) -> String {
    let (date, (h, m, s)) = utc_parts(unix_s);
    format!(
        "{}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z",
        date.0, date.1, date.2
    )
}

/// Wall clock as the compact UTC stamp used for run directory names, `YYYYMMDDTHHMMSSZ`.
pub fn utc_compact(unix_s: f64) -> String {
    let (date, (h, m, s)) = utc_parts(unix_s);
    format!("{}{:02}{:02}T{h:02}{m:02}{s:02}Z", date.0, date.1, date.2)
}

type Ymd = (i64, u32, u32);
type Hms = (u32, u32, u32);

fn utc_parts(unix_s: f64) -> (Ymd, Hms) {
    let secs = if unix_s.is_finite() {
        unix_s.floor() as i64
    } else {
        0
    };
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400) as u32;
    (
        civil_from_days(days),
        (tod / 3600, (tod / 60) % 60, tod % 60),
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date. Algorithm `civil_from_days` from
/// Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms".
fn civil_from_days(days: i64) -> Ymd {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `stepping 40.0 steps/s · RTF 2.000 (target 2, error +0.4 %)`; target 0 = as fast as
/// possible.
pub fn stepping(st: &crate::metrics::SteppingSnapshot) -> String {
    let target = if st.target_rtf > 0.0 {
        format!("target {}", st.target_rtf)
    } else {
        "as fast as possible".to_owned()
    };
    let err = st
        .pacing_error
        .map_or(String::new(), |e| format!(", error {:+.1} %", 100.0 * e));
    format!(
        "stepping {:.1} steps/s · RTF {:.3} ({target}{err})",
        st.steps_per_s, st.achieved_rtf
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_a_dash_not_zero() {
        assert_eq!(opt(None, 2), "-");
        assert_eq!(opt(Some(f64::NAN), 2), "-");
        assert_eq!(opt(Some(0.0), 2), "0.00");
        assert_eq!(opt_us(Some(182.4)), "182");
        assert_eq!(opt_count(None), "-");
    }

    #[test]
    fn plurals_agree_with_the_count() {
        assert_eq!(count(1, "message"), "1 message");
        assert_eq!(count(0, "message"), "0 messages");
        assert_eq!(count(2, "run"), "2 runs");
        assert_eq!(count(3, "dummy"), "3 dummies");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(duration_s(12.34), "12.3s");
        assert_eq!(duration_s(125.0), "2m05s");
        assert_eq!(duration_s(3723.0), "1h02m03s");
        assert_eq!(duration_s(-1.0), "-");
    }

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(utc_rfc3339(0.0), "1970-01-01T00:00:00Z");
        // 2000-02-29 is a leap day in a century leap year.
        assert_eq!(utc_rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(1_767_323_045.7), "2026-01-02T03:04:05Z");
        assert_eq!(utc_compact(1_767_323_045.0), "20260102T030405Z");
        assert_eq!(utc_rfc3339(-1.0), "1969-12-31T23:59:59Z");
    }
}

/// `n` and the noun, singular for exactly one: `count(1, "message")` is "1 message",
/// `count(3, "message")` "3 messages"; nouns ending in `s`, `sh`, `ch` or `x` take `es`
/// ("1 pass", "2 passes"), as does `echo`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if ["s", "sh", "ch", "x", "echo"]
        .iter()
        .any(|e| noun.ends_with(e))
    {
        format!("{n} {noun}es")
    } else if let Some(stem) = noun.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod count_tests {
    use super::count;

    #[test]
    fn singular_only_for_one() {
        assert_eq!(count(1, "message"), "1 message");
        assert_eq!(count(0, "message"), "0 messages");
        assert_eq!(count(2, "pass"), "2 passes");
        assert_eq!(count(1, "pass"), "1 pass");
        assert_eq!(count(3, "dummy"), "3 dummies");
        assert_eq!(count(1, "dummy"), "1 dummy");
        assert_eq!(count(5, "echo"), "5 echoes");
        assert_eq!(count(1, "echo"), "1 echo");
    }
}
