//! `kinflux test`: records through the configured decoder and tags, without joining the
//! group, committing or writing. Prints the line protocol that would be written (a valid
//! line-protocol stream: everything else is a `#` comment), each point's target, and each
//! dead letter with its reason. Exits 1 when any record would be dead-lettered.

mod files;
mod kafka;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kinflux::config::Format;
use kinflux::kafka::Record;
use kinflux::{Config, PipelineBuilder};

use crate::check_config::{BAD_CONFIG, load};
use crate::describe;
pub(crate) use kafka::From;

/// The flags of `test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Take records from this file, or the files in this directory, instead of Kafka: one
    /// record per line for line protocol and JSON, one per file for Avro.
    #[arg(long)]
    pub(crate) input: Option<PathBuf>,
    /// At most this many records.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_records: usize,
    /// From Kafka: the oldest records in the topics, or the newest.
    #[arg(long, value_enum, default_value_t = From::Latest)]
    pub(crate) from: From,
}

/// What a dry run found, for the exit status and the last line.
#[derive(Debug, Default)]
struct Tally {
    records: usize,
    points: usize,
    dead_letters: usize,
}

/// Runs `kinflux test`.
pub(crate) fn test(args: &TestArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dry_run(&config, args))
}

async fn dry_run(config: &Config, args: &TestArgs) -> ExitCode {
    let builder = match PipelineBuilder::from_config(config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", args.config.display());
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let records = match records(config, args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dry_run = builder.dry_run();
    let target = describe::target(&config.influx);
    let dead_letter_to = match &config.dead_letter.topic {
        Some(topic) => format!(" (to {topic})"),
        None => String::new(),
    };
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::default();
    for record in &records {
        let preview = match dry_run.record(record).await {
            Ok(p) => p,
            Err(unavailable) => {
                eprintln!(
                    "error: {}/{}@{}: cannot decode now: {unavailable}",
                    record.topic, record.partition, record.offset
                );
                return ExitCode::FAILURE;
            }
        };
        tally.records += 1;
        tally.points += preview.lines.len();
        let mut text = String::new();
        let at = format!("{}/{}@{}", record.topic, record.partition, record.offset);
        if !preview.lines.is_empty() {
            text.push_str(&format!(
                "# {at}: {} point(s) -> {target}\n",
                preview.lines.len()
            ));
            for line in &preview.lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        if let Some(dl) = &preview.dead_letter {
            tally.dead_letters += 1;
            let what = if dl.partial {
                "part of it"
            } else {
                "the record"
            };
            let reason = dl.reason.replace('\n', " | ");
            text.push_str(&format!(
                "# {at}: dead letter{dead_letter_to}, {what}, class {}: {reason}\n",
                dl.class.as_str()
            ));
        }
        if preview.lines.is_empty() && preview.dead_letter.is_none() {
            text.push_str(&format!(
                "# {at}: no point (a tombstone or an empty record)\n"
            ));
        }
        if write!(out, "{text}").is_err() {
            // A reader that stopped early (`| head`): the verdict still stands.
            break;
        }
    }
    let _ = writeln!(
        out,
        "# {} record(s): {} point(s), {} dead letter(s)",
        tally.records, tally.points, tally.dead_letters
    );
    if tally.dead_letters > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The records to try: from `--input`, or fetched from the configured topics.
async fn records(config: &Config, args: &TestArgs) -> Result<Vec<Record>, String> {
    let consumer = &config.kafka.consumer;
    match &args.input {
        Some(input) => {
            let split = match config.decode.format {
                Format::Avro => files::Split::WholeFile,
                _ => files::Split::Lines,
            };
            let topic = consumer.topics.first().map_or("input", String::as_str);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            files::read(input, split, topic, now_ms, args.max_records)
        }
        None => kafka::fetch(consumer, args.from, args.max_records).await,
    }
}
