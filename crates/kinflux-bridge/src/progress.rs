//! Progress bars on stderr: lag left, records in, points written and their rate, dead
//! letters.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kinflux::CancellationToken;
use kinflux::metrics::Metrics;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// Whether to show bars: `--no-progress` wins, `--progress` forces them, otherwise only
/// on a terminal.
pub(crate) fn wanted(progress: bool, no_progress: bool) -> bool {
    !no_progress && (progress || std::io::stderr().is_terminal())
}

/// Draws the bar from `metrics` until `stop` is cancelled. The bar's length is the most
/// lag seen so far, so it fills as the backlog is worked off.
pub(crate) async fn show(metrics: Arc<Metrics>, stop: CancellationToken) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] lag {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut most_lag = 0i64;
    loop {
        let m = metrics.snapshot();
        let lag = m.committed_lag();
        most_lag = most_lag.max(lag);
        let written = m.points_written;
        let rate = written as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let dead = m.dead_lettered();
        bar.set_length(most_lag.max(1) as u64);
        bar.set_position((most_lag - lag).max(0) as u64);
        bar.set_message(format!(
            "{lag} | {} records in | {written} points written ({rate:.0}/s) | {dead} dead-lettered",
            m.records_in
        ));
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.cancelled() => break,
        }
    }
    bar.finish();
}
