//! Every metric the Grafana dashboard or a Prometheus rule in `deploy/` queries exists in the
//! bridge's output, and every recording rule they use is defined: a renamed metric breaks
//! this test, not a dashboard in production.

use std::collections::BTreeSet;

use coppelia_bridge::output::fixtures::sample_run_snapshot;
use coppelia_bridge::output::prometheus::ExportLabels;
use coppelia_bridge::output::render_prometheus;

const DASHBOARD: &str = include_str!("../deploy/grafana/coppelia-bridge.json");
const RULES: &str = include_str!("../deploy/coppelia-bridge.rules.yml");
const CONFIG: &str = include_str!("../deploy/prometheus.yml");

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Whole identifiers (`[a-zA-Z0-9_:]+`) in `text` that satisfy `keep`.
fn identifiers(text: &str, keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    text.split(|c: char| !is_name_char(c))
        .filter(|w| !w.is_empty() && keep(w))
        .map(str::to_owned)
        .collect()
}

/// Bridge metric names (`coppelia_bridge_…`, no colon: recording rules have colons).
fn bridge_metrics(text: &str) -> BTreeSet<String> {
    identifiers(text, |w| {
        w.starts_with("coppelia_bridge_") && !w.contains(':')
    })
}

/// Recording rule names as used (`level:metric:operations`).
fn recorded(text: &str) -> BTreeSet<String> {
    identifiers(text, |w| {
        w.contains(':') && w.contains("coppelia_bridge") && !w.starts_with(':')
    })
}

/// Every PromQL expression of the dashboard.
fn dashboard_exprs() -> Vec<String> {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for var in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = var["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    exprs
}

/// Family names the bridge exposes, with each summary's `_sum` and `_count`.
fn exposed() -> BTreeSet<String> {
    let text = render_prometheus(
        &sample_run_snapshot(),
        &ExportLabels::new("host-1", "scene"),
    );
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            names.insert(name.to_owned());
            if kind == "summary" {
                names.insert(format!("{name}_sum"));
                names.insert(format!("{name}_count"));
            }
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_rules_query_is_exposed() {
    let exposed = exposed();
    let mut queried = BTreeSet::new();
    for expr in dashboard_exprs() {
        queried.extend(bridge_metrics(&expr));
    }
    queried.extend(bridge_metrics(RULES));
    assert!(queried.len() >= 10, "too few metrics found: {queried:?}");
    let missing: Vec<_> = queried.difference(&exposed).collect();
    assert!(
        missing.is_empty(),
        "queried in deploy/ but not exposed by the bridge: {missing:?}\nexposed: {exposed:?}"
    );
}

#[test]
fn every_recording_rule_used_is_defined() {
    let defined: BTreeSet<String> = RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|n| n.trim().to_owned())
        .collect();
    assert!(defined.len() >= 4, "{defined:?}");
    let mut used = BTreeSet::new();
    for expr in dashboard_exprs() {
        used.extend(recorded(&expr));
    }
    // Rule expressions (not the `record:` lines themselves).
    let exprs: String = RULES
        .lines()
        .filter(|l| !l.trim().starts_with("- record:"))
        .collect::<Vec<_>>()
        .join("\n");
    used.extend(recorded(&exprs));
    let undefined: Vec<_> = used.difference(&defined).collect();
    assert!(
        undefined.is_empty(),
        "used but never recorded: {undefined:?}"
    );
}

#[test]
fn the_scrape_config_keeps_the_bridges_instance_label_and_loads_the_rules() {
    assert!(CONFIG.contains("honor_labels: true"));
    assert!(CONFIG.contains("- coppelia-bridge.rules.yml"));
    for alert in [
        "CoppeliaBridgeRtfBelowTarget",
        "CoppeliaBridgeLossHigh",
        "CoppeliaBridgeDummySilent",
    ] {
        assert!(RULES.contains(&format!("alert: {alert}")), "{alert}");
    }
}
