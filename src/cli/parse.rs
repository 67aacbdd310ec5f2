//! One parser per kind of value on the command line, shared by every flag of that kind
//! (pure: text in, value or an error with an example out).
//!
//! - Wall-clock durations: `10s`, `500ms`, `2m`, `1h30m`, `1.5s`; a bare number is seconds.
//! - Simulation times and steps, in simulated seconds: the same spellings (`10`, `10s`,
//!   `500ms`, `2m`).
//! - Socket addresses: `127.0.0.1:8888`, `[::1]:8888`, or a host name (`localhost:8888`),
//!   resolved once at start, IPv4 first.
//! - Byte sizes: `256MiB`, `64KiB`, `1MB`, `4096`; a bare number is bytes.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Units of time, with their length in seconds.
const TIME_UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("sec", 1.0),
    ("m", 60.0),
    ("min", 60.0),
    ("h", 3600.0),
];

/// A non-negative number of seconds from `10`, `1.5s`, `500ms`, `2m`, `1h30m`.
fn seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    // A sum of `<number><unit>` terms; a lone number is seconds.
    let mut rest = s;
    let mut total = 0.0;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(end);
        let value: f64 = number.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let unit = unit.trim();
        let scale = if unit.is_empty() {
            if !next.is_empty() || rest.len() != s.len() {
                return None; // a bare number only on its own
            }
            1.0
        } else {
            TIME_UNITS.iter().find(|(u, _)| *u == unit)?.1
        };
        total += value * scale;
        rest = next.trim_start();
    }
    (total.is_finite() && total >= 0.0).then_some(total)
}

/// A wall-clock duration.
pub fn duration(s: &str) -> Result<Duration, String> {
    seconds(s)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a duration: use a number with a unit, e.g. 10s, 500ms, 2m or \
                 1h30m (a bare number is seconds)"
            )
        })
}

/// A time on the simulation clock, in simulated seconds.
pub fn sim_seconds(s: &str) -> Result<f64, String> {
    seconds(s).ok_or_else(|| {
        format!(
            "{s:?} is not a simulation time: use seconds of simulated time, e.g. 10, 10s, \
             500ms or 2m"
        )
    })
}

/// A positive simulation time step in seconds (`--dt`).
pub fn time_step(s: &str) -> Result<f64, String> {
    match seconds(s) {
        Some(v) if v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a time step: use a positive number of seconds, e.g. 0.05, 50ms or 10ms"
        )),
    }
}

/// A clock offset in seconds, either sign (`--clock-offset -0.25`), within a day.
pub fn clock_offset(s: &str) -> Result<f64, String> {
    let max = crate::standin::MAX_CLOCK_OFFSET_S;
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= max => Ok(v),
        _ => Err(format!(
            "{s:?} is not a clock offset: use seconds within ±{max}, e.g. -0.25 (behind) or \
             0.1 (ahead)"
        )),
    }
}

/// A socket address; host names are resolved (IPv4 preferred, as the scripts send IPv4).
pub fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let hint = "use HOST:PORT, e.g. 127.0.0.1:8888, localhost:8888 or [::1]:8888";
    if !s.contains(':') {
        return Err(format!("{s:?} has no port: {hint}"));
    }
    let found: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {s:?} ({e}): {hint}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| found.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address: {hint}"))
}

/// Binary and decimal size units, in bytes.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("k", 1_000),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("m", 1_000_000),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("g", 1_000_000_000),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
];

/// A size in bytes: `256MiB`, `64KiB`, `1MB`, `4096`.
pub fn bytes(s: &str) -> Result<usize, String> {
    let err = || format!("{s:?} is not a size: use e.g. 256MiB, 64KiB, 1MB or 4096 (bytes)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| err())?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .ok_or_else(err)?
            .1
    };
    let total = value * scale as f64;
    if !(total.is_finite() && total >= 0.0 && total <= usize::MAX as f64) {
        return Err(err());
    }
    Ok(total.round() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets_take_either_sign_within_a_day() {
        assert_eq!(clock_offset("-0.25"), Ok(-0.25));
        assert_eq!(clock_offset("0.1"), Ok(0.1));
        for bad in ["", "nan", "inf", "86401", "-1e9", "1s"] {
            assert!(
                clock_offset(bad).unwrap_err().contains("e.g. -0.25"),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_take_units_sums_and_bare_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(duration("10s"), Ok(ms(10_000)));
        assert_eq!(duration("500ms"), Ok(ms(500)));
        assert_eq!(duration("2m"), Ok(ms(120_000)));
        assert_eq!(duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(duration("2"), Ok(ms(2_000)), "a bare number is seconds");
        assert_eq!(duration("0.25"), Ok(ms(250)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "s", "10x", "-1s", "1.2.3s", "10 20", "nan", "1e400"] {
            let e = duration(bad).unwrap_err();
            assert!(e.contains("e.g. 10s, 500ms"), "{bad}: {e}");
        }
    }

    #[test]
    fn simulation_times_take_the_same_spellings() {
        assert_eq!(sim_seconds("10"), Ok(10.0));
        assert_eq!(sim_seconds("10s"), Ok(10.0));
        assert_eq!(sim_seconds("500ms"), Ok(0.5));
        assert_eq!(sim_seconds("2m"), Ok(120.0));
        assert!(sim_seconds("soon").unwrap_err().contains("simulation time"));
        assert_eq!(time_step("50ms"), Ok(0.05));
        assert_eq!(time_step("0.01"), Ok(0.01));
        assert!(time_step("0").unwrap_err().contains("positive"));
    }

    #[test]
    fn addresses_take_literals_and_host_names() {
        assert_eq!(
            socket_addr("127.0.0.1:8888"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 8888)))
        );
        assert_eq!(socket_addr("[::1]:9").unwrap().port(), 9);
        let local = socket_addr("localhost:8888").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 8888);
        assert!(socket_addr("localhost").unwrap_err().contains("no port"));
        assert!(socket_addr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(bytes("256MiB"), Ok(256 << 20));
        assert_eq!(bytes("64KiB"), Ok(64 << 10));
        assert_eq!(bytes("1MB"), Ok(1_000_000));
        assert_eq!(bytes("4096"), Ok(4096));
        assert_eq!(bytes("1.5kib"), Ok(1536));
        for bad in ["", "MiB", "12 parsecs", "-5", "1e999"] {
            assert!(bytes(bad).unwrap_err().contains("256MiB"), "{bad}");
        }
    }
}
