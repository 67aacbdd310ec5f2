//! Prometheus text exposition format 0.0.4 and a tiny `GET /metrics` server.
//!
//! Format rules followed (Prometheus "Exposition formats", text format 0.0.4): one
//! `# HELP` and `# TYPE` line per metric family, samples of a family grouped together,
//! label values escaped (`\\`, `\"`, `\n`). Names follow Prometheus "Metric and label
//! naming": counters end in `_total`, units are base units in the name (`_seconds`,
//! `_ratio`, `_hertz`), so latencies are exported in seconds although the rest of the tool
//! shows µs. Distributions are summaries (`quantile` labels plus `_sum` and `_count`); their
//! maximum, which a summary cannot carry, is a separate `_max_seconds` gauge. Every sample
//! carries `instance` and `scene` labels (scrape with `honor_labels: true`, see
//! `deploy/prometheus.yml`). Unavailable values (a legacy dummy's latency or loss) are left
//! out, never exported as 0.
//!
//! The server faces the network like the receivers (docs/RELIABILITY.md): on an address
//! other than loopback it answers only peers inside `--allow`, serves a bounded number of
//! connections at once, reads at most [`MAX_HEAD`] bytes of request within a
//! timeout, and gives up on a client that does not take its answer in time. What it refuses
//! is counted in `summary.json`'s `refused` (`metrics_*`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::collector::AllowList;
use crate::event::{ReceiverEvent, ReceiverStatus, Refusal};
use crate::metrics::{DummySnapshot, LatencyStats, RunSnapshot};

const PREFIX: &str = "coppelia_bridge";

/// What names this bridge's series among many (labels on every sample), and the RTF it aims
/// for (exported so alert rules compare against each bridge's own target).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportLabels {
    /// `--instance`: the simulation host or name (label `instance`).
    pub instance: String,
    /// The scene being measured (label `scene`), e.g. the scene file's stem.
    pub scene: String,
    /// `--target-rtf`, or 1.
    pub target_rtf: f64,
}

impl ExportLabels {
    /// Scene label when the bridge does not know the scene (attached to a running one).
    pub const UNKNOWN_SCENE: &'static str = "unknown";

    pub fn new(instance: impl Into<String>, scene: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            scene: scene.into(),
            target_rtf: 1.0,
        }
    }

    /// The scene label for a scene file: its name without `.simscene.xml`/`.ttt`.
    pub fn scene_of_path(path: &std::path::Path) -> String {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = [".simscene.xml", ".ttt", ".xml"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext))
            .unwrap_or(&name);
        if stem.is_empty() {
            Self::UNKNOWN_SCENE.to_owned()
        } else {
            stem.to_owned()
        }
    }

    fn render(&self) -> String {
        format!(
            "instance=\"{}\",scene=\"{}\"",
            escape(&self.instance),
            escape(&self.scene)
        )
    }
}

impl From<String> for ExportLabels {
    /// An instance name alone; the scene is unknown.
    fn from(instance: String) -> Self {
        Self::new(instance, Self::UNKNOWN_SCENE)
    }
}

impl From<&str> for ExportLabels {
    fn from(instance: &str) -> Self {
        Self::from(instance.to_owned())
    }
}

/// Metric type of a family.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    Summary,
}

