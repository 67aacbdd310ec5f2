//! The deployment in `deploy/` against the real Prometheus server (Debian's `prometheus`
//! package, 2.42, installed by `scripts/setup-prometheus.sh`): `promtool` accepts the
//! config and rules, and a server scraping two bridges running demos with different
//! `--instance` holds both instances' RTF and latency series with plausible values.
//!
//! Ports: the bridges and Prometheus all listen on 127.0.0.1 port 0 and the test reads the
//! bound addresses from their logs (Prometheus 2.42 logs `Listening on` with the real port),
//! so no port is guessed. Every wait is bounded.
//!
//! Without `prometheus`/`promtool` the tests skip with a message; under `CI=true` they first
//! run `scripts/setup-prometheus.sh` (apt-get) and fail if it cannot install them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether prometheus and promtool are usable; installs them under CI. `false` means skip
/// (the reason is printed).
fn prometheus_available() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let have = || on_path("prometheus") && on_path("promtool");
        if have() {
            return true;
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            let status = Command::new("sh")
                .arg(repo().join("scripts/setup-prometheus.sh"))
                .status();
            assert!(
                status.is_ok_and(|s| s.success()) && have(),
                "CI=true: scripts/setup-prometheus.sh could not install prometheus/promtool"
            );
            return true;
        }
        eprintln!(
            "SKIPPED: prometheus and promtool are not installed; run \
             `bash scripts/setup-prometheus.sh` (Debian package prometheus) to run these tests"
        );
        false
    })
}

#[test]
fn promtool_accepts_the_deployed_config_and_rules() {
    if !prometheus_available() {
        return;
    }
    for (what, file) in [
        ("config", "deploy/prometheus.yml"),
        ("rules", "deploy/coppelia-bridge.rules.yml"),
    ] {
        let out = Command::new("promtool")
            .args(["check", what])
            .arg(repo().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {what} {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains("WARNING"), "{text}");
    }
}

/// A child process killed (and reaped) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` with stderr piped and waits (bounded) for a stderr line containing `marker`;
/// returns the child and the text after the marker on that line. Later lines are drained
/// in a thread so the child never blocks on a full pipe.
fn spawn_until(mut cmd: Command, marker: &'static str, within: Duration) -> (Reaped, String) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = Reaped(cmd.spawn().expect("spawn"));
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(i) = line.find(marker) {
                    let _ = tx.send(Ok(line[i + marker.len()..].to_owned()));
                    sent = true;
                } else {
                    seen.push(line);
                }
            }
        }
        if !sent {
            let _ = tx.send(Err(seen.join("\n")));
        }
    });
    match rx.recv_timeout(within) {
        Ok(Ok(rest)) => (child, rest),
        Ok(Err(log)) => panic!("process ended before logging {marker:?}:\n{log}"),
        Err(_) => panic!("no {marker:?} within {within:?}"),
    }
}

