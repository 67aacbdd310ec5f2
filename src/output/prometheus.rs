//! Prometheus text exposition format 0.0.4 and a tiny `GET /metrics` server.
//!
//! Format rules followed (Prometheus "Exposition formats", text format 0.0.4): one
//! `# HELP` and `# TYPE` line per metric family, samples of a family grouped together,
//! label values escaped (`\\`, `\"`, `\n`), counters named `_total`. Units are base units
//! (seconds, hertz, ratio) as Prometheus naming practice asks, so latencies are exported
//! in seconds although the rest of the tool shows µs. Unavailable values (a legacy dummy's
//! latency or loss) are left out, never exported as 0.

use std::fmt::Write as _;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::metrics::{DummySnapshot, LatencyStats, RunSnapshot};

const PREFIX: &str = "coppelia_bridge";

/// Metric type of a family.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// Accumulates families in order; each family's samples stay together.
#[derive(Debug, Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[(String, f64)]) {
        if samples.is_empty() {
            return;
        }
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.out, "{PREFIX}_{name}{{{labels}}} {}", number(*value));
        }
    }
}

/// Go-style float text as Prometheus expects (`+Inf`, `-Inf`, `NaN`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// Escapes a label value: backslash, double quote and line feed (text format 0.0.4).
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

fn sim_labels(instance: &str) -> String {
    format!("sim=\"{}\"", escape(instance))
}

fn dummy_labels(d: &DummySnapshot, instance: &str) -> String {
    format!(
        "dummy=\"{}\",dummy_id=\"{}\",{}",
        escape(&d.name),
        d.id,
        sim_labels(instance)
    )
}

/// The snapshot in text exposition format 0.0.4. `instance` names the simulation (label
/// `sim`), so several bridges can feed one Prometheus.
pub fn render_prometheus(s: &RunSnapshot, instance: &str) -> String {
    let mut e = Exposition::default();
    global_families(&mut e, s, instance);
    dummy_families(&mut e, s, instance);
    e.out
}

fn global_families(e: &mut Exposition, s: &RunSnapshot, instance: &str) {
    let sim = sim_labels(instance);
    e.family(
        "elapsed_seconds",
        Kind::Gauge,
        "Wall time since the run started.",
        &[(sim.clone(), s.elapsed_s)],
    );
    e.family(
        "dummies",
        Kind::Gauge,
        "Dummies known to the bridge.",
        &[(sim.clone(), s.dummies.len() as f64)],
    );
    let drops: Vec<_> = s
        .kernel_drops
        .map(|d| (sim.clone(), d as f64))
        .into_iter()
        .collect();
    e.family(
        "kernel_drops_total",
        Kind::Counter,
        "Datagrams the kernel dropped for lack of receive buffer (SO_RXQ_OVFL).",
        &drops,
    );
    let rejected: Vec<_> = s
        .rejected
        .iter()
        .flat_map(|r| {
            let sim = sim.clone();
            r.by_reason.iter().map(move |(reason, n)| {
                (
                    format!(
                        "source=\"{}\",reason=\"{}\",{sim}",
                        escape(&r.source),
                        escape(reason)
                    ),
                    *n as f64,
                )
            })
        })
        .collect();
    e.family(
        "rejected_total",
        Kind::Counter,
        "Datagrams rejected as malformed, per source address and reason.",
        &rejected,
    );
    let Some(simsnap) = &s.sim else { return };
    let up = f64::from(u8::from(simsnap.state != "unreachable"));
    e.family(
        "sim_up",
        Kind::Gauge,
        "1 if the CoppeliaSim remote API answers.",
        &[(sim.clone(), up)],
    );
    let state = vec![(format!("state=\"{}\",{sim}", escape(&simsnap.state)), 1.0)];
    e.family(
        "sim_state",
        Kind::Gauge,
        "CoppeliaSim state (label), always 1.",
        &state,
    );
    let t: Vec<_> = simsnap
        .sim_time_s
        .map(|v| (sim.clone(), v))
        .into_iter()
        .collect();
    e.family(
        "sim_time_seconds",
        Kind::Gauge,
        "CoppeliaSim simulation time.",
        &t,
    );
    e.family(
        "sim_rtf",
        Kind::Gauge,
        "Simulation-wide real-time factor per window (remote API poll).",
        &rtf_samples(&simsnap.rtf, &sim),
    );
    let rtt = simsnap
        .remote_rtt
        .as_ref()
        .map(|l| quantiles(l, &sim))
        .unwrap_or_default();
    e.family(
        "remote_rtt_seconds",
        Kind::Gauge,
        "Remote API call round trip, per quantile.",
        &rtt,
    );
    e.family(
        "sim_disconnected_seconds",
        Kind::Gauge,
        "Time the remote API was unreachable during the run.",
        &[(sim, simsnap.disconnected_s)],
    );
}

