//! The command line: `kinflux [run] --config F [flags]`, `kinflux check-config --config F
//! [--connect]`, `kinflux test --config F`, `kinflux top`. The flags of the newer
//! subcommands live in their own modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::dry_run::TestArgs;
use crate::logging::LogFormat;
use crate::top::TopArgs;

/// Moves time-series data from Kafka topics into InfluxDB, at least once.
///
/// Without a subcommand, `kinflux` runs: `kinflux --config F` is `kinflux run --config F`.
#[derive(Debug, Parser)]
#[command(name = "kinflux", version, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The flags of `run`, for the form without a subcommand.
    #[command(flatten)]
    run: Option<RunArgs>,
    /// How log lines on stderr are written: `text`, or `json` (one object per line, for
    /// log shippers). Given after the subcommand (`kinflux run --log-format json`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

impl Cli {
    /// What to do; no subcommand means `run`.
    pub(crate) fn into_command(self) -> Command {
        match (self.command, self.run) {
            (Some(command), _) => command,
            (None, Some(run)) => Command::Run(run),
            // `config` is required in `RunArgs`, so clap only leaves `run` out when a
            // subcommand was given.
            (None, None) => unreachable!("clap requires --config without a subcommand"),
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the pipeline until SIGINT or SIGTERM (the default).
    Run(RunArgs),
    /// Validate a configuration and print the resolved settings, secrets redacted;
    /// with `--connect`, also reach every broker, InfluxDB and the registry.
    CheckConfig(CheckConfigArgs),
    /// Decode records as `run` would, without joining the group, committing or writing:
    /// print the line protocol, each point's target and each dead letter.
    Test(TestArgs),
    /// A live view of a running bridge, from its `/metrics`.
    Top(TopArgs),
    /// Write the kinflux configuration matching a Telegraf file's kafka_consumer inputs
    /// and influxdb outputs, and name every option it cannot carry over.
    FromTelegraf(FromTelegrafArgs),
}

/// The arguments of `from-telegraf`.
#[derive(Debug, Args)]
pub(crate) struct FromTelegrafArgs {
    /// The Telegraf configuration file.
    pub(crate) telegraf_conf: PathBuf,
    /// Write the kinflux configuration here instead of to standard output.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

/// The flags of `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The configuration file (every key is documented in examples/bridge.toml).
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Stop cleanly once every assigned partition is written up to the high watermark it
    /// had when it was assigned (backfills, tests, the demo).
    #[arg(long)]
    pub(crate) until_caught_up: bool,
    /// Show progress bars (lag left, points/s); on by default on a terminal.
    #[arg(long, overrides_with = "no_progress")]
    pub(crate) progress: bool,
    /// Never show progress bars.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// How long a stop waits for writes in flight before it gives up on them.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// The flags of `check-config`.
#[derive(Debug, Args)]
pub(crate) struct CheckConfigArgs {
    /// The configuration file to validate.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Also connect: every broker (connection and authentication), InfluxDB (ping, the
    /// database or bucket, the credentials) and the schema registry, one line per check.
    #[arg(long)]
    pub(crate) connect: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("kinflux").chain(args.iter().copied()))
            .map(Cli::into_command)
    }

    #[test]
    fn clap_accepts_the_definition() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_run_with_the_same_flags() {
        let Command::Run(bare) = parse(&[
            "--config",
            "a.toml",
            "--until-caught-up",
            "--drain-timeout",
            "5s",
        ])
        .unwrap() else {
            panic!("not run")
        };
        let Command::Run(run) = parse(&[
            "run",
            "--config",
            "a.toml",
            "--until-caught-up",
            "--drain-timeout",
            "5s",
        ])
        .unwrap() else {
            panic!("not run")
        };
        for args in [bare, run] {
            assert_eq!(args.config, PathBuf::from("a.toml"));
            assert!(args.until_caught_up);
            assert_eq!(args.drain_timeout, Duration::from_secs(5));
            assert!(!args.progress && !args.no_progress);
        }
    }

    #[test]
    fn check_config_takes_its_file() {
        let Command::CheckConfig(args) = parse(&["check-config", "-c", "b.toml"]).unwrap() else {
            panic!("not check-config")
        };
        assert_eq!(args.config, PathBuf::from("b.toml"));
    }

    #[test]
    fn every_subcommand_takes_the_log_format() {
        let parse_cli = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("kinflux").chain(args.iter().copied()))
        };
        for args in [
            &["--log-format", "json", "--config", "a.toml"][..],
            &["run", "--log-format", "json", "--config", "a.toml"],
            &["check-config", "--config", "a.toml", "--log-format", "json"],
            &["top", "--metrics-url", "http://h:1", "--log-format", "json"],
        ] {
            let cli = parse_cli(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(cli.log_format, LogFormat::Json, "{args:?}");
        }
        assert_eq!(
            parse_cli(&["--config", "a.toml"]).unwrap().log_format,
            LogFormat::Text
        );
        assert!(parse_cli(&["--log-format", "xml", "--config", "a.toml"]).is_err());
    }

    #[test]
    fn test_and_top_take_their_flags() {
        let Command::Test(args) = parse(&[
            "test",
            "-c",
            "a.toml",
            "--input",
            "d",
            "--max-records",
            "3",
            "--from",
            "earliest",
        ])
        .unwrap() else {
            panic!("not test")
        };
        assert_eq!(args.input, Some(PathBuf::from("d")));
        assert_eq!(
            (args.max_records, args.from),
            (3, crate::dry_run::From::Earliest)
        );
        let Command::CheckConfig(args) = parse(&["check-config", "-c", "a", "--connect"]).unwrap()
        else {
            panic!("not check-config")
        };
        assert!(args.connect);
        let Command::Top(args) = parse(&["top", "-c", "a.toml", "--interval", "2s"]).unwrap()
        else {
            panic!("not top")
        };
        assert_eq!(args.interval, Duration::from_secs(2));
        assert!(parse(&["top", "-c", "a.toml", "--metrics-url", "http://h:1"]).is_err());
    }

    #[test]
    fn the_last_progress_flag_wins() {
        let Command::Run(args) =
            parse(&["--config", "a.toml", "--no-progress", "--progress"]).unwrap()
        else {
            panic!("not run")
        };
        assert!(args.progress && !args.no_progress);
    }

    #[test]
    fn a_file_is_required_and_run_flags_do_not_mix_with_check_config() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--progress"]).is_err());
        assert!(parse(&["--drain-timeout", "5s"]).is_err());
        assert!(parse(&["run"]).is_err());
        assert!(parse(&["check-config"]).is_err());
        assert!(parse(&["--until-caught-up", "check-config", "--config", "a.toml"]).is_err());
        assert!(parse(&["check-config", "--config", "a.toml", "--until-caught-up"]).is_err());
    }
}
