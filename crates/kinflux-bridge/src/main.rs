//! `kinflux`, the Kafka-to-InfluxDB bridge: one TOML file configures the whole pipeline
//! of the [`kinflux`] crate.
//!
//! ```text
//! cargo install --path crates/kinflux-bridge
//! kinflux check-config --config examples/bridge.toml   # validate, secrets redacted
//! kinflux run --config examples/bridge.toml            # run; `kinflux --config F` too
//! kinflux --config examples/garden.toml --until-caught-up
//! kinflux from-telegraf telegraf.conf > kinflux.toml     # a Telegraf file's Kafka pipelines
//! ```
//!
//! SIGINT or SIGTERM drains gracefully: stop fetching, flush, wait for writes in flight
//! (up to `--drain-timeout`), commit, leave the group. A second signal stops at once,
//! without committing what is not written.
//!
//! Exit status: 0 after a clean stop, 1 when the pipeline failed, 2 for a usage or
//! configuration error, 130 after a second signal.

mod check_config;
mod cli;
mod from_telegraf;
mod logging;
mod progress;
mod run;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    logging::init();
    match command {
        Command::Run(args) => run::run(&args),
        Command::CheckConfig(args) => check_config::check_config(&args),
        Command::FromTelegraf(args) => from_telegraf::run(&args),
    }
}