fn rtf_samples(rtf: &crate::metrics::RtfStats, labels: &str) -> Vec<(String, f64)> {
    [
        ("1s", rtf.last_1s),
        ("10s", rtf.last_10s),
        ("total", rtf.total),
    ]
    .into_iter()
    .filter_map(|(w, v)| v.map(|v| (format!("window=\"{w}\",{labels}"), v)))
    .collect()
}

/// The fixed percentile list as `quantile` labels, in seconds; max is quantile 1.
fn quantiles(l: &LatencyStats, labels: &str) -> Vec<(String, f64)> {
    [
        ("0.5", l.p50_us),
        ("0.9", l.p90_us),
        ("0.99", l.p99_us),
        ("0.999", l.p999_us),
        ("1", l.max_us),
    ]
    .into_iter()
    .map(|(q, us)| (format!("quantile=\"{q}\",{labels}"), us / 1e6))
    .collect()
}

/// Per-dummy family: one sample per dummy for which `value` is available.
fn per_dummy(
    s: &RunSnapshot,
    instance: &str,
    value: impl Fn(&DummySnapshot) -> Option<f64>,
) -> Vec<(String, f64)> {
    s.dummies
        .iter()
        .filter_map(|d| value(d).map(|v| (dummy_labels(d, instance), v)))
        .collect()
}

fn dummy_families(e: &mut Exposition, s: &RunSnapshot, instance: &str) {
    let rtf: Vec<_> = s
        .dummies
        .iter()
        .flat_map(|d| rtf_samples(&d.rtf, &dummy_labels(d, instance)))
        .collect();
    e.family(
        "dummy_rtf",
        Kind::Gauge,
        "Real-time factor of a dummy per window.",
        &rtf,
    );
    e.family(
        "dummy_rate_hertz",
        Kind::Gauge,
        "Messages per wall second over the last 1 s.",
        &per_dummy(s, instance, |d| d.rate.wall_hz_1s),
    );
    let lat: Vec<_> = s
        .dummies
        .iter()
        .filter_map(|d| {
            d.latency
                .as_ref()
                .map(|l| quantiles(l, &dummy_labels(d, instance)))
        })
        .flatten()
        .collect();
    e.family(
        "dummy_latency_seconds",
        Kind::Gauge,
        "One-way latency (receive time - sender wall time), per quantile.",
        &lat,
    );
    e.family(
        "dummy_jitter_seconds",
        Kind::Gauge,
        "RFC 3550 interarrival jitter.",
        &per_dummy(s, instance, |d| d.jitter_rfc3550_us.map(|j| j / 1e6)),
    );
    e.family(
        "dummy_loss_ratio",
        Kind::Gauge,
        "Lost / expected messages (0..1).",
        &per_dummy(s, instance, |d| d.loss.as_ref().map(|l| l.loss_pct / 100.0)),
    );
    e.family(
        "dummy_off_target",
        Kind::Gauge,
        "1 if the 1 s RTF is off the target by more than the tolerance.",
        &per_dummy(s, instance, |d| Some(f64::from(u8::from(d.off_target)))),
    );
    e.family(
        "dummy_session",
        Kind::Gauge,
        "Session number (+1 when seq or simulation time restarts).",
        &per_dummy(s, instance, |d| Some(f64::from(d.session))),
    );
    e.family(
        "dummy_messages_total",
        Kind::Counter,
        "Messages counted in the current session.",
        &per_dummy(s, instance, |d| Some(d.messages as f64)),
    );
    e.family(
        "dummy_lost_total",
        Kind::Counter,
        "Messages lost (seq gaps) in the current session.",
        &per_dummy(s, instance, |d| d.loss.as_ref().map(|l| l.lost as f64)),
    );
    e.family(
        "dummy_duplicates_total",
        Kind::Counter,
        "Extra copies of messages received.",
        &per_dummy(s, instance, |d| {
            d.loss.as_ref().map(|l| l.duplicates as f64)
        }),
    );
    e.family(
        "dummy_reordered_total",
        Kind::Counter,
        "Messages that arrived after a higher seq.",
        &per_dummy(s, instance, |d| d.loss.as_ref().map(|l| l.reordered as f64)),
    );
    e.family(
        "dummy_clock_warnings_total",
        Kind::Counter,
        "Latencies rejected as negative or implausible.",
        &per_dummy(s, instance, |d| Some(d.clock_warnings as f64)),
    );
}

