//! `kinflux from-telegraf telegraf.conf`: the kinflux configuration that does what a
//! Telegraf file's `kafka_consumer` inputs and `influxdb` / `influxdb_v2` outputs do,
//! and a list of every option it could not carry over.
//!
//! One input and one output give a file of one pipeline; several give one
//! `[[pipeline]]` per input, each writing to every output (`[influx.<name>]`), as
//! Telegraf sends every metric to every output. Avro inputs use the `telegraf` preset and
//! JSON inputs the same types and names Telegraf gives, so the points stored are the same.

mod input;
mod output;
mod parser;
mod section;

use toml::{Table, Value};

use section::{Notes, Section};

/// What `from-telegraf` produced.
#[derive(Debug)]
pub(crate) struct Conversion {
    /// The kinflux configuration, the notes at its top as comments.
    pub(crate) toml: String,
    /// What could not be carried over, one line each.
    pub(crate) notes: Vec<String>,
}

/// Why the Telegraf file cannot be converted at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FromTelegrafError {
    /// The file is not TOML.
    #[error("not a Telegraf configuration (TOML): {0}")]
    Syntax(String),
    /// Nothing to convert.
    #[error("{0}")]
    Nothing(String),
}

/// Converts the Telegraf configuration `text`. `hostname` is the `host` tag Telegraf
/// adds unless `omit_hostname` is set (its `[agent] hostname`, or the machine's name).
pub(crate) fn convert(text: &str, hostname: &str) -> Result<Conversion, FromTelegrafError> {
    let file: Table = toml::from_str(text).map_err(|e| FromTelegrafError::Syntax(e.to_string()))?;
    let mut notes = Notes::default();
    let root = Section::new(&file, "");

    let (batch, mut agent_tags) = agent(root.table("agent"), hostname, &mut notes);
    if let Some(global) = root.table("global_tags") {
        agent_tags.extend(global.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    let inputs_table = root.table("inputs").cloned().unwrap_or_default();
    let inputs = Section::new(&inputs_table, "inputs");
    let mut pipelines = Vec::new();
    for (i, t) in inputs.tables("kafka_consumer").into_iter().enumerate() {
        let section = Section::new(t, format!("inputs.kafka_consumer[{i}]"));
        if let Some(p) = input::pipeline(&section, &mut notes) {
            pipelines.push(p);
        }
    }
    inputs.leftovers(
        &|_| Some("not a kafka_consumer input: kinflux reads Kafka only"),
        &mut notes,
    );

    let outputs_table = root.table("outputs").cloned().unwrap_or_default();
    let outputs = Section::new(&outputs_table, "outputs");
    let mut targets = Vec::new();
    for (kind, v2) in [("influxdb", false), ("influxdb_v2", true)] {
        for (i, t) in outputs.tables(kind).into_iter().enumerate() {
            let section = Section::new(t, format!("outputs.{kind}[{i}]"));
            targets.push((
                format!("{kind}_{}", i + 1),
                output::influx(&section, v2, &mut notes),
            ));
        }
    }
    outputs.leftovers(
        &|_| Some("not an InfluxDB output: not carried over"),
        &mut notes,
    );
    root.leftovers(
        &|_| Some("processors, aggregators and other plugins are not carried over"),
        &mut notes,
    );

    if pipelines.is_empty() {
        return Err(FromTelegrafError::Nothing(format!(
            "no kafka_consumer input could be carried over{}",
            list(&notes.0)
        )));
    }
    if targets.is_empty() {
        return Err(FromTelegrafError::Nothing(
            "no influxdb or influxdb_v2 output".into(),
        ));
    }

    let mut out = Table::new();
    let dead_letter = || {
        // Telegraf drops what it cannot parse or write; so does this configuration.
        let mut t = Table::new();
        t.insert("on_error".into(), Value::String("drop".into()));
        Value::Table(t)
    };
    let single = pipelines.len() == 1 && targets.len() == 1;
    let group_of = |p: &input::Pipeline| {
        p.kafka
            .get("group_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let groups: Vec<Option<String>> = pipelines.iter().map(group_of).collect();
    let mut pipeline_tables = Vec::new();
    for (i, mut p) in pipelines.into_iter().enumerate() {
        let name = format!("kafka_consumer_{}", i + 1);
        // kinflux runs each pipeline as its own group: inputs sharing one get a suffix.
        if let Some(group) = &groups[i] {
            if groups.iter().filter(|g| g.as_ref() == Some(group)).count() > 1 {
                let own = format!("{group}-{name}");
                notes.add(
                    &format!("inputs.kafka_consumer[{i}].consumer_group"),
                    format!("shared with another input; kinflux gives each pipeline its own group: {own:?}"),
                );
                p.kafka.insert("group_id".into(), Value::String(own));
            }
        }
        let mut tags = agent_tags.clone();
        tags.extend(p.tags);
        let mut t = Table::new();
        t.insert("kafka".into(), Value::Table(p.kafka));
        t.insert("decode".into(), Value::Table(p.decode));
        if !tags.is_empty() {
            t.insert("tags".into(), Value::Table(tags));
        }
        t.insert("batch".into(), Value::Table(batch.clone()));
        t.insert("dead_letter".into(), dead_letter());
        if let Some(m) = p.measurement {
            // json and avro put name_override in the mapping; line protocol needs this.
            t.insert("measurement".into(), Value::String(m));
        }
        if single {
            out.extend(t);
        } else {
            t.insert(
                "name".into(),
                Value::String(format!("kafka_consumer_{}", i + 1)),
            );
            t.insert(
                "targets".into(),
                Value::Array(
                    targets
                        .iter()
                        .map(|(n, _)| Value::String(n.clone()))
                        .collect(),
                ),
            );
            pipeline_tables.push(Value::Table(t));
        }
    }
    if single {
        let (_, influx) = targets.remove(0);
        out.insert("influx".into(), Value::Table(influx));
    } else {
        out.insert("pipeline".into(), Value::Array(pipeline_tables));
        out.insert(
            "influx".into(),
            Value::Table(
                targets
                    .into_iter()
                    .map(|(n, t)| (n, Value::Table(t)))
                    .collect(),
            ),
        );
    }
    let body = toml::to_string(&out).map_err(|e| FromTelegrafError::Syntax(e.to_string()))?;
    let mut text = String::from("# Written by `kinflux from-telegraf`.\n");
    if notes.0.is_empty() {
        text.push_str("# Every option was carried over.\n");
    } else {
        text.push_str("# Not carried over:\n");
        for n in &notes.0 {
            text.push_str(&format!("#   {n}\n"));
        }
    }
    text.push('\n');
    text.push_str(&body);
    Ok(Conversion {
        toml: text,
        notes: notes.0,
    })
}

/// `[agent]`: batch settings, and the `host` tag.
fn agent(agent: Option<&Table>, hostname: &str, notes: &mut Notes) -> (Table, Table) {
    let empty = Table::new();
    let a = Section::new(agent.unwrap_or(&empty), "agent");
    let mut batch = Table::new();
    let size = a
        .get("metric_batch_size")
        .and_then(Value::as_integer)
        .unwrap_or(1000);
    batch.insert("max_points".into(), Value::Integer(size));
    batch.insert(
        "max_age".into(),
        Value::String(a.str("flush_interval").unwrap_or("10s").to_owned()),
    );
    let mut tags = Table::new();
    if a.bool("omit_hostname") != Some(true) {
        let host = a
            .str("hostname")
            .filter(|h| !h.is_empty())
            .unwrap_or(hostname);
        tags.insert("host".into(), Value::String(host.to_owned()));
    }
    a.get("hostname");
    a.leftovers(
        &|key| {
            Some(match key {
                "interval" | "round_interval" | "collection_jitter" | "collection_offset"
                | "precision" => "has no effect on Kafka inputs; left out",
                "metric_buffer_limit" => {
                    "kinflux bounds memory with kafka.max_buffered_bytes; left out"
                }
                "flush_jitter" => "kinflux flushes at batch.max_age without jitter",
                "debug"
                | "quiet"
                | "logfile"
                | "logtarget"
                | "logformat"
                | "log_level"
                | "logfile_rotation_interval"
                | "logfile_rotation_max_size"
                | "logfile_rotation_max_archives"
                | "log_with_timezone" => "kinflux logs with RUST_LOG; left out",
                _ => return None,
            })
        },
        notes,
    );
    (batch, tags)
}

/// `kinflux from-telegraf FILE [--output F]`: the configuration to standard output (or
/// the file), what was not carried over to standard error. Exit status 2 when nothing
/// could be converted.
pub(crate) fn run(args: &crate::cli::FromTelegrafArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let text = match std::fs::read_to_string(&args.telegraf_conf) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("kinflux: cannot read {}: {e}", args.telegraf_conf.display());
            return ExitCode::from(2);
        }
    };
    let host = hostname();
    let conversion = match convert(&text, &host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kinflux: {}: {e}", args.telegraf_conf.display());
            return ExitCode::from(2);
        }
    };
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &conversion.toml) {
                eprintln!("kinflux: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
        None => print!("{}", conversion.toml),
    }
    for n in &conversion.notes {
        eprintln!("not carried over: {n}");
    }
    ExitCode::SUCCESS
}

/// The machine's name, as Telegraf's `os.Hostname` gives it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn list(notes: &[String]) -> String {
    notes.iter().map(|n| format!("\n  {n}")).collect()
}

#[cfg(test)]
mod tests;