/// One sample: label text (without braces), optional name suffix (`_sum`, `_count` of a
/// summary), value.
type Sample = (String, &'static str, f64);

/// Accumulates families in order; each family's samples stay together.
#[derive(Debug, Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[(String, f64)]) {
        let samples: Vec<Sample> = samples.iter().map(|(l, v)| (l.clone(), "", *v)).collect();
        self.family_with_suffixes(name, kind, help, &samples);
    }

    fn family_with_suffixes(&mut self, name: &str, kind: Kind, help: &str, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
        };
        let _ = writeln!(self.out, "# HELP {PREFIX}_{name} {help}");
        let _ = writeln!(self.out, "# TYPE {PREFIX}_{name} {kind}");
        for (labels, suffix, value) in samples {
            let _ = writeln!(
                self.out,
                "{PREFIX}_{name}{suffix}{{{labels}}} {}",
                number(*value)
            );
        }
    }

    /// A summary family (quantiles, `_sum`, `_count`, in seconds) and its `_max_seconds`
    /// gauge, from distributions in µs.
    fn latency(&mut self, name: &str, help: &str, dists: &[(String, &LatencyStats)]) {
        let mut samples = Vec::new();
        for (labels, l) in dists {
            samples.extend(summary_samples(l, labels));
        }
        self.family_with_suffixes(&format!("{name}_seconds"), Kind::Summary, help, &samples);
        let max: Vec<_> = dists
            .iter()
            .map(|(labels, l)| (labels.clone(), l.max_us / 1e6))
            .collect();
        self.family(
            &format!("{name}_max_seconds"),
            Kind::Gauge,
            &format!("Largest value of {PREFIX}_{name}_seconds."),
            &max,
        );
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

fn dummy_labels(d: &DummySnapshot, base: &str) -> String {
    format!("dummy=\"{}\",dummy_id=\"{}\",{base}", escape(&d.name), d.id)
}

/// The snapshot in text exposition format 0.0.4, every sample labelled with `labels`, so
/// several bridges can feed one Prometheus.
pub fn render_prometheus(s: &RunSnapshot, labels: &ExportLabels) -> String {
    let mut e = Exposition::default();
    let base = labels.render();
    run_families(&mut e, s, labels, &base);
    sim_families(&mut e, s, &base);
    dummy_families(&mut e, s, &base);
    e.out
}

fn run_families(e: &mut Exposition, s: &RunSnapshot, labels: &ExportLabels, base: &str) {
    e.family(
        "info",
        Kind::Gauge,
        "Always 1; the bridge's version in a label.",
        &[(
            format!("version=\"{}\",{base}", env!("CARGO_PKG_VERSION")),
            1.0,
        )],
    );
    e.family(
        "elapsed_seconds",
        Kind::Gauge,
        "Wall time since the run started.",
        &[(base.to_owned(), s.elapsed_s)],
    );
    e.family(
        "target_rtf",
        Kind::Gauge,
        "Real-time factor the run aims for (--target-rtf, default 1).",
        &[(base.to_owned(), labels.target_rtf)],
    );
    e.family(
        "dummies",
        Kind::Gauge,
        "Dummies known to the bridge.",
        &[(base.to_owned(), s.dummies.len() as f64)],
    );
    let messages: u64 = s.dummies.iter().map(|d| d.messages).sum();
    e.family(
        "messages_total",
        Kind::Counter,
        "Messages counted over all dummies (current sessions).",
        &[(base.to_owned(), messages as f64)],
    );
    let (lost, expected) = s
        .dummies
        .iter()
        .filter_map(|d| d.loss.as_ref())
        .fold((0u64, 0u64), |(l, x), loss| {
            (l + loss.lost, x + loss.expected)
        });
    if expected > 0 {
        e.family(
            "loss_ratio",
            Kind::Gauge,
            "Lost / expected messages over all dummies with sequence numbers (0..1).",
            &[(base.to_owned(), lost as f64 / expected as f64)],
        );
    }
    if let Some(l) = &s.latency {
        e.latency(
            "latency",
            "One-way latency over every message of the run (all dummies merged).",
            &[(base.to_owned(), l)],
        );
    }
    let drops: Vec<_> = s
        .kernel_drops
        .map(|d| (base.to_owned(), d as f64))
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
            r.by_reason.iter().map(move |(reason, n)| {
                (
                    format!(
                        "source=\"{}\",reason=\"{}\",{base}",
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
}

fn sim_families(e: &mut Exposition, s: &RunSnapshot, base: &str) {
    let Some(simsnap) = &s.sim else { return };
    let up = f64::from(u8::from(simsnap.state != "unreachable"));
    e.family(
        "sim_up",
        Kind::Gauge,
        "1 if the CoppeliaSim remote API answers.",
        &[(base.to_owned(), up)],
    );
    let state = vec![(format!("state=\"{}\",{base}", escape(&simsnap.state)), 1.0)];
    e.family(
        "sim_state",
        Kind::Gauge,
        "CoppeliaSim state (label), always 1.",
        &state,
    );
    let t: Vec<_> = simsnap
        .sim_time_s
        .map(|v| (base.to_owned(), v))
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
        &rtf_samples(&simsnap.rtf, base),
    );
    if let Some(rtt) = &simsnap.remote_rtt {
        e.latency(
            "remote_rtt",
            "Remote API call round trip.",
            &[(base.to_owned(), rtt)],
        );
    }
    e.family(
        "sim_disconnected_seconds",
        Kind::Gauge,
        "Time the remote API was unreachable during the run.",
        &[(base.to_owned(), simsnap.disconnected_s)],
    );
}

/// RTF windows as `window` labels: `1s`, `10s`, `total`, and `worst_1s` (the lowest complete
/// 1 s window so far).
fn rtf_samples(rtf: &crate::metrics::RtfStats, labels: &str) -> Vec<(String, f64)> {
    [
        ("1s", rtf.last_1s),
        ("10s", rtf.last_10s),
        ("total", rtf.total),
        ("worst_1s", rtf.worst_1s),
    ]
    .into_iter()
    .filter_map(|(w, v)| v.map(|v| (format!("window=\"{w}\",{labels}"), v)))
    .collect()
}

/// A summary's samples in seconds: the fixed percentile list as `quantile` labels, then
/// `_sum` (mean × count) and `_count`.
fn summary_samples(l: &LatencyStats, labels: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = [
        ("0.5", l.p50_us),
        ("0.9", l.p90_us),
        ("0.99", l.p99_us),
        ("0.999", l.p999_us),
    ]
    .into_iter()
    .map(|(q, us)| (format!("quantile=\"{q}\",{labels}"), "", us / 1e6))
    .collect();
    out.push((labels.to_owned(), "_sum", l.mean_us * l.count as f64 / 1e6));
    out.push((labels.to_owned(), "_count", l.count as f64));
    out
}

/// Per-dummy family: one sample per dummy for which `value` is available.
fn per_dummy(
    s: &RunSnapshot,
    base: &str,
    value: impl Fn(&DummySnapshot) -> Option<f64>,
) -> Vec<(String, f64)> {
    s.dummies
        .iter()
        .filter_map(|d| value(d).map(|v| (dummy_labels(d, base), v)))
        .collect()
}

fn dummy_families(e: &mut Exposition, s: &RunSnapshot, base: &str) {
    let rtf: Vec<_> = s
        .dummies
        .iter()
        .flat_map(|d| rtf_samples(&d.rtf, &dummy_labels(d, base)))
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
        &per_dummy(s, base, |d| d.rate.wall_hz_1s),
    );
    let lat: Vec<_> = s
        .dummies
        .iter()
        .filter_map(|d| d.latency.as_ref().map(|l| (dummy_labels(d, base), l)))
        .collect();
    e.latency(
        "dummy_latency",
        "One-way latency of a dummy (receive time - sender wall time).",
        &lat,
    );
    e.family(
        "dummy_jitter_seconds",
        Kind::Gauge,
        "RFC 3550 interarrival jitter.",
        &per_dummy(s, base, |d| d.jitter_rfc3550_us.map(|j| j / 1e6)),
    );
    e.family(
        "dummy_loss_ratio",
        Kind::Gauge,
        "Lost / expected messages (0..1).",
        &per_dummy(s, base, |d| d.loss.as_ref().map(|l| l.loss_pct / 100.0)),
    );
    e.family(
        "dummy_off_target",
        Kind::Gauge,
        "1 if the 1 s RTF is off the target by more than the tolerance.",
        &per_dummy(s, base, |d| Some(f64::from(u8::from(d.off_target)))),
    );
    e.family(
        "dummy_session",
        Kind::Gauge,
        "Session number (+1 when seq or simulation time restarts).",
        &per_dummy(s, base, |d| Some(f64::from(d.session))),
    );
    dummy_counters(e, s, base);
}

fn dummy_counters(e: &mut Exposition, s: &RunSnapshot, base: &str) {
    e.family(
        "dummy_messages_total",
        Kind::Counter,
        "Messages counted in the current session.",
        &per_dummy(s, base, |d| Some(d.messages as f64)),
    );
    e.family(
        "dummy_lost_total",
        Kind::Counter,
        "Messages lost (seq gaps) in the current session.",
        &per_dummy(s, base, |d| d.loss.as_ref().map(|l| l.lost as f64)),
    );
    e.family(
        "dummy_duplicates_total",
        Kind::Counter,
        "Extra copies of messages received.",
        &per_dummy(s, base, |d| d.loss.as_ref().map(|l| l.duplicates as f64)),
    );
    e.family(
        "dummy_reordered_total",
        Kind::Counter,
        "Messages that arrived after a higher seq.",
        &per_dummy(s, base, |d| d.loss.as_ref().map(|l| l.reordered as f64)),
    );
    e.family(
        "dummy_clock_warnings_total",
        Kind::Counter,
        "Latencies rejected as negative or implausible.",
        &per_dummy(s, base, |d| Some(d.clock_warnings as f64)),
    );
    e.family(
        "dummy_clock_offset_seconds",
        Kind::Gauge,
        "Bridge clock minus the dummy's clock, from ECHO exchanges (echo mode only).",
        &per_dummy(s, base, |d| d.clock.map(|c| c.offset_s)),
    );
    e.family(
        "dummy_clock_offset_bound_seconds",
        Kind::Gauge,
        "The clock offset is known within plus or minus this.",
        &per_dummy(s, base, |d| d.clock.map(|c| c.bound_s)),
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

/// Caps of the `/metrics` endpoint: it faces the same network as the receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsLimits {
    /// Connections served at once; more are closed at accept. Prometheus scrapes one at a
    /// time per target, so a few cover several scrapers.
    pub max_conns: usize,
    /// The whole request head must arrive within this long.
    pub read_timeout: Duration,
    /// The whole answer must be taken within this long (a client that never reads).
    pub write_timeout: Duration,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        Self {
            max_conns: 16,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// A bound `/metrics` listener (bind and serve are split so tests can bind port 0 and
/// learn the address).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
    allow: AllowList,
    limits: MetricsLimits,
    status: Option<mpsc::WeakSender<ReceiverEvent>>,
}

impl MetricsServer {
    /// Binds `addr`, serving anyone with the default limits; see [`Self::with_allow`].
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsServerError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(Self {
            listener,
            addr,
            allow: AllowList::Any,
            limits: MetricsLimits::default(),
            status: None,
        })
    }

    /// Serves only peers `allow` accepts (others are closed at accept and counted).
    pub fn with_allow(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    pub fn with_limits(mut self, limits: MetricsLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reports what it refuses as [`ReceiverStatus::Refused`] into the receivers' queue (weak:
    /// it does not keep the run's queue open).
    pub fn with_status(mut self, tx: mpsc::WeakSender<ReceiverEvent>) -> Self {
        self.status = Some(tx);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers connections until the task is dropped. Accept errors (e.g. out of file
    /// descriptors) are logged and retried after a pause: the scrape endpoint must not
    /// end the run.
    pub async fn serve(self, rx: watch::Receiver<RunSnapshot>, labels: impl Into<ExportLabels>) {
        let labels = labels.into();
        let slots = Arc::new(Semaphore::new(self.limits.max_conns));
        let counts = Arc::new(Counts::new(self.status.clone()));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("cannot accept Prometheus connections on {}: {e}", self.addr);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            };
            let refusal = if !self.allow.allows(peer.ip()) {
                Some(Refusal::MetricsOutsideAllow)
            } else {
                None
            };
            let permit = match refusal {
                None => slots.clone().try_acquire_owned().ok(),
                Some(_) => None,
            };
            let Some(permit) = permit else {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                drop(stream);
                counts
                    .add(refusal.unwrap_or(Refusal::MetricsOverConnCap), peer)
                    .await;
                continue;
            };
            let body = render_prometheus(&rx.borrow(), &labels);
            let (limits, counts) = (self.limits, counts.clone());
            tokio::spawn(async move {
                let answered = answer(stream, body, &limits).await;
                // The slot is free before the refusal is reported.
                drop(permit);
                if let Err(e) = answered {
                    tracing::debug!("metrics connection from {peer}: {e}");
                    counts.add(Refusal::MetricsBadRequest, peer).await;
                }
            });
        }
    }
}

/// What the endpoint refused so far, reported as cumulative totals.
#[derive(Debug)]
struct Counts {
    outside: AtomicU64,
    over_cap: AtomicU64,
    bad: AtomicU64,
    status: Option<mpsc::WeakSender<ReceiverEvent>>,
}

impl Counts {
    fn new(status: Option<mpsc::WeakSender<ReceiverEvent>>) -> Self {
        Self {
            outside: AtomicU64::new(0),
            over_cap: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            status,
        }
    }

    async fn add(&self, what: Refusal, last: SocketAddr) {
        let counter = match what {
            Refusal::MetricsOutsideAllow => &self.outside,
            Refusal::MetricsOverConnCap => &self.over_cap,
            _ => &self.bad,
        };
        let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(tx) = self.status.as_ref().and_then(mpsc::WeakSender::upgrade) {
            let _ = tx
                .send(ReceiverEvent::Status(ReceiverStatus::Refused {
                    what,
                    total,
                    last,
                }))
                .await;
        }
    }
}

/// Pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(200);

/// Binds `addr` and serves `GET /metrics` from the latest snapshot in `rx`; returns only
/// on a bind error (abort the task to stop it).
pub async fn serve_metrics(
    addr: SocketAddr,
    rx: watch::Receiver<RunSnapshot>,
    labels: impl Into<ExportLabels>,
) -> Result<(), MetricsServerError> {
    MetricsServer::bind(addr).await?.serve(rx, labels).await;
    Ok(())
}

/// Largest request head read, bytes; scrapers send a few hundred.
pub const MAX_HEAD: usize = 8192;

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_owned())
}

/// Reads one request head and writes the answer, each within its timeout. A head that
/// reaches [`MAX_HEAD`] without its blank line is an error (the connection is closed
/// unanswered, and counted).
async fn answer(
    mut stream: TcpStream,
    metrics: String,
    limits: &MetricsLimits,
) -> std::io::Result<()> {
    let head = tokio::time::timeout(limits.read_timeout, read_head(&mut stream))
        .await
        .map_err(|_| timed_out("request head timeout"))??;
    let response = respond(&head, &metrics);
    tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| timed_out("answer not read in time"))?
}

/// The request head (up to the blank line), at most [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = RequestHead::default();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || head.push(&chunk[..n]) {
            break;
        }
    }
    if head.len() >= MAX_HEAD && !head.is_complete() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("request head longer than {MAX_HEAD} bytes"),
        ));
    }
    Ok(head.text())
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

    /// Whether the blank line ending the head has arrived.
    pub fn is_complete(&self) -> bool {
        self.buf.windows(4).any(|w| w == b"\r\n\r\n")
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
        let text = render_prometheus(&sample_run_snapshot(), &"lab".into());
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
