//! The Kafka-to-InfluxDB bridge: one TOML file configures the whole pipeline.
//!
//! ```text
//! cargo run --release --example bridge -- --config examples/bridge.toml
//! cargo run --release --example bridge -- --config examples/garden.toml --until-caught-up
//! cargo run --release --example bridge -- check-config --config examples/bridge.toml
//! ```
//!
//! SIGINT or SIGTERM drains gracefully: stop fetching, flush, wait for writes in flight
//! (up to `--drain-timeout`), commit, leave the group. A second signal stops at once,
//! without committing what is not written.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kinflux::metrics::Metrics;
use kinflux::{CancellationToken, Config, PipelineBuilder};
use tracing_subscriber::EnvFilter;

/// Moves time-series data from Kafka topics into InfluxDB, at least once.
#[derive(Debug, Parser)]
#[command(name = "bridge", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file (see examples/bridge.toml).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Stop cleanly once every assigned partition is written up to the high watermark it
    /// had when the bridge started (backfills, tests, the demo).
    #[arg(long)]
    until_caught_up: bool,
    /// Show progress bars (lag left, points/s); on by default on a terminal.
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never show progress bars.
    #[arg(long)]
    no_progress: bool,
    /// How long a stop waits for writes in flight before it gives up on them.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration and print the resolved settings, secrets redacted.
    CheckConfig,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rskafka=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Some(path) = &args.config else {
        eprintln!("error: --config FILE is required");
        return std::process::ExitCode::from(2);
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = args.command {
        println!(
            "{} is valid. Resolved settings (secrets redacted):\n{config:#?}",
            path.display()
        );
        return std::process::ExitCode::SUCCESS;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let show_progress = !args.no_progress && (args.progress || std::io::stderr().is_terminal());
    runtime.block_on(async move {
        let stop = CancellationToken::new();
        let pipeline = match PipelineBuilder::from_config(&config).and_then(|b| {
            b.until_caught_up(args.until_caught_up)
                .drain_timeout(args.drain_timeout)
                .build()
        }) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let metrics = pipeline.metrics();
        tokio::spawn(stop_on_signals(stop.clone()));
        let progress = show_progress.then(|| tokio::spawn(show(metrics.clone(), stop.clone())));
        let result = pipeline.run(stop.clone()).await;
        stop.cancel();
        if let Some(p) = progress {
            let _ = p.await;
        }
        match result {
            Ok(s) => {
                let secs = s.elapsed.as_secs_f64().max(1e-9);
                println!(
                    "done: {} records in, {} points written ({:.0} points/s), {} dead-lettered, {} dropped, {} merged, in {:.1} s",
                    s.records_in,
                    s.points_written,
                    s.points_written as f64 / secs,
                    s.dead_lettered,
                    s.dropped,
                    metrics.snapshot().merges,
                    secs
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

/// The first SIGINT or SIGTERM drains; a second one exits at once.
async fn stop_on_signals(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; stop the bridge with SIGKILL");
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
            std::process::exit(130);
        }
    }
}

/// Progress: records in, points written and their rate, lag left, dead letters.
async fn show(metrics: Arc<Metrics>, stop: CancellationToken) {
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
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => break,
        }
    }
    bar.finish();
}