/// A failure of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    #[error("cannot listen for Prometheus on {addr}: {source} (port in use? pick another with --metrics-addr)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound `/metrics` listener (bind and serve are split so tests can bind port 0 and
/// learn the address).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsServerError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Self { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers connections until the task is dropped. Accept errors (e.g. out of file
    /// descriptors) are logged and retried after a pause: the scrape endpoint must not
    /// end the run.
    pub async fn serve(self, rx: watch::Receiver<RunSnapshot>, instance: String) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("cannot accept Prometheus connections on {}: {e}", self.addr);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let body = render_prometheus(&rx.borrow(), &instance);
            tokio::spawn(async move {
                if let Err(e) = answer(stream, body).await {
                    tracing::debug!("metrics connection: {e}");
                }
            });
        }
    }
}

/// Pause after a failed accept.
const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

/// Binds `addr` and serves `GET /metrics` from the latest snapshot in `rx`; returns only
/// on a bind error (abort the task to stop it).
pub async fn serve_metrics(
    addr: SocketAddr,
    rx: watch::Receiver<RunSnapshot>,
    instance: String,
) -> Result<(), MetricsServerError> {
    MetricsServer::bind(addr).await?.serve(rx, instance).await;
    Ok(())
}

/// Largest request head read, bytes; scrapers send a few hundred.
pub const MAX_HEAD: usize = 8192;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn answer(mut stream: TcpStream, metrics: String) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timeout"))??;
    let response = respond(&head, &metrics);
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = RequestHead::default();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.push(&chunk[..n]) {
            return Ok(head.text());
        }
    }
}

/// A request head as it arrives in reads of any size. Pure (no socket), so the fuzz target
/// `prometheus_http` can feed it arbitrary chunkings.
#[derive(Debug, Default)]
pub struct RequestHead {
    buf: Vec<u8>,
}

impl RequestHead {
    /// Appends received bytes, keeping at most [`MAX_HEAD`] so a client that never sends the
    /// blank line cannot make us hold more. Returns true when reading can stop: the head is
    /// complete (`\r\n\r\n`, RFC 9112 §2.1) or the cap is reached.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        // The terminator may straddle two reads: look from 3 bytes before the new ones.
        let from = self.buf.len().saturating_sub(3);
        let room = MAX_HEAD - self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.buf.len() >= MAX_HEAD || self.buf[from..].windows(4).any(|w| w == b"\r\n\r\n")
    }

    /// The bytes received so far, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing received yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The whole HTTP/1.1 response for a request head (pure). Only `GET /metrics` (query
/// ignored) is served; everything else gets 404 or 405.
pub fn respond(head: &str, metrics: &str) -> String {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics,
        ),
        (_, "/metrics") => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n",
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n",
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::sample_run_snapshot;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }

    #[test]
    fn special_floats_use_prometheus_spelling() {
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn legacy_dummy_has_no_latency_or_loss_samples() {
        let text = render_prometheus(&sample_run_snapshot(), "lab");
        let legacy: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("dummy_id=\"2\""))
            .collect();
        assert!(!legacy.is_empty());
        assert!(
            legacy
                .iter()
                .all(|l| !l.contains("latency") && !l.contains("lost")),
            "{legacy:?}"
        );
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert!(respond("GET /metrics HTTP/1.1\r\n\r\n", "x 1\n").starts_with("HTTP/1.1 200 OK"));
        assert!(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n", "").contains("version=0.0.4"));
        assert!(respond("GET / HTTP/1.1\r\n\r\n", "").starts_with("HTTP/1.1 404"));
        assert!(respond("POST /metrics HTTP/1.1\r\n\r\n", "").starts_with("HTTP/1.1 405"));
        assert!(respond("", "").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn head_ends_at_a_blank_line_split_across_reads() {
        let mut head = RequestHead::default();
        assert!(!head.push(b"GET /metrics HTTP/1.1\r\n\r"));
        assert!(head.push(b"\n"));
        assert!(respond(&head.text(), "x 1\n").starts_with("HTTP/1.1 200 OK"));
    }

    #[test]
    fn head_without_blank_line_is_capped() {
        // A client streaming header bytes forever: reading stops at MAX_HEAD, held bytes too.
        let mut head = RequestHead::default();
        let line = [b'a'; 1000];
        let mut reads = 0;
        while !head.push(&line) {
            reads += 1;
        }
        assert_eq!(reads, MAX_HEAD / line.len());
        assert_eq!(head.len(), MAX_HEAD);
        assert!(head.push(&line));
        assert_eq!(head.len(), MAX_HEAD);
    }
}
