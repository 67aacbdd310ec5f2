//! Helpers shared by integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use coppelia_bridge::metrics::RunSnapshot;

/// Path of the built binary.
pub fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("coppelia-bridge")
}

/// A `coppelia-bridge` child whose stderr is scanned for a line.
pub struct Bridge {
    pub child: Child,
    pub stderr_lines: mpsc::Receiver<String>,
    /// Every stderr line so far, including those `wait_for` consumed.
    all_stderr: Arc<Mutex<Vec<String>>>,
    /// The thread reading stderr; joined by `finish_with_stderr` (it ends at the child's exit).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    pub fn spawn(args: &[&str]) -> Bridge {
        let mut cmd = Command::new(bin());
        cmd.args(args).env("RUST_LOG", "info");
        Bridge::from_command(cmd)
    }

    /// Any command that ends up running the bridge (e.g. under `unshare`), its stdout and
    /// stderr piped.
    pub fn from_command(mut cmd: Command) -> Bridge {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coppelia-bridge");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let all_stderr = Arc::new(Mutex::new(Vec::new()));
        let all = all_stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[bridge] {line}");
                all.lock().unwrap().push(line.clone());
                // The receiver may be gone (the test stopped waiting): keep draining.
                let _ = tx.send(line);
            }
        });
        Bridge {
            child,
            stderr_lines: rx,
            all_stderr,
            reader: Some(reader),
        }
    }

    /// Waits for exit (bounded); returns the status, stdout and every stderr line.
    pub fn finish_with_stderr(
        mut self,
        timeout: Duration,
    ) -> (std::process::ExitStatus, String, Vec<String>) {
        let reader = self.reader.take();
        let all = self.all_stderr.clone();
        let (status, stdout) = self.finish(timeout);
        if let Some(r) = reader {
            r.join().unwrap();
        }
        let lines = std::mem::take(&mut *all.lock().unwrap());
        (status, stdout, lines)
    }

    /// Waits (bounded) for a stderr line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {needle:?} within {timeout:?}"),
            }
        }
    }

    /// The UDP address from the "listening for UDP datagrams on ADDR" line.
    pub fn udp_addr(&self) -> String {
        let line = self.wait_for("listening for UDP datagrams on ", Duration::from_secs(60));
        after(&line, "listening for UDP datagrams on ")
    }

    /// Waits for exit (bounded) and returns stdout, read while the bridge ends: a pipe
    /// nobody reads would block its last lines.
    /// A test that closed stdout itself gets "".
    pub fn finish(mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let pipe = self.child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            if let Some(mut pipe) = pipe {
                std::io::Read::read_to_string(&mut pipe, &mut out).unwrap();
            }
            out
        });
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, reader.join().unwrap());
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("bridge did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The first whitespace-delimited word after `marker` in `line` (ANSI codes stripped).
pub fn after(line: &str, marker: &str) -> String {
    let rest = &line[line.find(marker).expect("marker") + marker.len()..];
    rest.split_whitespace()
        .next()
        .unwrap()
        .trim_matches(|c: char| {
            !c.is_ascii_alphanumeric() && c != '.' && c != ':' && c != '[' && c != ']'
        })
        .to_owned()
}

/// Parses the last JSON line of stdout as the final snapshot.
pub fn final_snapshot(stdout: &str) -> RunSnapshot {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line on stdout");
    serde_json::from_str(line).expect("RunSnapshot JSON")
}

pub fn assert_close(what: &str, got: Option<f64>, want: f64, tol: f64) {
    let g = got.unwrap_or_else(|| panic!("{what} is unavailable, expected {want}"));
    assert!(
        (g - want).abs() <= tol,
        "{what} = {g}, expected {want} ± {tol}"
    );
}

/// True if lua5.3 can load LuaSocket; otherwise prints why (and fails under CI, where
/// scripts/setup-lua.sh must have installed them).
pub fn lua_ready() -> bool {
    let ok = std::process::Command::new("lua5.3")
        .args(["-e", "require('socket')"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but lua5.3 with LuaSocket is missing: run scripts/setup-lua.sh"
        );
        eprintln!("SKIPPED: lua5.3 with LuaSocket not installed (run scripts/setup-lua.sh)");
    }
    ok
}

/// `coppelia-bridge run` measuring only: no remote API, nothing written, no live view, the
/// final snapshot as the last JSON line of stdout.
pub const RUN_MEASURE_ONLY: &[&str] = &[
    "run",
    "--no-remote",
    "--no-out",
    "--no-tui",
    "--json-stream",
    "--print-interval",
    "1h",
];

/// [`RUN_MEASURE_ONLY`] on a free loopback port; `extra` adds or overrides flags.
pub fn bridge_no_remote(extra: &[&str]) -> Bridge {
    let mut args = RUN_MEASURE_ONLY.to_vec();
    args.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    args.extend_from_slice(extra);
    Bridge::spawn(&args)
}

/// `run --no-remote` on a free loopback port writing its run directory to `out`, final
/// snapshot on stdout; `extra` adds flags.
pub fn bridge_with_out(out: &std::path::Path, extra: &[&str]) -> Bridge {
    let mut args = RUN_MEASURE_ONLY.to_vec();
    args.retain(|a| *a != "--no-out");
    args.extend_from_slice(&["--listen", "127.0.0.1:0", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    Bridge::spawn(&args)
}

/// `coppelia-bridge emit --to ADDR` with `flags` (dummies, rate, duration...), its output
/// discarded; panics unless it succeeds.
pub fn emit(to: &str, flags: &[&str]) {
    let status = Command::new(bin())
        .args(["emit", "--to", to])
        .args(flags)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "emit {flags:?} failed");
}

/// A loopback TCP port that refuses connections, held for as long as the socket lives: a
/// socket bound but never listening answers SYNs with RST (as a closed port), and nobody else
/// can bind the number meanwhile. (Binding a listener, reading its port and dropping it
/// releases the port to any other test running in parallel.)
pub fn refusing_tcp_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// A loopback UDP port where nothing is received, held for as long as the socket lives: the
/// socket is connected to another peer (port 1), so the kernel delivers nobody else's
/// datagrams to it and answers them with ICMP port unreachable, as for a closed port; and
/// nobody else can bind the number meanwhile.
pub fn refusing_udp_port() -> (std::net::UdpSocket, u16) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect("127.0.0.1:1").unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// The clock offset estimate of `d` (echo mode, 10 ms passes), after the checks every clock
/// test makes: present, from at least 10 exchanges, holding the true offset within its bound
/// (2 µs of slack for timestamp rounding: the bound is honest however late the scripts read
/// their echoes, so no load tolerance), and tighter than 100 ms (echoes are read once per
/// 10 ms pass, so the bound is a few ms; 100 ms leaves room for any stall of a loaded
/// machine).
pub fn checked_clock(
    d: &coppelia_bridge::metrics::DummySnapshot,
    true_offset_s: f64,
) -> coppelia_bridge::metrics::ClockOffsetStats {
    let c = d
        .clock
        .unwrap_or_else(|| panic!("{}: no clock estimate", d.name));
    assert!(c.exchanges >= 10, "{}: {c:?}", d.name);
    assert!(
        (c.offset_s - true_offset_s).abs() <= c.bound_s + 2e-6,
        "{}: the true offset ({true_offset_s} s) lies within the bound: {c:?}",
        d.name
    );
    assert!(c.bound_s < 0.1, "{}: {c:?}", d.name);
    c
}

/// Runs `cmd` with its stdout a pipe whose reader exits at once (`cmd | head -0`); returns
/// its status and stderr.
pub fn output_with_stdout_closed(mut cmd: Command) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coppelia-bridge");
    drop(child.stdout.take()); // the reader exits
    child.wait_with_output().unwrap()
}
