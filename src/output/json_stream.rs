//! `--json-stream`: one JSON object per line on stdout, one line per snapshot interval.
//! Each line is a [`RunSnapshot`], the same shape as `summary.json`'s `final` member.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

use crate::metrics::RunSnapshot;

/// Lines that may wait for a slow reader of stdout before new ones are dropped. At 10,000
/// dummies a line is about 9 MB, so this is also a memory bound.
pub const LINES_QUEUED: usize = 4;

/// The snapshot as one compact JSON line (no trailing newline). Unavailable values are
/// `null`; non-finite floats, which JSON cannot represent, are `null` too (serde_json).
pub fn snapshot_json_line(snapshot: &RunSnapshot) -> String {
    serde_json::to_string(snapshot).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("cannot encode snapshot: {e}") }).to_string()
    })
}

/// Writes lines (`--json-stream`) on a thread of its own, so a reader that does not keep up
/// (a pipe nobody drains fills at 64 KiB and then blocks its writer) never stalls the run
/// loop, and with it the measurement. Up to [`LINES_QUEUED`] lines wait; a line that finds
/// the queue full is dropped and counted, the first drop logged. Dropping the writer waits
/// for the queued lines, so whatever is printed after it (the final line) comes last.
#[derive(Debug)]
pub struct LineWriter {
    /// The queue and the thread that empties it; `None` if no thread could be started.
    writer: Option<(SyncSender<String>, JoinHandle<()>)>,
    dropped: u64,
}

impl LineWriter {
    /// Lines to stdout.
    pub fn stdout() -> Self {
        Self::spawn(std::io::stdout(), LINES_QUEUED)
    }

    /// Lines to `out`, `queued` at most waiting. If no thread can be started, lines go to
    /// stdout from the caller's thread, as they did before this writer existed.
    pub fn spawn(mut out: impl Write + Send + 'static, queued: usize) -> Self {
        let (tx, rx) = sync_channel::<String>(queued);
        let thread = std::thread::Builder::new()
            .name("json-stream".into())
            .spawn(move || {
                for line in rx {
                    let written = out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .and_then(|()| out.flush());
                    if written.is_err() {
                        // A closed stdout (the reader exited): nothing more can be shown.
                        break;
                    }
                }
            });
        let writer = thread
            .inspect_err(|e| {
                tracing::warn!(kind = "warning", "no thread for --json-stream lines ({e}): they are printed by the run loop, which a slow reader of stdout can stall");
            })
            .ok()
            .map(|thread| (tx, thread));
        Self { writer, dropped: 0 }
    }

    /// Queues `line` (without its newline); false if it was dropped.
    pub fn send(&mut self, line: String) -> bool {
        let Some((tx, _)) = &self.writer else {
            println!("{line}");
            return true;
        };
        let why = match tx.try_send(line) {
            Ok(()) => return true,
            Err(TrySendError::Full(_)) => "stdout is not read as fast as lines come",
            Err(TrySendError::Disconnected(_)) => "stdout was closed",
        };
        self.dropped += 1;
        if self.dropped == 1 {
            tracing::warn!(
                kind = "warning",
                "a --json-stream line was dropped: {why} \
                 (the measurement goes on; read the pipe, or raise --print-interval)"
            );
        }
        false
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if let Some((tx, thread)) = self.writer.take() {
            drop(tx); // ends the thread once the queued lines are written
            let _ = thread.join();
        }
        if self.dropped > 0 {
            tracing::warn!(
                kind = "warning",
                "{} --json-stream line(s) were dropped: stdout was read too slowly or closed",
                self.dropped
            );
        }
    }
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

    /// A writer that blocks until the gate opens, then collects.
    struct Gated {
        gate: std::sync::mpsc::Receiver<()>,
        open: bool,
        out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.open {
                let _ = self.gate.recv();
                self.open = true;
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_costs_dropped_lines_never_a_blocked_sender() {
        let (open, gate) = std::sync::mpsc::channel();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let gated = Gated {
            gate,
            open: false,
            out: out.clone(),
        };
        let mut w = LineWriter::spawn(gated, 2);
        // The reader is stalled: at most 2 wait and 1 is in the writer's hands; the rest
        // are dropped, and send returns at once every time.
        let sent: Vec<bool> = (0..10).map(|i| w.send(format!("line {i}"))).collect();
        let accepted = sent.iter().filter(|&&ok| ok).count();
        assert!((2..=3).contains(&accepted), "{sent:?}");
        assert_eq!(w.dropped(), 10 - accepted as u64);
        assert!(sent[..2].iter().all(|&ok| ok), "the first lines always fit");
        open.send(()).unwrap();
        drop(w); // waits for the queued lines
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), accepted);
        assert_eq!(lines[..2], ["line 0", "line 1"], "in order");
    }

    #[test]
    fn non_finite_values_become_null() {
        let mut s = sample_run_snapshot();
        s.dummies[0].rtf.last_1s = Some(f64::INFINITY);
        let v: serde_json::Value = serde_json::from_str(&snapshot_json_line(&s)).unwrap();
        assert!(v["dummies"][0]["rtf"]["last_1s"].is_null());
    }
}
