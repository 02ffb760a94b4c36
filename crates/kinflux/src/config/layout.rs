//! The file's two shapes, made into one: a list of pipelines and the targets they write
//! to.
//!
//! - **One pipeline** (no `[[pipeline]]` table): `[kafka]`, `[decode]`, `[tags]`,
//!   `[batch]`, `[influx]` and `[dead_letter]` describe it, as they always did.
//! - **Several**: each `[[pipeline]]` table names a pipeline and holds its own `kafka`,
//!   `decode`, `tags`, `batch` and `dead_letter` tables; a key it does not set comes from
//!   the top-level section of that name, so connection settings (`[kafka]` brokers, TLS
//!   and SASL) and shared defaults are written once. Each pipeline is its own consumer
//!   group: `<kafka.group_id>-<name>` unless it sets `kafka.group_id`.
//!
//! In both shapes InfluxDB targets are `[influx]` (one, named `influx`) or
//! `[influx.<name>]` tables (several), referenced by name from a pipeline's `targets`; a
//! schema registry is a `[registries.<name>]` table referenced by `decode.registry`; a
//! Kafka cluster other than `[kafka]`'s is a `[clusters.<name>]` table (any `[kafka]`
//! keys: brokers, TLS, SASL) referenced by a pipeline's `kafka.cluster`.
//! This works on the TOML value, before any section is read, so a section's own type and
//! its errors stay as they are, and errors name the key as written.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use toml::Table;
use toml::Value;

use super::ConfigError;
use super::sections::{Config, MetricsConfig, PipelineConfig, TargetConfig};

/// The sections a pipeline has, which a `[[pipeline]]` table inherits from the top level.
const SECTIONS: [&str; 5] = ["kafka", "decode", "tags", "batch", "dead_letter"];

/// The `[kafka]` keys that say which cluster and how to connect: a pipeline on another
/// cluster (`kafka.cluster`) inherits none of them.
const CONNECTION_KEYS: [&str; 3] = ["brokers", "tls", "sasl"];

/// The keys of a pipeline that are not sections, also settable at the top level.
const PIPELINE_KEYS: [&str; 3] = ["targets", "measurement", "tasks"];

/// The name of the one pipeline of a file without `[[pipeline]]` tables.
pub const SINGLE_PIPELINE: &str = "default";

/// The name of the target of a file whose `[influx]` is one target.
pub const SINGLE_TARGET: &str = "influx";

/// The keys of a `[registries.<name>]` table, and the `[decode]` keys they become.
const REGISTRY_KEYS: [(&str, &str); 5] = [
    ("url", "registry_url"),
    ("username", "registry_username"),
    ("password", "registry_password"),
    ("token", "registry_token"),
    ("ca_file", "registry_ca_file"),
];

/// Reads an interpolated file into a [`Config`] (not yet validated).
pub(super) fn assemble(value: Value) -> Result<Config, ConfigError> {
    let Value::Table(mut top) = value else {
        return Err(ConfigError::invalid("(top level)", "expected a table"));
    };
    let metrics: MetricsConfig = match top.remove("metrics") {
        Some(v) => read(v, "metrics")?,
        None => MetricsConfig::default(),
    };
    let targets = targets(top.remove("influx"))?;
    let registries = named_tables(top.remove("registries"), "registries")?;
    check_registries(&registries)?;
    let clusters = named_tables(top.remove("clusters"), "clusters")?;
    let pipelines = top.remove("pipeline");
    let mut defaults = Table::new();
    for key in SECTIONS.iter().chain(PIPELINE_KEYS.iter()) {
        if let Some(v) = top.remove(*key) {
            defaults.insert((*key).to_owned(), v);
        }
    }
    if let Some(key) = top.keys().next() {
        return Err(ConfigError::invalid(
            key.clone(),
            format!(
                "unknown field `{key}` (examples/bridge.toml and examples/pipelines.toml list every key)"
            ),
        ));
    }
    let context = Context {
        defaults: &defaults,
        registries: &registries,
        clusters: &clusters,
        targets: &targets,
    };
    let pipelines = match pipelines {
        None => vec![context.pipeline(None)?],
        Some(Value::Array(list)) if !list.is_empty() => {
            let mut out: Vec<PipelineConfig> = Vec::with_capacity(list.len());
            for (i, item) in list.into_iter().enumerate() {
                let Value::Table(table) = item else {
                    return Err(ConfigError::invalid(
                        format!("pipeline[{i}]"),
                        "expected a [[pipeline]] table",
                    ));
                };
                let p = context.pipeline(Some((i, table)))?;
                if out.iter().any(|o| o.name == p.name) {
                    return Err(ConfigError::invalid(
                        format!("pipeline[{}].name", p.name),
                        "two pipelines have this name; each needs its own",
                    ));
                }
                out.push(p);
            }
            out
        }
        Some(_) => {
            return Err(ConfigError::invalid(
                "pipeline",
                "expected one or more [[pipeline]] tables",
            ));
        }
    };
    Ok(Config {
        pipelines,
        targets: targets
            .into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<TargetConfig>>(),
        metrics,
    })
}

