//! Signals: the first SIGINT or SIGTERM drains, a second one exits at once.

use kinflux::CancellationToken;
use tokio::signal::unix::{SignalKind, signal};

/// The exit status after a second signal, as a shell reports a process killed by SIGINT.
const EXIT_NOW: i32 = 130;

/// Cancels `stop` on the first SIGINT or SIGTERM, which drains the pipeline (stop
/// fetching, flush, wait for writes in flight up to `--drain-timeout`, commit, leave the
/// group). A second signal exits at once, without committing what is not written.
pub(crate) async fn on_signals(stop: CancellationToken) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; stop kinflux with SIGKILL");
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received: draining (a second signal exits at once)");
            stop.cancel();
        } else {
            eprintln!("second signal: exiting without draining");
            std::process::exit(EXIT_NOW);
        }
    }
}
