//! Capturing what a test's own thread logs through `tracing`.
//!
//! Tests that assert on log lines should sit alone in their test binary: `tracing` caches
//! per call site whether anyone listens, and tests on other threads that log through the
//! same call sites without a subscriber can make that cache drop captured events.

use std::io;
use std::sync::{Arc, Mutex};

/// The text logged so far, shared with the subscriber that writes it.
pub type Captured = Arc<Mutex<Vec<u8>>>;

/// Captures log lines at info and above written on this thread while the guard lives,
/// without colours or timestamps.
pub fn capture() -> (tracing::subscriber::DefaultGuard, Captured) {
    capture_at(tracing::Level::INFO)
}

/// As [`capture`], at `level` and above (`DEBUG` to see what a library logs only for
/// debugging).
pub fn capture_at(level: tracing::Level) -> (tracing::subscriber::DefaultGuard, Captured) {
    #[derive(Clone)]
    struct Sink(Captured);
    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .expect("log buffer lock")
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buf = Captured::default();
    let sink = Sink(Arc::clone(&buf));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_writer(move || sink.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), buf)
}

/// The captured text as a string.
pub fn text(captured: &Captured) -> String {
    String::from_utf8_lossy(&captured.lock().expect("log buffer lock")).into_owned()
}
