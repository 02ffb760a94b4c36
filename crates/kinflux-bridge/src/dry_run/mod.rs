//! `kinflux test`: records through each pipeline's decoder, tags, measurement and routing,
//! without joining the group, committing or writing. Prints the line protocol that would
//! be written (a valid line-protocol stream: everything else is a `#` comment), each
//! point's target with its routed database or bucket, and each dead letter with its
//! reason. Exits 1 when any record would be dead-lettered.

mod files;
mod kafka;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kinflux::config::{Format, PipelineConfig};
use kinflux::kafka::Record;
use kinflux::pipeline::{Preview, PreviewPoint};
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
    /// Only this pipeline (a `[[pipeline]]` name); required with `--input` when the file
    /// has several.
    #[arg(long)]
    pub(crate) pipeline: Option<String>,
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
    runtime.block_on(dry_runs(&config, args))
}

/// The pipelines to try: the one `--pipeline` names, or every one (only one with
/// `--input`: a file holds one format).
fn selected<'a>(config: &'a Config, args: &TestArgs) -> Result<Vec<&'a PipelineConfig>, String> {
    let all = &config.pipelines;
    match &args.pipeline {
        Some(name) => match all.iter().find(|p| &p.name == name) {
            Some(p) => Ok(vec![p]),
            None => Err(format!(
                "no pipeline {name}; the file has {}",
                all.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        None if args.input.is_some() && all.len() > 1 => Err(format!(
            "the file has {} pipelines: name the one the input is for with --pipeline",
            all.len()
        )),
        None => Ok(all.iter().collect()),
    }
}

async fn dry_runs(config: &Config, args: &TestArgs) -> ExitCode {
    let pipelines = match selected(config, args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", args.config.display());
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut tally = Tally::default();
    for p in pipelines {
        let builder = match PipelineBuilder::from_pipeline_config(config, p) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {}: {e}", args.config.display());
                return ExitCode::from(BAD_CONFIG);
            }
        };
        let records = match records(p, args).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: pipeline {}: {e}", p.name);
                return ExitCode::FAILURE;
            }
        };
        if config.pipelines.len() > 1 {
            let _ = writeln!(out, "# pipeline {}", p.name);
        }
        let dry_run = builder.dry_run();
        let dead_letter_to = match &p.dead_letter.topic {
            Some(topic) => format!(" (to {topic})"),
            None => String::new(),
        };
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
            let text = shown(config, record, &preview, &dead_letter_to, &mut tally);
            if write!(out, "{text}").is_err() {
                // A reader that stopped early (`| head`): the verdict still stands.
                break;
            }
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

/// One record's lines: a `#` line naming it and where its points go, the points, and
/// its dead letter.
fn shown(
    config: &Config,
    record: &Record,
    preview: &Preview,
    dead_letter_to: &str,
    tally: &mut Tally,
) -> String {
    tally.records += 1;
    tally.points += preview.points.len();
    let at = format!("{}/{}@{}", record.topic, record.partition, record.offset);
    // The points by destination, in the order they first appear.
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for point in &preview.points {
        let to = destination(config, point);
        match groups.iter_mut().find(|(d, _)| *d == to) {
            Some((_, lines)) => lines.push(&point.line),
            None => groups.push((to, vec![&point.line])),
        }
    }
    let mut text = String::new();
    match groups.as_slice() {
        [] => {}
        [(to, lines)] => {
            text.push_str(&format!("# {at}: {} point(s) -> {to}\n", lines.len()));
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        several => {
            text.push_str(&format!(
                "# {at}: {} point(s) on {} destinations\n",
                preview.points.len(),
                several.len()
            ));
            for (to, lines) in several {
                text.push_str(&format!("# -> {to}\n"));
                for line in lines {
                    text.push_str(line);
                    text.push('\n');
                }
            }
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
    if preview.points.is_empty() && preview.dead_letter.is_none() {
        text.push_str(&format!(
            "# {at}: no point (a tombstone or an empty record)\n"
        ));
    }
    text
}

/// Where a point goes: the target (named when the file has several) with its routed
/// database or bucket.
fn destination(config: &Config, point: &PreviewPoint) -> String {
    let Some(t) = config.target(&point.target) else {
        return format!("{} db={}", point.target, point.database);
    };
    let routed = describe::routed(
        &t.influx,
        &point.database,
        point.retention_policy.as_deref(),
    );
    if config.targets.len() > 1 {
        format!("{}: {routed}", t.name)
    } else {
        routed
    }
}

/// The records to try: from `--input`, or fetched from the pipeline's topics.
async fn records(p: &PipelineConfig, args: &TestArgs) -> Result<Vec<Record>, String> {
    let consumer = &p.kafka.consumer;
    match &args.input {
        Some(input) => {
            let split = match p.decode.format {
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