/// `[influx]` as one target, or `[influx.<name>]` tables as several, in file order of
/// their names (TOML tables are sorted).
fn targets(influx: Option<Value>) -> Result<Vec<(String, TargetConfig)>, ConfigError> {
    let Some(influx) = influx else {
        return Err(ConfigError::invalid(
            "influx",
            "missing: set [influx] (one target) or [influx.<name>] tables",
        ));
    };
    let Value::Table(table) = influx else {
        return Err(ConfigError::invalid("influx", "expected a table"));
    };
    let named = !table.is_empty() && table.values().all(Value::is_table);
    if !named {
        let influx = read(Value::Table(table), "influx")?;
        return Ok(vec![(
            SINGLE_TARGET.to_owned(),
            TargetConfig::new(SINGLE_TARGET.to_owned(), "influx".to_owned(), influx),
        )]);
    }
    let mut out = Vec::with_capacity(table.len());
    for (name, value) in table {
        check_name(&name, &format!("influx.{name}"))?;
        let key = format!("influx.{name}");
        let influx = read(value, &key)?;
        out.push((name.clone(), TargetConfig::new(name, key, influx)));
    }
    Ok(out)
}

/// The `[<what>.<name>]` tables.
fn named_tables(value: Option<Value>, what: &str) -> Result<BTreeMap<String, Table>, ConfigError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let Value::Table(table) = value else {
        return Err(ConfigError::invalid(what, "expected a table"));
    };
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let Value::Table(named) = value else {
            return Err(ConfigError::invalid(
                format!("{what}.{name}"),
                format!("expected a [{what}.<name>] table"),
            ));
        };
        check_name(&name, &format!("{what}.{name}"))?;
        out.insert(name, named);
    }
    Ok(out)
}

/// Each `[registries.<name>]` has a `url` and only registry keys.
fn check_registries(registries: &BTreeMap<String, Table>) -> Result<(), ConfigError> {
    for (name, registry) in registries {
        if let Some(key) = registry
            .keys()
            .find(|k| !REGISTRY_KEYS.iter().any(|(r, _)| r == k))
        {
            return Err(ConfigError::invalid(
                format!("registries.{name}.{key}"),
                format!(
                    "unknown field `{key}`, expected one of `url`, `username`, `password`, `token`, `ca_file`"
                ),
            ));
        }
        if !registry.contains_key("url") {
            return Err(ConfigError::invalid(
                format!("registries.{name}.url"),
                "required",
            ));
        }
    }
    Ok(())
}

/// What every pipeline reads from the top level.
struct Context<'a> {
    defaults: &'a Table,
    registries: &'a BTreeMap<String, Table>,
    clusters: &'a BTreeMap<String, Table>,
    targets: &'a [(String, TargetConfig)],
}

