//! The Prometheus exposition parses with an independent parser and carries the snapshot's
//! values; the `/metrics` server answers over loopback.

use std::time::Duration;

use coppelia_bridge::output::fixtures::sample_run_snapshot;
use coppelia_bridge::output::prometheus::{ExportLabels, MetricsServer};
use coppelia_bridge::output::render_prometheus;
use prometheus_parse::{Sample, Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("exposition parses")
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {metric} {labels:?}"))
}

fn gauge(s: &Sample) -> f64 {
    match s.value {
        Value::Gauge(v) => v,
        ref other => panic!("{} is not a gauge: {other:?}", s.metric),
    }
}

fn counter(s: &Sample) -> f64 {
    match s.value {
        Value::Counter(v) => v,
        ref other => panic!("{} is not a counter: {other:?}", s.metric),
    }
}

#[test]
fn values_match_the_snapshot() {
    let snap = sample_run_snapshot();
    let scrape = parse(&render_prometheus(
        &snap,
        &ExportLabels::new("lab-1", "pick_and_place"),
    ));
    let d1 = [
        ("dummy", "Dummy1"),
        ("dummy_id", "1"),
        ("instance", "lab-1"),
    ];
    let rtf = find(
        &scrape,
        "coppelia_bridge_dummy_rtf",
        &[d1[1], ("window", "1s")],
    );
    assert_eq!(gauge(rtf), snap.dummies[1].rtf.last_1s.unwrap());
    assert_eq!(rtf.labels.get("dummy"), Some("Dummy1"));
    assert_eq!(rtf.labels.get("instance"), Some("lab-1"));
    assert_eq!(rtf.labels.get("scene"), Some("pick_and_place"));
    let lat = find(&scrape, "coppelia_bridge_dummy_latency_seconds", &[d1[1]]);
    let Value::Summary(quantiles) = &lat.value else {
        panic!("latency is not a summary: {:?}", lat.value)
    };
    let p99 = quantiles.iter().find(|q| q.quantile == 0.99).unwrap().count;
    assert!((p99 - snap.dummies[1].latency.as_ref().unwrap().p99_us / 1e6).abs() < 1e-12);
    let lost = find(&scrape, "coppelia_bridge_dummy_lost_total", &d1);
    assert_eq!(counter(lost), 4.0);
    let dups = find(&scrape, "coppelia_bridge_dummy_duplicates_total", &d1);
    assert_eq!(counter(dups), 1.0);
    let msgs = find(
        &scrape,
        "coppelia_bridge_dummy_messages_total",
        &[("dummy_id", "0")],
    );
    assert_eq!(counter(msgs), 250.0);
    let off = find(&scrape, "coppelia_bridge_dummy_off_target", &d1);
    assert_eq!(gauge(off), 1.0);
    let rejected = find(
        &scrape,
        "coppelia_bridge_rejected_total",
        &[("reason", "bad_version")],
    );
    assert_eq!(counter(rejected), 3.0);
    let sim_rtf = find(
        &scrape,
        "coppelia_bridge_sim_rtf",
        &[("window", "1s"), ("instance", "lab-1")],
    );
    assert_eq!(gauge(sim_rtf), 0.97);
    let state = find(
        &scrape,
        "coppelia_bridge_sim_state",
        &[("state", "running")],
    );
    assert_eq!(gauge(state), 1.0);
}

#[test]
fn every_family_has_help_and_type_and_samples_stay_grouped() {
    let text = render_prometheus(&sample_run_snapshot(), &"lab".into());
    let mut seen = Vec::new();
    let mut current = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap();
            assert!(!seen.contains(&current), "family {current} declared twice");
            seen.push(current);
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            // A summary's family also holds its `_sum` and `_count` samples.
            let base = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .filter(|b| text.contains(&format!("# TYPE {b} summary")))
                .unwrap_or(name);
            assert_eq!(base, current, "sample outside its family: {line}");
        }
    }
    assert!(seen.len() > 10, "{seen:?}");
    for family in &seen {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
        if family.ends_with("_total") {
            assert!(text.contains(&format!("# TYPE {family} counter")));
        }
    }
}

