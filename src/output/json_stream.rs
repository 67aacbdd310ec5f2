//! `--json-stream`: one JSON object per line on stdout, one line per snapshot interval.
//! Each line is a [`RunSnapshot`], the same shape as `summary.json`'s `final` member.

use crate::metrics::RunSnapshot;

/// The snapshot as one compact JSON line (no trailing newline). Unavailable values are
/// `null`; non-finite floats, which JSON cannot represent, are `null` too (serde_json).
pub fn snapshot_json_line(snapshot: &RunSnapshot) -> String {
    serde_json::to_string(snapshot).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot encode snapshot: {e}") }).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    #[test]
    fn a_line_is_one_json_object_that_parses_back() {
        let s = sample_run_snapshot();
        let line = snapshot_json_line(&s);
        assert!(!line.contains('\n'));
        let back: RunSnapshot = serde_json::from_str(&line).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn non_finite_values_become_null() {
        let mut s = sample_run_snapshot();
        s.dummies[0].rtf.last_1s = Some(f64::INFINITY);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json_line(&s)).unwrap();
        assert!(v["dummies"][0]["rtf"]["last_1s"].is_null());
    }
}