impl Context<'_> {
    /// The pipeline of a `[[pipeline]]` table (`Some((index, table))`), or the file's one
    /// pipeline (`None`).
    fn pipeline(&self, table: Option<(usize, Table)>) -> Result<PipelineConfig, ConfigError> {
        let single = table.is_none();
        let (name, mut own) = match table {
            None => (SINGLE_PIPELINE.to_owned(), Table::new()),
            Some((i, mut t)) => {
                let name = match t.remove("name") {
                    Some(Value::String(n)) => n,
                    Some(_) => {
                        return Err(ConfigError::invalid(
                            format!("pipeline[{i}].name"),
                            "expected a string",
                        ));
                    }
                    None => {
                        return Err(ConfigError::invalid(
                            format!("pipeline[{i}].name"),
                            "required: each pipeline has a name (logs, metrics and its consumer group use it)",
                        ));
                    }
                };
                check_name(&name, &format!("pipeline[{i}].name"))?;
                (name, t)
            }
        };
        // Errors name `pipeline[<name>].<key>` in the several-pipelines shape, and the key
        // as it always was in the one-pipeline shape.
        let prefix = if single {
            String::new()
        } else {
            format!("pipeline[{name}].")
        };
        let key = |k: &str| format!("{prefix}{k}");
        let own_group = own
            .get("kafka")
            .is_some_and(|k| k.get("group_id").is_some());
        let mut sections: BTreeMap<&str, Table> = BTreeMap::new();
        for section in SECTIONS {
            let mut inherited = self.defaults.get(section).cloned();
            let mut mine = own.remove(section);
            if section == "kafka" {
                let (with, named) = self.with_cluster(mine, &key("kafka.cluster"))?;
                mine = with;
                if let (true, Some(Value::Table(top))) = (named, &mut inherited) {
                    // Another cluster: none of [kafka]'s connection.
                    for k in CONNECTION_KEYS {
                        top.remove(k);
                    }
                }
            }
            let merged = merge(section, inherited, mine, &key(section))?;
            sections.insert(section, merged);
        }
        let mut flat = Table::new();
        for k in PIPELINE_KEYS {
            if let Some(v) = own.remove(k).or_else(|| self.defaults.get(k).cloned()) {
                flat.insert(k.to_owned(), v);
            }
        }
        if let Some(k) = own.keys().next() {
            return Err(ConfigError::invalid(
                key(k),
                format!(
                    "unknown field `{k}`, expected one of `name`, `targets`, `measurement`, `tasks`, `kafka`, `decode`, `tags`, `batch`, `dead_letter`"
                ),
            ));
        }
        let kafka = sections.entry("kafka").or_default();
        if !single && !own_group {
            // Filled in before the base is read, so "missing group_id" names [kafka].
            let base = self
                .defaults
                .get("kafka")
                .and_then(|k| k.get("group_id"))
                .and_then(Value::as_str);
            if let Some(base) = base {
                kafka.insert(
                    "group_id".to_owned(),
                    Value::String(format!("{base}-{name}")),
                );
            }
        }
        start_at_agrees_with_reset(kafka, &key("kafka"))?;
        self.resolve_registry(
            sections.entry("decode").or_default(),
            &key("decode.registry"),
        )?;
        let targets = self.target_names(flat.remove("targets"), &key("targets"))?;
        let measurement = match flat.remove("measurement") {
            None => None,
            Some(Value::String(m)) => Some(m),
            Some(_) => {
                return Err(ConfigError::invalid(
                    key("measurement"),
                    "expected a string",
                ));
            }
        };
        let tasks = match flat.remove("tasks") {
            None => None,
            Some(Value::Integer(n)) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(_) => {
                return Err(ConfigError::invalid(
                    key("tasks"),
                    "expected a whole number of at least 1",
                ));
            }
        };
        let mut section = |name: &str| Value::Table(sections.remove(name).unwrap_or_default());
        Ok(PipelineConfig {
            kafka: read(section("kafka"), &key("kafka"))?,
            decode: read(section("decode"), &key("decode"))?,
            tags: read(section("tags"), &key("tags"))?,
            batch: read(section("batch"), &key("batch"))?,
            dead_letter: read(section("dead_letter"), &key("dead_letter"))?,
            targets,
            measurement,
            tasks,
            key_prefix: prefix,
            name,
        })
    }

    /// `kafka.cluster = "<name>"`: the keys of `[clusters.<name>]` (brokers, TLS, SASL,
    /// ...) under the pipeline's own `kafka` keys.
    /// Also says whether a cluster was named.
    fn with_cluster(
        &self,
        kafka: Option<Value>,
        key: &str,
    ) -> Result<(Option<Value>, bool), ConfigError> {
        let Some(Value::Table(mut kafka)) = kafka else {
            return Ok((kafka, false));
        };
        let Some(reference) = kafka.remove("cluster") else {
            return Ok((Some(Value::Table(kafka)), false));
        };
        let Value::String(name) = reference else {
            return Err(ConfigError::invalid(
                key,
                "expected the name of a [clusters.<name>] table",
            ));
        };
        let Some(cluster) = self.clusters.get(&name) else {
            return Err(ConfigError::invalid(
                key,
                format!("no [clusters.{name}] table"),
            ));
        };
        let mut merged = cluster.clone();
        merged.extend(kafka);
        Ok((Some(Value::Table(merged)), true))
    }

    /// `decode.registry = "<name>"`: the `registry_*` keys of `[registries.<name>]`.
    fn resolve_registry(&self, decode: &mut Table, key: &str) -> Result<(), ConfigError> {
        let Some(reference) = decode.remove("registry") else {
            return Ok(());
        };
        let Value::String(name) = reference else {
            return Err(ConfigError::invalid(
                key,
                "expected the name of a [registries.<name>] table",
            ));
        };
        let Some(registry) = self.registries.get(&name) else {
            return Err(ConfigError::invalid(
                key,
                format!("no [registries.{name}] table"),
            ));
        };
        for (from, to) in REGISTRY_KEYS {
            if let Some(v) = registry.get(from) {
                if decode.contains_key(to) {
                    return Err(ConfigError::invalid(
                        key,
                        format!("set `registry` or `{to}`, not both"),
                    ));
                }
                decode.insert(to.to_owned(), v.clone());
            }
        }
        Ok(())
    }

    /// The names of `targets`, each defined; absent: every target.
    fn target_names(&self, value: Option<Value>, key: &str) -> Result<Vec<String>, ConfigError> {
        let Some(value) = value else {
            return Ok(self.targets.iter().map(|(n, _)| n.clone()).collect());
        };
        let names: Vec<String> = match value {
            Value::String(one) => vec![one],
            Value::Array(list) => list
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(ConfigError::invalid(key, "expected target names")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(ConfigError::invalid(key, "expected target names")),
        };
        if names.is_empty() {
            return Err(ConfigError::invalid(key, "name at least one target"));
        }
        let mut seen = BTreeSet::new();
        for name in &names {
            if !self.targets.iter().any(|(n, _)| n == name) {
                let known: Vec<&str> = self.targets.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "no target named {name:?} (the targets are {})",
                        known.join(", ")
                    ),
                ));
            }
            if !seen.insert(name) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{name:?} is named twice"),
                ));
            }
        }
        Ok(names)
    }
}

