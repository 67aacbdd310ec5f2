//! `coppelia-bridge emit`: sends what a CoppeliaSim scene with N dummies would send.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::cli::parse_duration;
use crate::emitter::{DummyEmitter, LossModel};
use crate::wire::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};

/// Flags of `coppelia-bridge emit`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmitArgs {
    /// Bridge address: UDP, or TCP with --tcp (HOST:PORT; a host name works too).
    #[arg(
        long,
        default_value = "127.0.0.1:8888",
        env = "COPPELIA_BRIDGE_EMIT_TO",
        value_parser = crate::cli::parse::socket_addr
    )]
    pub to: SocketAddr,
    /// Number of dummies, each with its own socket (as each script has its own).
    #[arg(long, default_value_t = 4)]
    pub dummies: u32,
    /// Id of the first dummy; the others follow (Dummy0, Dummy1, ...).
    #[arg(long, default_value_t = 0)]
    pub first_id: u32,
    /// Simulation passes per wall-clock second, Hz (one STAMP per dummy per pass).
    #[arg(long, default_value_t = 20.0)]
    pub rate_hz: f64,
    /// Real-time factor to emulate: each pass advances simulation time by rtf / rate-hz seconds.
    #[arg(long, default_value_t = 1.0)]
    pub rtf: f64,
    /// How long to send (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Fraction of STAMPs not sent (seq still advances), evenly spread unless --loss-random.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Drop each STAMP independently with probability --loss (seeded by --seed).
    #[arg(long)]
    pub loss_random: bool,
    /// Random seed for --loss-random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Send the notebook's format: the ASCII id, then one raw f64 simulation time per pass.
    #[arg(long, conflicts_with_all = ["tcp", "echo"])]
    pub legacy: bool,
    /// Use TCP with <u32 length><payload> framing instead of UDP.
    #[arg(long)]
    pub tcp: bool,
    /// Ask the bridge for ECHOs and report the round trip in later STAMPs.
    #[arg(long)]
    pub echo: bool,
    /// Passes sent back to back per burst, as CoppeliaSim with a GUI may do (1 = no bursts).
    #[arg(long, default_value_t = 1)]
    pub burst: u32,
}

impl EmitArgs {
    fn validate(&self) -> anyhow::Result<()> {
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= 100_000.0) {
            bail!(
                "--rate-hz must be between 0 and 100000 (got {})",
                self.rate_hz
            );
        }
        if !(self.rtf.is_finite() && self.rtf > 0.0) {
            bail!("--rtf must be a positive number (got {})", self.rtf);
        }
        if !(0.0..1.0).contains(&self.loss) {
            bail!(
                "--loss is a fraction in [0, 1) (got {}); 5 % is --loss 0.05",
                self.loss
            );
        }
        if self.dummies == 0 || self.burst == 0 {
            bail!("--dummies and --burst must be at least 1");
        }
        Ok(())
    }

    /// Simulation time step the emulated scene uses.
    pub fn dt_s(&self) -> f64 {
        self.rtf / self.rate_hz
    }
}

/// What an emit run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmitReport {
    pub passes: u32,
    pub stamps_sent: u64,
    pub stamps_skipped: u64,
    pub send_errors: u64,
    pub echoes: u64,
}

/// Runs `coppelia-bridge emit`.
pub fn execute(args: EmitArgs) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = rt.block_on(emit(&args))?;
    use crate::output::format::count;
    println!(
        "emitted {} from {} to {}{}: {} sent, {} skipped (--loss), {}, {}",
        count(report.passes.into(), "pass"),
        count(args.dummies.into(), "dummy"),
        args.to,
        if args.tcp { " (TCP)" } else { "" },
        count(report.stamps_sent, "stamp"),
        report.stamps_skipped,
        count(report.send_errors, "send error"),
        count(report.echoes, "echo")
    );
    send_verdict(&args, &report)?;
    Ok(ExitCode::SUCCESS)
}

/// A run whose sends failed is a failed run: the message says how many and what to check.
fn send_verdict(args: &EmitArgs, report: &EmitReport) -> anyhow::Result<()> {
    if report.send_errors == 0 {
        return Ok(());
    }
    let attempted = report.stamps_sent + report.send_errors;
    let what = if report.stamps_sent == 0 {
        "every send failed".to_owned()
    } else {
        format!("{} of {attempted} sends failed", report.send_errors)
    };
    let listen = if args.tcp {
        format!("`coppelia-bridge run --tcp-listen {}`", args.to)
    } else {
        format!("`coppelia-bridge run --listen {}`", args.to)
    };
    anyhow::bail!(
        "{what} ({} to {}): is the bridge listening there ({listen})?",
        if args.tcp { "TCP" } else { "UDP" },
        args.to
    )
}

/// Sends for `args.duration`. Used by the command, tests and benchmarks.
pub async fn emit(args: &EmitArgs) -> anyhow::Result<EmitReport> {
    args.validate()?;
    let mut links = Vec::new();
    for i in 0..args.dummies {
        let id = args.first_id + i;
        let dummy = DummyEmitter::new(id, args.dt_s(), args.legacy, args.echo, args.tcp);
        let loss = if args.loss_random {
            LossModel::random(args.loss, args.seed.wrapping_add(u64::from(id)))
        } else {
            LossModel::even(args.loss)
        };
        links.push(Link::open(args, dummy, loss).await?);
    }
    let mut report = EmitReport::default();
    let start = Instant::now();
    let period = Duration::from_secs_f64(f64::from(args.burst) / args.rate_hz);
    let total_passes = (args.duration.as_secs_f64() * args.rate_hz).round() as u32;
    let mut step = 0u32;
    let mut burst_index = 0u32;
    while step < total_passes {
        tokio::time::sleep_until(start + period * burst_index).await;
        for _ in 0..args.burst.min(total_passes - step) {
            for link in &mut links {
                link.send_pass(step, &mut report).await;
            }
            step += 1;
        }
        burst_index += 1;
        for link in &mut links {
            link.poll_replies(&mut report);
        }
    }
    report.passes = step;
    // Give last ECHOs a moment, then say goodbye as sysCall_cleanup does.
    if args.echo {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for link in &mut links {
            link.poll_replies(&mut report);
        }
    }
    for link in &mut links {
        link.send_bye().await;
    }
    Ok(report)
}

