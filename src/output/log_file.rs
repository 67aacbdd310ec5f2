//! `bridge.log`: the tracing layer the app attaches so the run directory keeps its log.

use std::fs::OpenOptions;
use std::path::Path;

use tracing::Subscriber;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::OutputError;

/// File name of the log inside the run directory.
pub const LOG_FILE: &str = "bridge.log";

/// A plain-text (no ANSI colours) tracing layer appending to `dir/bridge.log` through a
/// background writer thread, so logging never blocks the receive path. Keep the guard
/// alive until the end of the run: dropping it flushes the remaining lines.
pub fn bridge_log_layer<S>(dir: &Path) -> Result<(impl Layer<S>, WorkerGuard), OutputError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let path = dir.join(LOG_FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| OutputError::io("open", &path, e))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    Ok((layer, guard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn events_reach_the_file_once_the_guard_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = bridge_log_layer(dir.path()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(dummy = 3, "clocks disagree");
        });
        drop(guard);
        let text = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        assert!(text.contains("WARN"), "{text}");
        assert!(text.contains("clocks disagree"), "{text}");
        assert!(!text.contains('\u{1b}'), "no ANSI escapes in the file");
    }

    #[test]
    fn a_missing_directory_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let result = bridge_log_layer::<tracing_subscriber::Registry>(&missing);
        let err = result.err().unwrap().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