/// A section as a pipeline sees it: the top-level section's keys, replaced by the
/// pipeline's own (a key's whole value: `kafka.tls` is taken whole, not key by key).
/// A pipeline that names its topics (`topics` or `topic_regex`) inherits neither.
fn merge(
    section: &str,
    inherited: Option<Value>,
    mine: Option<Value>,
    key: &str,
) -> Result<Table, ConfigError> {
    let table = |v: Option<Value>| match v {
        None => Ok(Table::new()),
        Some(Value::Table(t)) => Ok(t),
        Some(_) => Err(ConfigError::invalid(key, "expected a table")),
    };
    let mut merged = table(inherited)?;
    let mine = table(mine)?;
    if section == "kafka" && (mine.contains_key("topics") || mine.contains_key("topic_regex")) {
        merged.remove("topics");
        merged.remove("topic_regex");
    }
    merged.extend(mine);
    Ok(merged)
}

/// Pipeline and target names appear in keys, logs, metrics and group ids.
fn check_name(name: &str, key: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("{name:?}: use letters, digits, '_', '-' and '.'"),
        ))
    }
}

/// Deserializes a section, naming the key at fault under `prefix`.
fn read<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        ConfigError::invalid(key, e.into_inner().message().to_owned())
    })
}

/// `start_at = "earliest"` or `"latest"` sets `auto_offset_reset`: both given and
/// different is a contradiction, not a preference.
fn start_at_agrees_with_reset(kafka: &Table, key: &str) -> Result<(), ConfigError> {
    let text = |k: &str| kafka.get(k).and_then(Value::as_str);
    match (text("start_at"), text("auto_offset_reset")) {
        (Some(start @ ("earliest" | "latest")), Some(reset)) if start != reset => {
            Err(ConfigError::invalid(
                format!("{key}.start_at"),
                format!(
                    "start_at = \"{start}\" is where a partition without a committed offset starts, which auto_offset_reset = \"{reset}\" contradicts; keep one"
                ),
            ))
        }
        _ => Ok(()),
    }
}