/// A bridge running a demo with `instance`, metrics on a port 0 address; returns it and the
/// bound metrics address.
fn bridge(instance: &str) -> (Reaped, SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coppelia-bridge"));
    cmd.args([
        "--color",
        "never",
        "demo",
        "--no-tui",
        "--no-out",
        "--duration",
        "120s",
        "--dummies",
        "3",
        "--instance",
        instance,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let (child, rest) = spawn_until(
        cmd,
        "Prometheus metrics on http://",
        Duration::from_secs(60),
    );
    let addr = rest
        .split('/')
        .next()
        .unwrap()
        .parse()
        .expect("metrics address");
    (child, addr)
}

/// The real Prometheus with a config scraping `targets` every second and loading the
/// deployed rules; returns it and its web address.
fn prometheus(dir: &Path, targets: &[SocketAddr]) -> (Reaped, SocketAddr) {
    let rules = repo().join("deploy/coppelia-bridge.rules.yml");
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\n\
         scrape_configs:\n  - job_name: coppelia-bridge\n    honor_labels: true\n    \
         static_configs:\n      - targets: [{}]\n",
        rules.display(),
        list.join(", ")
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        // Port 0: the kernel picks a free port; the log line below names it.
        .arg("--web.listen-address=127.0.0.1:0");
    let (child, rest) = spawn_until(
        cmd,
        "msg=\"Listening on\" address=",
        Duration::from_secs(60),
    );
    let addr = rest
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .expect("web address");
    (child, addr)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over HTTP/1.0 (no chunking), bounded; the whole response.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// GET, the JSON body.
fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let resp = get(addr, path);
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"))
}

/// Waits (bounded) until Prometheus says it is ready (it answers 503 while its storage
/// starts).
fn wait_ready(web: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let resp = get(web, "/-/ready");
        if resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready within {within:?}: {resp}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Instant query; `(instance, value)` of every series.
fn query(web: SocketAddr, promql: &str) -> Vec<(String, f64)> {
    let v = get_json(
        web,
        &format!("/api/v1/query?query={}", percent_encode(promql)),
    );
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let instance = r["metric"]["instance"].as_str().unwrap_or("").to_owned();
            let value = r["value"][1].as_str().unwrap().parse().unwrap();
            (instance, value)
        })
        .collect()
}

/// Polls `promql` until both instances have a series (bounded), then returns the series.
fn both_instances(web: SocketAddr, promql: &str, within: Duration) -> Vec<(String, f64)> {
    let deadline = Instant::now() + within;
    loop {
        let series = query(web, promql);
        let has = |i: &str| series.iter().any(|(inst, _)| inst == i);
        if has("sim-a") && has("sim-b") {
            return series;
        }
        assert!(
            Instant::now() < deadline,
            "{promql}: both instances not present within {within:?}: {series:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn prometheus_scrapes_two_bridges_and_keeps_their_instance_labels() {
    if !prometheus_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_a, addr_a) = bridge("sim-a");
    let (_b, addr_b) = bridge("sim-b");
    let (_prom, web) = prometheus(dir.path(), &[addr_a, addr_b]);
    let within = Duration::from_secs(60);
    wait_ready(web, within);

    // RTF: the demo runs the stand-in in real time, so ~1 (loose bounds: 2 shared cores).
    let rtf = both_instances(web, "coppelia_bridge_sim_rtf{window=\"1s\"}", within);
    for (instance, v) in &rtf {
        assert!((0.5..=1.5).contains(v), "{instance} sim RTF {v}");
    }
    let dummy_rtf = both_instances(web, "coppelia_bridge_dummy_rtf{window=\"total\"}", within);
    assert_eq!(dummy_rtf.len(), 6, "3 dummies per bridge: {dummy_rtf:?}");
    // Latency over loopback: positive and well under a second.
    let p50 = both_instances(
        web,
        "coppelia_bridge_latency_seconds{quantile=\"0.5\"}",
        within,
    );
    for (instance, v) in &p50 {
        assert!(*v > 0.0 && *v < 0.5, "{instance} latency p50 {v} s");
    }
    let count = both_instances(web, "coppelia_bridge_latency_seconds_count", within);
    assert!(count.iter().all(|(_, n)| *n > 0.0), "{count:?}");
    // The deployed recording rules evaluate against real scrapes.
    let min_rtf = both_instances(
        web,
        "instance_scene:coppelia_bridge_dummy_rtf_1s:min",
        within,
    );
    assert!(min_rtf.iter().all(|(_, v)| *v > 0.0), "{min_rtf:?}");
    // honor_labels: the bridge's instance, not the target address, and a scene label.
    let info = query(web, "coppelia_bridge_info");
    assert!(
        info.iter().all(|(i, _)| i == "sim-a" || i == "sim-b"),
        "{info:?}"
    );
    let scenes = get_json(
        web,
        &format!(
            "/api/v1/label/scene/values?match[]={}",
            percent_encode("coppelia_bridge_info")
        ),
    );
    assert_eq!(scenes["data"][0], "coppelia_bridge_3dummies", "{scenes}");
    let rules = get_json(web, "/api/v1/rules");
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{rules}");
    for group in groups {
        for rule in group["rules"].as_array().unwrap() {
            // "unknown" until first evaluated; "err" would be a broken rule.
            assert_ne!(rule["health"], "err", "{rule}");
        }
    }
}
