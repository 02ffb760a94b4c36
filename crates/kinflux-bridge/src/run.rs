//! `kinflux run`: the pipeline on a multi-threaded runtime, with signals, progress bars
//! and a one-line summary at the end.

use std::io::Write;
use std::process::ExitCode;

use kinflux::{Bridge, CancellationToken, Config, RunSummary};

use crate::check_config::load;
use crate::cli::RunArgs;
use crate::{describe, progress, shutdown};

/// Runs the pipeline of `args.config` until a signal (or, with `--until-caught-up`, until
/// it has caught up), then prints the summary on stdout.
pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let pipeline_line = describe::pipelines(&config);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %args.config.display(),
        pipeline = %pipeline_line,
        "kinflux {} starting: {pipeline_line}",
        env!("CARGO_PKG_VERSION"),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(pipeline(config, args))
}

async fn pipeline(config: Config, args: &RunArgs) -> ExitCode {
    let stop = CancellationToken::new();
    let built = Bridge::from_config(&config, |b| {
        b.until_caught_up(args.until_caught_up)
            .drain_timeout(args.drain_timeout)
    });
    let pipeline = match built {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let metrics = pipeline.metrics();
    tokio::spawn(shutdown::on_signals(stop.clone()));
    let bars = progress::wanted(args.progress, args.no_progress)
        .then(|| tokio::spawn(progress::show(metrics.clone(), stop.clone())));
    let result = pipeline.run(stop.clone()).await;
    stop.cancel();
    if let Some(bars) = bars {
        // The bars only read the metrics; a panic there must not hide the result.
        let _ = bars.await;
    }
    match result {
        Ok(summary) => {
            let line = summary_line(&summary, metrics.snapshot().merges);
            // The run succeeded; a closed stdout only means nobody reads the summary.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The last line on stdout, which scripts (the demo) read.
fn summary_line(s: &RunSummary, merged: u64) -> String {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    format!(
        "done: {} records in, {} points written ({:.0} points/s), {} dead-lettered, {} dropped, {merged} merged, in {secs:.1} s",
        s.records_in,
        s.points_written,
        s.points_written as f64 / secs,
        s.dead_lettered,
        s.dropped,
    )
}
