//! `kinflux`, the Kafka-to-InfluxDB bridge: one TOML file configures the whole pipeline
//! of the [`kinflux`] crate.
//!
//! ```text
//! cargo install --path crates/kinflux-bridge
//! kinflux check-config --config examples/bridge.toml   # validate, secrets redacted
//! kinflux run --config examples/bridge.toml            # run; `kinflux --config F` too
//! kinflux --config examples/garden.toml --until-caught-up
//! kinflux check-config --config my.toml --connect      # reach every server, one line each
//! kinflux test --config my.toml --input sample.lp      # what would be written, and where
//! kinflux top --metrics-url http://127.0.0.1:9273      # a live view of a running bridge
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
mod connect_check;
mod describe;
mod dry_run;
mod from_telegraf;
mod logging;
mod progress;
mod run;
mod shutdown;
mod top;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    let command = cli.into_command();
    logging::init(log_format);
    match command {
        Command::Run(args) => run::run(&args),
        Command::CheckConfig(args) => check_config::check_config(&args),
        Command::Test(args) => dry_run::test(&args),
        Command::Top(args) => top::top(&args),
        Command::FromTelegraf(args) => from_telegraf::run(&args),
    }
}
