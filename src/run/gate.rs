//! `--expect-dummies`: measurement starts once N dummies have announced themselves (pure).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::time::UnixNanos;

/// Waits for the expected dummies.
#[derive(Debug)]
pub struct ExpectGate {
    expected: Option<usize>,
    timeout: Duration,
    since_ns: UnixNanos,
    open: bool,
}

impl ExpectGate {
    /// Open at once when nothing is expected.
    pub fn new(expected: Option<usize>, timeout: Duration, since_ns: UnixNanos) -> Self {
        Self {
            expected,
            timeout,
            since_ns,
            open: expected.is_none(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// `Ok(true)` the moment the gate opens (`ids` are the dummies seen so far); an error
    /// naming the missing dummies once the wait times out at `now_ns`.
    pub fn poll(&mut self, ids: &[u32], now_ns: UnixNanos) -> Result<bool, String> {
        let Some(n) = self.expected.filter(|_| !self.open) else {
            return Ok(false);
        };
        if ids.len() >= n {
            self.open = true;
            return Ok(true);
        }
        if now_ns - self.since_ns >= self.timeout.as_nanos() as i64 {
            return Err(expect_timeout_message(n, ids, self.timeout));
        }
        Ok(false)
    }
}

/// Names who is there and who is missing, assuming ids 0..N as in the shipped scene.
fn expect_timeout_message(n: usize, ids: &[u32], timeout: Duration) -> String {
    let have: BTreeSet<u32> = ids.iter().copied().collect();
    let missing: Vec<String> = (0..n as u32)
        .filter(|i| !have.contains(i))
        .map(|i| format!("Dummy{i}"))
        .collect();
    let seen = if have.is_empty() {
        "none".to_owned()
    } else {
        have.iter()
            .map(|i| format!("Dummy{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "only {} of {n} expected dummies announced themselves within {} (seen: {seen}; missing, if ids are 0..{}: {}). \
         Is the simulation running, and do the scripts send to this bridge's --listen address?",
        have.len(),
        humantime::format_duration(timeout),
        n.saturating_sub(1),
        if missing.is_empty() { "other ids".to_owned() } else { missing.join(", ") },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_when_all_arrive() {
        let mut g = ExpectGate::new(Some(2), Duration::from_secs(10), 0);
        assert!(!g.is_open());
        assert_eq!(g.poll(&[0], 1), Ok(false));
        assert_eq!(g.poll(&[0, 1], 5), Ok(true));
        assert!(g.is_open());
        assert_eq!(g.poll(&[0, 1], 6), Ok(false), "opens once");
    }

    #[test]
    fn the_timeout_names_the_missing() {
        let mut g = ExpectGate::new(Some(4), Duration::from_secs(1), 0);
        let err = g.poll(&[0, 2], 2_000_000_000).unwrap_err();
        assert!(err.contains("only 2 of 4"), "{err}");
        assert!(
            err.contains("missing, if ids are 0..3: Dummy1, Dummy3"),
            "{err}"
        );
    }

    #[test]
    fn nothing_expected_is_open_from_the_start() {
        let mut g = ExpectGate::new(None, Duration::ZERO, 0);
        assert!(g.is_open());
        assert_eq!(g.poll(&[], i64::MAX), Ok(false));
    }
}
