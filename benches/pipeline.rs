//! The whole receive pipeline of `coppelia-bridge run` against bare baseline receivers,
//! side by side in one run: same sender, same load, sender and receiver pinned to different
//! CPUs (where there are two), CPU time read from the kernel's per-thread accounting.
//!
//! `cargo bench --bench pipeline` runs the full measurement (a few minutes); under
//! `cargo test` it runs a tiny smoke version that checks the plumbing, not the speed.
//! `cargo bench --bench pipeline -- --scale` adds the 10,000-dummy run (60 s at 200,000/s);
//! `-- --only=steady|drain|scale` runs one part.
//!
//! Receivers (each a separate process, so its CPU time is its own):
//! - `recvmsg` baseline: one blocking `recvmsg` with `SO_TIMESTAMPNS` per datagram, nothing
//!   else (the cost any per-datagram receiver pays);
//! - `recvmmsg` baseline: `recvmmsg` drains of 64 with timestamps, nothing else (the floor
//!   for draining a queue);
//! - paced `recvmmsg` baseline (steady load only): the bridge's own read pattern and
//!   nothing else: drains of 64 with timestamps and source addresses, and after each
//!   drain a 10 ms pause (the bridge's default read cadence). What is left above it is the
//!   bridge's own work;
//! - the bridge: `coppelia-bridge run --no-remote`, with `--no-out` and with its run
//!   directory.
//!
//! Measurements:
//! 1. steady load: N dummies × 20 Hz for a while, sent by `coppelia-bridge emit` (one
//!    socket per dummy, every dummy once per pass, as CoppeliaSim's sensing phase does); CPU
//!    per datagram over the middle of it, loss, and the latency p50/p99 each receiver
//!    computes from the kernel stamps;
//! 2. drain: the receiver is stopped (SIGSTOP), 300,000 datagrams are queued (by this
//!    binary's own fast sender), then it is continued (SIGCONT); datagrams per second until
//!    its CPU goes quiet with the queue empty;
//! 3. (`--scale`) 10,000 dummies × 20 Hz: loss, RSS over time, memory per dummy against an
//!    empty run, outputs complete.
//!
//! The same binary plays the roles (`--role=...`) so no other program is needed.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BRIDGE: &str = env!("CARGO_BIN_EXE_coppelia-bridge");
/// Offset of `sent_unix_s` (f64 LE) in a v1 STAMP (docs/PROTOCOL.md).
const SENT_AT: usize = 24;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(role) = args.iter().find_map(|a| a.strip_prefix("--role=")) {
        roles::run(role, &args);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let scale = if full { Scale::full() } else { Scale::smoke() };
    println!(
        "coppelia-bridge pipeline ({} mode; {})",
        if full { "bench" } else { "smoke" },
        pinning_note()
    );
    let only = args.iter().find_map(|a| a.strip_prefix("--only="));
    if only.is_none_or(|o| o == "steady") {
        steady(&scale);
    }
    if only.is_none_or(|o| o == "drain") {
        drain(&scale);
    }
    if args.iter().any(|a| a == "--scale") || only == Some("scale") {
        scale_run(if full { 60 } else { 5 }, if full { 10_000 } else { 100 });
    }
}

struct Scale {
    dummies: u32,
    seconds: u32,
    /// Part of the run at each end left out of the CPU window.
    margin_s: u32,
    drain: u32,
    repeats: usize,
}

impl Scale {
    fn full() -> Self {
        Self {
            dummies: 1_000,
            seconds: 20,
            margin_s: 3,
            drain: 300_000,
            repeats: 3,
        }
    }