/// One dummy's socket.
struct Link {
    dummy: DummyEmitter,
    loss: LossModel,
    to: SocketAddr,
    conn: Conn,
    last_connect_try: Option<Instant>,
    decoder: FrameDecoder,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(Option<TcpStream>),
}

impl Link {
    async fn open(args: &EmitArgs, dummy: DummyEmitter, loss: LossModel) -> anyhow::Result<Self> {
        let conn = if args.tcp {
            Conn::Tcp(None)
        } else {
            let local: SocketAddr = if args.to.is_ipv4() {
                "0.0.0.0:0".parse()?
            } else {
                "[::]:0".parse()?
            };
            let sock = UdpSocket::bind(local)
                .await
                .context("cannot open a UDP socket")?;
            // Connected, like LuaSocket's setpeername: ICMP errors come back as send errors.
            sock.connect(args.to)
                .await
                .with_context(|| format!("cannot address {}", args.to))?;
            Conn::Udp(sock)
        };
        let mut link = Link {
            dummy,
            loss,
            to: args.to,
            conn,
            last_connect_try: None,
            decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
        };
        // Every sysCall_init (HELLO) runs before the first sensing pass.
        if let Conn::Udp(_) = link.conn {
            let hello = link.dummy.hello();
            link.send(&hello).await;
        } else {
            link.ensure_tcp().await;
        }
        Ok(link)
    }

    async fn send_pass(&mut self, step: u32, report: &mut EmitReport) {
        self.ensure_tcp().await;
        if let Some(clock) = self.dummy.take_clock() {
            self.send(&clock).await;
        }
        let stamp = self.dummy.stamp(step, unix_now_s());
        if self.loss.drop_next() {
            report.stamps_skipped += 1;
            return;
        }
        let ok = self.send(&stamp).await;
        self.dummy.sent(ok);
        if ok {
            report.stamps_sent += 1;
        } else {
            report.send_errors += 1;
        }
    }

    /// TCP: (re)connect at most once per second and greet with HELLO, like the script.
    async fn ensure_tcp(&mut self) {
        let Conn::Tcp(stream) = &mut self.conn else {
            return;
        };
        if stream.is_some()
            || self
                .last_connect_try
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_connect_try = Some(Instant::now());
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(self.to)).await
        {
            let _ = s.set_nodelay(true);
            *stream = Some(s);
            self.decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let hello = self.dummy.hello();
            self.send(&hello).await;
        }
    }

    async fn send(&mut self, payload: &[u8]) -> bool {
        match &mut self.conn {
            Conn::Udp(s) => s.send(payload).await.is_ok(),
            Conn::Tcp(stream) => {
                let Some(s) = stream else {
                    return false;
                };
                let ok = s.write_all(&encode_frame(payload)).await.is_ok();
                if !ok {
                    *stream = None;
                }
                ok
            }
        }
    }

    fn poll_replies(&mut self, report: &mut EmitReport) {
        let mut buf = [0u8; 512];
        match &mut self.conn {
            Conn::Udp(s) => {
                while let Ok(n) = s.try_recv(&mut buf) {
                    if self.dummy.on_reply(&buf[..n], unix_now_s()).is_some() {
                        report.echoes += 1;
                    }
                }
            }
            Conn::Tcp(Some(s)) => {
                while let Ok(n) = s.try_read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    self.decoder.extend(&buf[..n]);
                }
                while let Ok(Some(frame)) = self.decoder.next_frame() {
                    if self.dummy.on_reply(&frame, unix_now_s()).is_some() {
                        report.echoes += 1;
                    }
                }
            }
            Conn::Tcp(None) => {}
        }
    }

    async fn send_bye(&mut self) {
        if let Some(bye) = self.dummy.bye() {
            self.send(&bye).await;
        }
        if let Conn::Tcp(Some(s)) = &mut self.conn {
            let _ = s.shutdown().await;
        }
    }
}

fn unix_now_s() -> f64 {
    crate::time::unix_now_ns() as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: EmitArgs,
    }

    #[test]
    fn failed_sends_fail_the_command_and_say_where_to_look() {
        let args = W::parse_from(["x", "--to", "127.0.0.1:9", "--tcp"]).a;
        let all_failed = EmitReport {
            send_errors: 160,
            ..EmitReport::default()
        };
        let e = send_verdict(&args, &all_failed).unwrap_err().to_string();
        assert!(
            e.starts_with("every send failed (TCP to 127.0.0.1:9)"),
            "{e}"
        );
        assert!(e.contains("--tcp-listen 127.0.0.1:9"), "{e}");
        let some = EmitReport {
            stamps_sent: 70,
            send_errors: 10,
            ..EmitReport::default()
        };
        let e = send_verdict(&args, &some).unwrap_err().to_string();
        assert!(e.starts_with("10 of 80 sends failed"), "{e}");
        assert!(send_verdict(&args, &EmitReport::default()).is_ok());
    }
}
