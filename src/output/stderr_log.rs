//! Log lines on stderr, written by a thread of their own while a run measures.
//!
//! The run loop logs (a dummy registered, a warning, the periodic lines of `--no-tui`). Written
//! from the loop itself, a stderr nobody reads (`run 2>&1 | less`, not scrolled) would stop
//! it once the pipe is full, and with it the receiving: the same stall `--json-stream` had on
//! stdout (`output::json_stream::LineWriter`). While a [`QueuedStderr`] is alive, every line
//! goes through a bounded queue to a writer thread; a line that finds the queue full is
//! dropped and counted, and the count is reported when the queue ends. `bridge.log` keeps
//! every line regardless. Outside a run (and after it) lines are written directly, in order
//! with the rest of stderr.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread at most (a few MB at most: a line is ~100–300 bytes).
pub const QUEUED_LINES: usize = 65_536;

/// The queue's sender and its count of dropped lines.
type Queue = (SyncSender<Vec<u8>>, Arc<AtomicU64>);

/// The queue of the run being measured, if any.
static QUEUE: Mutex<Option<Queue>> = Mutex::new(None);

/// The stderr writer of the tracing layer: queued while a [`QueuedStderr`] lives, direct
/// otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

/// One event's text, handed on when the formatter is done with it (on drop).
#[derive(Debug)]
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.0);
        let queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match queue {
            Some((tx, dropped)) => match tx.try_send(line) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            },
            // Nothing to do about a failed write to stderr: there is nowhere to say so.
            None => drop(std::io::stderr().write_all(&line)),
        }
    }
}

/// While alive, log lines on stderr go through a queue of `capacity` lines to a thread. On
/// drop, lines go direct again, the queued ones are written first (this waits for stderr),
/// and lines dropped meanwhile are reported.
#[derive(Debug)]
pub struct QueuedStderr {
    thread: Option<std::thread::JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

impl QueuedStderr {
    /// Starts the writer thread; `None` (lines stay direct) if no thread can be started.
    pub fn start(capacity: usize) -> Option<Self> {
        Self::start_on(std::io::stderr(), capacity)
    }

    fn start_on(mut out: impl Write + Send + 'static, capacity: usize) -> Option<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(capacity);
        let thread = std::thread::Builder::new()
            .name("stderr-log".into())
            .spawn(move || {
                // A failed write (stderr closed) loses the line; the queue is still emptied, so
                // the loggers never wait.
                for line in rx {
                    let _ = out.write_all(&line);
                }
            })
            .ok()?;
        let dropped = Arc::new(AtomicU64::new(0));
        *QUEUE.lock().unwrap_or_else(|e| e.into_inner()) = Some((tx, dropped.clone()));
        Some(Self {
            thread: Some(thread),
            dropped,
        })
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for QueuedStderr {
    fn drop(&mut self) {
        // Direct from now on; the thread ends once the queued lines are written.
        QUEUE.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let n = self.dropped();
        if n > 0 {
            tracing::warn!(
                kind = "warning",
                "{n} log line(s) were not shown on stderr: it was not read as fast as they came \
                 (bridge.log in the run directory has them all)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks until told to go on, then records what it got.
    struct Gate {
        go: mpsc::Receiver<()>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.go.recv();
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(text: &str) {
        let mut line = StderrWriter.make_writer();
        line.write_all(text.as_bytes()).unwrap();
    }

    /// One test for the whole lifecycle: the queue is process-wide state.
    #[test]
    fn a_stalled_stderr_never_blocks_the_logger_and_every_kept_line_is_written_in_order() {
        let (go, gate) = mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate {
            go: gate,
            got: got.clone(),
        };
        let queue = QueuedStderr::start_on(gate, 2).unwrap();
        // The writer blocks on the first line it takes: 2 lines wait, at most one is being
        // written, the rest are dropped. None of this waits (the test would hang otherwise).
        let sent: Vec<String> = (0..10).map(|i| format!("line {i}\n")).collect();
        for text in &sent {
            log(text);
        }
        let dropped = queue.dropped();
        assert!((7..=8).contains(&dropped), "{dropped}");
        drop(go); // the writer goes on
        drop(queue); // waits for the kept lines
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        let kept: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(kept.len() as u64, 10 - dropped, "{text}");
        // In the order they were logged.
        let mut rest = sent.iter();
        assert!(kept.iter().all(|k| rest.any(|s| s == k)), "{text}");
        assert!(QUEUE.lock().unwrap().is_none(), "direct again");
    }
}