    fn smoke() -> Self {
        Self {
            dummies: 10,
            seconds: 2,
            margin_s: 0,
            drain: 2_000,
            repeats: 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Processes, pinning, CPU accounting

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn can_pin() -> bool {
    cpus() >= 2
        && Command::new("taskset")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn pinning_note() -> String {
    if can_pin() {
        "sender pinned to CPU 0, receivers to CPU 1".into()
    } else {
        format!("not pinned: {} CPU(s) or no taskset", cpus())
    }
}

/// `program args...`, pinned to `cpu` when possible.
fn command(cpu: usize, program: &str, args: &[String]) -> Command {
    if can_pin() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu.to_string()).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn me() -> String {
    std::env::current_exe()
        .expect("own path")
        .display()
        .to_string()
}

/// CPU time of every thread of `pid` so far, ns (`/proc/PID/task/*/schedstat`, field 1).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Bytes queued in the receive buffer of the UDP socket bound to `port`, and its drops
/// (`/proc/net/udp`).
fn udp_queue(port: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let want = format!(":{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if !f.get(1)?.ends_with(&want) {
            return None;
        }
        let rx = u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()?;
        Some((rx, f.get(12)?.parse().ok()?))
    })
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid we spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

// ---------------------------------------------------------------------------------------
// Receivers under test

#[derive(Debug, Clone, Copy, PartialEq)]
enum Receiver {
    Recvmsg,
    Recvmmsg,
    /// `recvmmsg` as the bridge reads: 10 ms pause after each drain, source addresses.
    RecvmmsgPaced,
    BridgeNoOut,
    BridgeRunDir,
    /// The run directory with `--samples-format bin`.
    BridgeRunDirBin,
}

impl Receiver {
    fn name(self) -> &'static str {
        match self {
            Receiver::Recvmsg => "bare recvmsg + SO_TIMESTAMPNS, per datagram",
            Receiver::Recvmmsg => "bare recvmmsg drain + SO_TIMESTAMPNS",
            Receiver::RecvmmsgPaced => "bare recvmmsg, 10 ms cadence (bridge's reads)",
            Receiver::BridgeNoOut => "coppelia-bridge run --no-out",
            Receiver::BridgeRunDir => "coppelia-bridge run (run directory)",
            Receiver::BridgeRunDirBin => "coppelia-bridge run (run dir, samples.bin)",
        }
    }

    /// The `--role` of a baseline receiver (this binary); `None` for the bridge.
    fn baseline_role(self) -> Option<&'static str> {
        match self {
            Receiver::Recvmsg => Some("recvmsg"),
            Receiver::Recvmmsg => Some("recvmmsg"),
            Receiver::RecvmmsgPaced => Some("recvmmsg-paced"),
            Receiver::BridgeNoOut | Receiver::BridgeRunDir | Receiver::BridgeRunDirBin => None,
        }
    }
}

/// A started receiver and where it listens.
struct Running {
    child: Child,
    port: u16,
    kind: Receiver,
    out: Option<PathBuf>,
    /// All of the receiver's stdout, read as it comes: a pipe nobody reads fills at 64 KiB
    /// and blocks the writer (the bridge's first `--json-stream` line at 100 dummies is
    /// ~93 KB, so the drain part measured a bridge stalled on stdout, not draining).
    stdout: std::thread::JoinHandle<String>,
}

/// What a receiver counted once it ended.
#[derive(Debug, Default)]
struct Counted {
    /// STAMPs received (the baselines count every datagram; their HELLOs are taken off).
    received: u64,
    latency_p50_us: f64,
    latency_p99_us: f64,
    samples_rows: Option<u64>,
}

fn start(kind: Receiver, expect: u64, work: &Path) -> Running {
    let (program, args, out) = match kind.baseline_role() {
        Some(role) => (
            me(),
            vec![format!("--role={role}"), format!("--expect={expect}")],
            None,
        ),
        None => {
            let mut a: Vec<String> = [
                "run",
                "--no-remote",
                "--no-tui",
                "--listen",
                "127.0.0.1:0",
                "--idle-timeout",
                "2s",
                // The empty run of the scale test (baseline RSS) sends nothing on purpose.
                "--allow-empty",
                "--json-stream",
                "--print-interval",
                "1h",
            ]
            .map(String::from)
            .to_vec();
            if kind == Receiver::BridgeRunDirBin {
                a.extend(["--samples-format".into(), "bin".into()]);
            }
            let out = (kind != Receiver::BridgeNoOut).then(|| {
                let dir = work.join(format!("run-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                dir
            });
            match &out {
                Some(d) => a.extend(["--out".into(), d.display().to_string()]),
                None => a.push("--no-out".into()),
            }
            (BRIDGE.to_owned(), a, out)
        }
    };
    let mut child = command(1, &program, &args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start receiver");
    let port = read_port(&mut child, kind);
    let mut pipe = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    Running {
        child,
        port,
        stdout,
        kind,
        out,
    }
}

/// Where a receiver listens: the baselines print `port N` on stderr; the bridge logs its
/// UDP address there. The rest of stderr is drained in the background; stdout is kept for
/// the final counts.
fn read_port(child: &mut Child, kind: Receiver) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let bridge = kind.baseline_role().is_none();
    let stream: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
    let mut lines = BufReader::new(stream).lines();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let port = if bridge {
            line.split("listening for UDP datagrams on 127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|p| p.parse().ok())
        } else {
            line.strip_prefix("port ")
                .and_then(|p| p.trim().parse().ok())
        };
        if let Some(p) = port {
            // Keep draining the rest so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return p;
        }
    }
    panic!("{kind:?} did not say where it listens");
}

fn finish(mut r: Running, dummies: u32) -> Counted {
    let status = r.child.wait().expect("receiver ends");
    let stdout = r.stdout.join().expect("stdout reader");
    assert!(status.success(), "{:?} failed: {status}", r.kind);
    match r.kind.baseline_role() {
        Some(_) => {
            let f: Vec<f64> = stdout
                .lines()
                .find_map(|l| l.strip_prefix("counted "))
                .expect("count line")
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Counted {
                received: (f[0] as u64).saturating_sub(u64::from(dummies)),
                latency_p50_us: f[1],
                latency_p99_us: f[2],
                samples_rows: None,
            }
        }
        None => bridge_counted(&stdout, r.out.as_deref()),
    }
}

/// From the bridge's last `--json-stream` line (its final snapshot) and its run directory.
fn bridge_counted(stdout: &str, out: Option<&Path>) -> Counted {
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("final JSON line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    let dummies = v["dummies"].as_array().cloned().unwrap_or_default();
    let received: u64 = dummies
        .iter()
        .map(|d| d["messages"].as_u64().unwrap_or(0))
        .sum();
    let median = |key: &str| {
        let mut xs: Vec<f64> = dummies
            .iter()
            .filter_map(|d| d["latency"][key].as_f64())
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let samples_rows = out.map(|d| match std::fs::metadata(d.join("samples.bin")) {
        // Header, then fixed records (docs/OUTPUT.md "samples.bin").
        Ok(m) => (m.len().saturating_sub(16)) / 56,
        Err(_) => {
            let text = std::fs::read(d.join("samples.csv")).unwrap_or_default();
            (text.iter().filter(|&&b| b == b'\n').count() as u64).saturating_sub(1)
        }
    });
    if let Some(d) = out {
        let _ = std::fs::remove_dir_all(d);
    }
    Counted {
        received,
        latency_p50_us: median("p50_us"),
        latency_p99_us: median("p99_us"),
        samples_rows,
    }
}

/// The project's own emulated dummies (`coppelia-bridge emit`), as a user would load a
/// bridge without CoppeliaSim: one socket per dummy, every dummy's STAMP once per pass.
fn emit(port: u16, dummies: u32, rate_hz: u32, seconds: u32) -> Child {
    let args: Vec<String> = [
        "emit".to_owned(),
        "--to".into(),
        format!("127.0.0.1:{port}"),
        "--dummies".into(),
        dummies.to_string(),
        "--rate-hz".into(),
        rate_hz.to_string(),
        "--duration".into(),
        format!("{seconds}s"),
    ]
    .to_vec();
    command(0, BRIDGE, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coppelia-bridge emit")
}

fn send(cpu: usize, args: &[String]) -> Child {
    command(cpu, &me(), args)
        .stdout(Stdio::null())
        .spawn()
        .expect("start sender")
}

fn sender_args(
    port: u16,
    dummies: u32,
    sockets: u32,
    rate_hz: u32,
    seconds: u32,
    blast: u64,
) -> Vec<String> {
    vec![
        "--role=sender".into(),
        format!("--to=127.0.0.1:{port}"),
        format!("--dummies={dummies}"),
        format!("--sockets={sockets}"),
        format!("--rate={rate_hz}"),
        format!("--seconds={seconds}"),
        format!("--blast={blast}"),
    ]
}

// ---------------------------------------------------------------------------------------
// 1. Steady load

fn steady(s: &Scale) {
    let rate = 20;
    let per_s = u64::from(s.dummies) * rate;
    let stamps = per_s * u64::from(s.seconds);
    println!(
        "\n1. steady load: {} dummies x {rate} Hz = {per_s} datagrams/s for {} s ({} in the CPU window), median of {}",
        s.dummies,
        s.seconds,
        per_s * u64::from(s.seconds - 2 * s.margin_s),
        s.repeats
    );
    println!(
        "   {:<46} {:>10} {:>9} {:>8} {:>10} {:>10}",
        "receiver", "CPU us/dg", "ratio", "lost", "lat p50us", "lat p99us"
    );
    let work = std::env::temp_dir();
    let kinds = [
        Receiver::Recvmsg,
        Receiver::RecvmmsgPaced,
        Receiver::BridgeNoOut,
        Receiver::BridgeRunDir,
        Receiver::BridgeRunDirBin,
    ];
    let mut baseline = None;
    for kind in kinds {
        let mut runs: Vec<(f64, Counted)> = (0..s.repeats)
            .map(|_| steady_once(kind, s, stamps + u64::from(s.dummies), &work))
            .collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (cpu, counted) = runs.swap_remove(runs.len() / 2);
        let base = *baseline.get_or_insert(cpu);
        let rows = counted
            .samples_rows
            .map_or(String::new(), |r| format!(" sample rows {r}"));
        println!(
            "   {:<46} {:>10.2} {:>8.2}x {:>8} {:>10.1} {:>10.1}{rows}",
            kind.name(),
            cpu,
            cpu / base,
            stamps.saturating_sub(counted.received),
            counted.latency_p50_us,
            counted.latency_p99_us,
        );
    }
}

/// One steady run; CPU µs per datagram over the middle window, and the counts.
fn steady_once(kind: Receiver, s: &Scale, expect: u64, work: &Path) -> (f64, Counted) {
    let r = start(kind, expect, work);
    let pid = r.child.id();
    let mut sender = emit(r.port, s.dummies, 20, s.seconds);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(u64::from(s.margin_s)));
    let (c0, w0) = (cpu_ns(pid), Instant::now());
    let window = Duration::from_secs(u64::from(s.seconds - 2 * s.margin_s));
    std::thread::sleep(window.saturating_sub(t0.elapsed().saturating_sub(w0 - t0)));
    let (c1, w1) = (cpu_ns(pid), Instant::now());
    sender.wait().expect("sender ends");
    let in_window = (w1 - w0).as_secs_f64() * f64::from(s.dummies) * 20.0;
    let cpu_us = (c1 - c0) as f64 / 1e3 / in_window.max(1.0);
    (cpu_us, finish(r, s.dummies))
}

// ---------------------------------------------------------------------------------------
// 2. Drain

fn drain(s: &Scale) {
    let n = u64::from(s.drain);
    let dummies = 100;
    println!(
        "\n2. drain: {n} datagrams from {dummies} dummies queued while the receiver is stopped (SIGSTOP), then SIGCONT"
    );
    println!(
        "   {:<46} {:>12} {:>9} {:>10} {:>12}",
        "receiver", "datagrams/s", "ratio", "received", "CPU us/dg"
    );
    let work = std::env::temp_dir();
    let mut baseline = None;
    for kind in [
        Receiver::Recvmmsg,
        Receiver::BridgeNoOut,
        Receiver::BridgeRunDir,
        Receiver::BridgeRunDirBin,
    ] {
        let (rate, cpu, counted) = drain_once(kind, n, dummies, &work);
        let base = *baseline.get_or_insert(rate);
        println!(
            "   {:<46} {:>12.0} {:>8.2}x {:>10} {:>12.3}",
            kind.name(),
            rate,
            rate / base,
            counted.received,
            cpu
        );
    }
}

fn drain_once(kind: Receiver, n: u64, dummies: u32, work: &Path) -> (f64, f64, Counted) {
    // HELLOs go first, while the receiver runs (so the bridge knows every dummy).
    let expect = n + u64::from(dummies);
    let r = start(kind, expect, work);
    let pid = r.child.id();
    signal(pid, libc::SIGSTOP);
    let mut sender = send(0, &sender_args(r.port, dummies, dummies, 0, 0, n));
    sender.wait().expect("sender ends");
    // Wait until the kernel holds the whole burst (the sender's last sends are in flight).
    let settle = Instant::now();
    let mut last = udp_queue(r.port);
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = udp_queue(r.port);
        if now == last || settle.elapsed() > Duration::from_secs(5) {
            break;
        }
        last = now;
    }
    let drops = udp_queue(r.port).map_or(0, |q| q.1);
    if drops > 0 {
        println!("   (the kernel dropped {drops} datagrams: the receive buffer is too small)");
    }
    let c0 = cpu_ns(pid);
    let t0 = Instant::now();
    signal(pid, libc::SIGCONT);
    // Done when the queue is empty and the receiver's CPU has been quiet for 50 ms.
    let (mut last_cpu, mut last_busy) = (c0, t0);
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let c = cpu_ns(pid);
        let now = Instant::now();
        if c > last_cpu + 200_000 {
            last_busy = now;
        }
        last_cpu = c;
        let empty = udp_queue(r.port).is_none_or(|q| q.0 == 0);
        if (empty && now - last_busy > Duration::from_millis(50))
            || now - t0 > Duration::from_secs(60)
        {
            break;
        }
    }
    let secs = (last_busy - t0).as_secs_f64().max(1e-6);
    let cpu_us = (last_cpu - c0) as f64 / 1e3 / n as f64;
    let counted = finish(r, dummies);
    (n as f64 / secs, cpu_us, counted)
}

// ---------------------------------------------------------------------------------------
// 3. Scale: 10,000 dummies

/// Dummies per sending socket in the scale run. One thread on one core cannot send 200,000
/// datagrams/s from 10,000 sockets (about 6 µs of kernel work per `send`, most of it the
/// loopback delivery; measured 157,773/s): it batches each socket's dummies with `sendmmsg`.
/// The bridge keys v1 dummies by id and host, not port, so this changes nothing it sees
/// but the source ports.
const SCALE_DUMMIES_PER_SOCKET: u32 = 100;

fn scale_run(seconds: u32, dummies: u32) {
    let rate = 20;
    println!(
        "\n3. scale: {dummies} dummies x {rate} Hz = {} datagrams/s for {seconds} s, run directory on",
        u64::from(dummies) * rate
    );
    let work = std::env::temp_dir();
    let empty = idle_rss(&work);
    let sent = u64::from(dummies) * rate * u64::from(seconds);
    let r = start(Receiver::BridgeRunDir, sent, &work);
    let pid = r.child.id();
    let sockets = (dummies / SCALE_DUMMIES_PER_SOCKET).max(1);
    let mut sender = send(
        0,
        &sender_args(r.port, dummies, sockets, rate as u32, seconds, 0),
    );
    let mut rss = Vec::new();
    let (t0, c0) = (Instant::now(), cpu_ns(pid));
    while sender.try_wait().expect("sender").is_none() {
        std::thread::sleep(Duration::from_secs(1));
        rss.push((t0.elapsed().as_secs(), rss_kib(pid)));
    }
    let took = t0.elapsed().as_secs_f64();
    // The bridge's CPU while the sender ran (its backlog, if any, is drained after): how
    // much of its one core the load took, i.e. the headroom left.
    let busy = cpu_ns(pid).saturating_sub(c0) as f64 / 1e9 / took;
    let peak = rss.iter().map(|r| r.1).max().unwrap_or(0);
    let counted = finish(r, dummies);
    let warm: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= u64::from(seconds) / 4)
        .map(|r| r.1)
        .collect();
    let (lo, hi) = (
        warm.iter().min().copied().unwrap_or(0),
        warm.iter().max().copied().unwrap_or(0),
    );
    println!(
        "   sent {sent} in {took:.0} s ({:.0} datagrams/s; one sender thread, {sockets} sockets of {} dummies, sendmmsg), counted {}, lost {}; samples.csv rows {:?}",
        sent as f64 / took,
        dummies / sockets,
        counted.received,
        sent.saturating_sub(counted.received),
        counted.samples_rows
    );
    println!(
        "   bridge CPU while sending: {:.0} % of one core, {:.2} us per datagram sent",
        100.0 * busy,
        busy * took * 1e6 / sent as f64
    );
    println!(
        "   RSS after warm-up {lo}..{hi} KiB ({:+.1} %), peak {peak} KiB; empty run {empty} KiB; per dummy (warm max - empty) {:.1} KiB",
        100.0 * (hi as f64 - lo as f64) / lo.max(1) as f64,
        (hi.saturating_sub(empty)) as f64 / f64::from(dummies)
    );
    let series: Vec<String> = rss.iter().map(|(t, k)| format!("{t}s:{k}")).collect();
    println!("   RSS series (KiB): {}", series.join(" "));
}

/// RSS of a bridge that receives nothing, after a few seconds.
fn idle_rss(work: &Path) -> u64 {
    let r = start(Receiver::BridgeRunDir, 0, work);
    let pid = r.child.id();
    // One datagram so the idle timeout (2 s) can end it.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    std::thread::sleep(Duration::from_secs(3));
    let rss = rss_kib(pid);
    sock.send_to(b"x", SocketAddr::from(([127, 0, 0, 1], r.port)))
        .expect("send");
    finish(r, 0);
    rss
}

// ---------------------------------------------------------------------------------------
// Roles

mod roles {
    use super::*;

    fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn run(role: &str, args: &[String]) {
        match role {
            "recvmsg" => receive(args, Read::PerDatagram),
            "recvmmsg" => receive(args, Read::Drain),
            "recvmmsg-paced" => receive(args, Read::Paced(Duration::from_millis(10))),
            "sender" => sender(args),
            other => panic!("unknown role {other}"),
        }
    }

    fn bound() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let fd = s.as_raw_fd();
        let on: libc::c_int = 1;
        let big: libc::c_int = 256 << 20;
        for (opt, v) in [(libc::SO_TIMESTAMPNS, &on), (libc::SO_RCVBUFFORCE, &big)] {
            // SAFETY: `v` outlives the call and its size is passed.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s
    }

    /// The kernel stamp in a control buffer the kernel filled.
    ///
    /// # Safety
    /// `msg` must come from a successful recvmsg/recvmmsg.
    unsafe fn stamp(msg: &libc::msghdr) -> Option<i64> {
        // SAFETY: the caller guarantees the kernel filled `msg`'s control buffer.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    return Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
                }
                c = libc::CMSG_NXTHDR(msg, c);
            }
        }
        None
    }

    fn latency_us(payload: &[u8], kernel_ns: Option<i64>) -> Option<f32> {
        let sent = f64::from_le_bytes(payload.get(SENT_AT..SENT_AT + 8)?.try_into().ok()?);
        Some(((kernel_ns? as f64 / 1e9 - sent) * 1e6) as f32)
    }

    /// How a baseline receiver reads.
    #[derive(Clone, Copy, PartialEq)]
    enum Read {
        /// One `recvmsg` per datagram.
        PerDatagram,
        /// `recvmmsg` of up to 64, at once again.
        Drain,
        /// `recvmmsg` of up to 64 with source addresses; once the queue is empty (a short
        /// read), a pause before the next read, as the bridge's read cadence does.
        Paced(Duration),
    }

    /// Counts datagrams until `expect` arrived or 2 s of silence; prints the count and the
    /// latency p50/p99 from the kernel stamps.
    fn receive(args: &[String], read: Read) {
        let batched = read != Read::PerDatagram;
        let expect: u64 = arg(args, "expect", u64::MAX);
        let sock = bound();
        eprintln!("port {}", sock.local_addr().expect("addr").port());
        let fd = sock.as_raw_fd();
        let mut lat: Vec<f32> = Vec::with_capacity(expect.min(50_000_000) as usize);
        let mut got = 0u64;
        const N: usize = 64;
        let mut bufs = vec![[0u8; 2048]; N];
        let mut ctrl = vec![[0u64; 16]; N];
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut names: Vec<libc::sockaddr_storage> =
            (0..N).map(|_| unsafe { std::mem::zeroed() }).collect();
        // SAFETY: all-zero is valid for these C structs.
        let mut hdrs: Vec<libc::mmsghdr> = (0..N).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut iovs: Vec<libc::iovec> = (0..N)
            .map(|_| libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            })
            .collect();
        while got < expect {
            let n = if batched { N } else { 1 };
            for i in 0..n {
                iovs[i] = libc::iovec {
                    iov_base: bufs[i].as_mut_ptr().cast(),
                    iov_len: 2048,
                };
                let h = &mut hdrs[i].msg_hdr;
                if let Read::Paced(_) = read {
                    h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                    h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                } else {
                    h.msg_name = std::ptr::null_mut();
                    h.msg_namelen = 0;
                }
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
                h.msg_control = ctrl[i].as_mut_ptr().cast();
                h.msg_controllen = 128;
            }
            // SAFETY: headers point into live buffers of the stated sizes.
            let r = unsafe {
                if batched {
                    libc::recvmmsg(
                        fd,
                        hdrs.as_mut_ptr(),
                        N as u32,
                        libc::MSG_WAITFORONE,
                        std::ptr::null_mut(),
                    )
                } else {
                    let len = libc::recvmsg(fd, &mut hdrs[0].msg_hdr, 0);
                    if len >= 0 {
                        hdrs[0].msg_len = len as u32;
                        1
                    } else {
                        -1
                    }
                }
            };
            if r < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue; // SIGSTOP/SIGCONT of the drain measurement
                }
                break; // 2 s of silence
            }
            for (i, h) in hdrs[..r as usize].iter().enumerate() {
                let len = h.msg_len as usize;
                // SAFETY: filled by the kernel just now.
                let k = unsafe { stamp(&h.msg_hdr) };
                if let Some(l) = latency_us(&bufs[i][..len.min(2048)], k) {
                    lat.push(l);
                }
            }
            got += r as u64;
            if let Read::Paced(pause) = read {
                if (r as usize) < N {
                    std::thread::sleep(pause);
                }
            }
        }
        lat.sort_by(f32::total_cmp);
        let q = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(f32::NAN)
        };
        println!("counted {got} {} {}", q(0.5), q(0.99));
    }

    /// `dummies` dummies on `sockets` sockets (default one each; dummy `i` on socket
    /// `i % sockets`); HELLO each, then either `rate` Hz passes for `seconds` (all dummies'
    /// STAMPs in a burst per pass, as CoppeliaSim's sensing phase sends them, each socket's
    /// share in `sendmmsg` batches) or, with `blast` > 0, that many STAMPs as fast as possible.
    fn sender(args: &[String]) {
        use coppelia_bridge::wire::{Hello, Message, Stamp, NO_RTT};
        let to: SocketAddr = arg(args, "to", SocketAddr::from(([127, 0, 0, 1], 8888)));
        let dummies: u32 = arg(args, "dummies", 1);
        let rate: u32 = arg(args, "rate", 20);
        let seconds: u32 = arg(args, "seconds", 1);
        let blast: u64 = arg(args, "blast", 0);
        let sockets: u32 = arg(args, "sockets", dummies).clamp(1, dummies.max(1));
        let socks: Vec<UdpSocket> = (0..sockets)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.connect(to).expect("connect");
                s
            })
            .collect();
        let sock = |id: u32| &socks[(id % sockets) as usize];
        for id in 0..dummies {
            let hello = Message::Hello(Hello {
                dummy_id: id,
                dt_s: 0.05,
                script_version: 1,
                flags: 0,
                name: format!("Dummy{id}"),
            });
            let _ = sock(id).send(&hello.encode());
        }
        let now_s = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let stamp = |id: u32, seq: u32| {
            Message::Stamp(Stamp {
                dummy_id: id,
                seq,
                step: seq,
                sim_time_s: f64::from(seq) * 0.05,
                sent_unix_s: now_s(),
                rtt_us: NO_RTT,
            })
            .encode()
        };
        if blast > 0 {
            for i in 0..blast {
                let id = (i % u64::from(dummies)) as u32;
                let seq = (i / u64::from(dummies)) as u32;
                let _ = sock(id).send(&stamp(id, seq));
            }
            return;
        }
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let start = Instant::now();
        for k in 0..seconds * rate {
            let due = start + period * k;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            for (i, s) in socks.iter().enumerate() {
                let batch: Vec<Vec<u8>> = (i as u32..dummies)
                    .step_by(sockets as usize)
                    .map(|id| stamp(id, k))
                    .collect();
                for chunk in batch.chunks(64) {
                    send_batch(s, chunk);
                }
            }
        }
    }

    /// Every datagram of `batch` on the connected socket `s`, with as few `sendmmsg` calls
    /// as the kernel allows (a datagram it refuses is dropped, as `send` errors are above).
    fn send_batch(s: &UdpSocket, batch: &[Vec<u8>]) {
        let mut iov: Vec<libc::iovec> = batch
            .iter()
            .map(|d| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain data; zeroed is a valid value (no address, no control).
        let mut hdrs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let mut done = 0;
        while done < hdrs.len() {
            // SAFETY: the headers point into `iov` and `batch`, which outlive the call.
            let n = unsafe {
                libc::sendmmsg(
                    s.as_raw_fd(),
                    hdrs[done..].as_mut_ptr(),
                    (hdrs.len() - done) as libc::c_uint,
                    0,
                )
            };
            // On an error the first datagram is the one refused: skip it.
            done += if n > 0 { n as usize } else { 1 };
        }
    }
}