/// Prometheus naming: base units in the name, every sample labelled with instance and
/// scene, distributions as summaries with `_sum` and `_count`.
#[test]
fn names_follow_prometheus_conventions_and_every_sample_has_instance_and_scene() {
    let text = render_prometheus(&sample_run_snapshot(), &ExportLabels::new("host-7", "arm"));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.contains("instance=\"host-7\"") && line.contains("scene=\"arm\""),
            "{line}"
        );
    }
    for summary in [
        "coppelia_bridge_dummy_latency_seconds",
        "coppelia_bridge_latency_seconds",
        "coppelia_bridge_remote_rtt_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {summary} summary")),
            "{summary}"
        );
        assert!(text.contains(&format!("{summary}_sum{{")), "{summary}");
        assert!(text.contains(&format!("{summary}_count{{")), "{summary}");
        assert!(
            text.contains(&format!("{summary}{{quantile=\"0.99\"")),
            "{summary}"
        );
        assert!(
            !text.contains(&format!("{summary}{{quantile=\"1\"")),
            "{summary}"
        );
    }
    let scrape = parse(&text);
    let count = find(
        &scrape,
        "coppelia_bridge_dummy_latency_seconds_count",
        &[("dummy_id", "1")],
    );
    let snap = sample_run_snapshot();
    let lat = snap.dummies[1].latency.as_ref().unwrap();
    assert_eq!(count.labels.get("quantile"), None);
    assert!(matches!(count.value, Value::Untyped(n) if n == lat.count as f64));
    let max = find(
        &scrape,
        "coppelia_bridge_dummy_latency_max_seconds",
        &[("dummy_id", "1")],
    );
    assert!((gauge(max) - lat.max_us / 1e6).abs() < 1e-12);
    let target = find(&scrape, "coppelia_bridge_target_rtf", &[]);
    assert_eq!(gauge(target), 1.0);
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            !name.ends_with("_us") && !name.ends_with("_ms"),
            "{name}: base units only"
        );
    }
}

#[test]
fn names_with_quotes_are_escaped_and_still_parse() {
    let mut snap = sample_run_snapshot();
    snap.dummies[0].name = "odd \"name\" \\ here".to_owned();
    let text = render_prometheus(&snap, &"lab".into());
    assert!(text.contains(r#"dummy="odd \"name\" \\ here""#));
    let scrape = parse(&text);
    let s = find(
        &scrape,
        "coppelia_bridge_dummy_messages_total",
        &[("dummy_id", "0")],
    );
    assert_eq!(counter(s), 250.0);
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn server_answers_metrics_and_404() {
    let (tx, rx) = tokio::sync::watch::channel(sample_run_snapshot());
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let task = tokio::spawn(server.serve(rx, "lab".to_owned()));
    let guard = Duration::from_secs(10);

    let response = tokio::time::timeout(guard, http_get(addr, "/metrics"))
        .await
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let scrape = parse(body);
    let msgs = find(
        &scrape,
        "coppelia_bridge_dummy_messages_total",
        &[("dummy_id", "0")],
    );
    assert_eq!(counter(msgs), 250.0);

    // A new snapshot is served on the next scrape.
    let mut next = sample_run_snapshot();
    next.dummies[0].messages = 999;
    tx.send(next).unwrap();
    let body = tokio::time::timeout(guard, http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert!(body.contains(
        "coppelia_bridge_dummy_messages_total{dummy=\"Dummy0\",dummy_id=\"0\",instance=\"lab\",scene=\"unknown\"} 999"
    ));

    let response = tokio::time::timeout(guard, http_get(addr, "/other"))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    task.abort();
}

#[tokio::test]
async fn bind_error_names_the_address_and_the_flag() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = MetricsServer::bind(addr).await.unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(err.contains("--metrics-addr"), "{err}");
}
