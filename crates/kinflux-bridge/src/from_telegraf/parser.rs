//! A kafka_consumer's `data_format` and parser options to a pipeline's `[decode]`.

use toml::{Table, Value};

use super::section::{Notes, Section};

/// The measurement Telegraf gives a metric its parser names no measurement for: the
/// input plugin's name.
const PLUGIN_NAME: &str = "kafka_consumer";

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

/// The `[decode]` table of `input`; `None` (noted) for a data format kinflux lacks.
/// `name_override` replaces every measurement, as in Telegraf.
pub(crate) fn decode(
    input: &Section<'_>,
    name_override: Option<&str>,
    notes: &mut Notes,
) -> Option<Table> {
    let format = input.str("data_format").unwrap_or("influx");
    let mut decode = Table::new();
    match format {
        "influx" => {
            decode.insert("format".into(), s("line"));
            if let Some(p) = input.str("influx_timestamp_precision") {
                let unit = match p {
                    "1ns" | "ns" => "ns",
                    "1us" | "us" => "us",
                    "1ms" | "ms" => "ms",
                    "1s" | "s" => "s",
                    other => {
                        notes.add(
                            &format!("{}.influx_timestamp_precision", input.path),
                            format!("{other:?} is no precision kinflux takes"),
                        );
                        "ns"
                    }
                };
                decode.insert("precision".into(), s(unit));
            }
            input.drop_key(
                "influx_parser_type",
                "kinflux has one line-protocol parser",
                notes,
            );
        }
        "json_v2" => json_v2(input, name_override, &mut decode, notes)?,
        "json" => json_v1(input, name_override, &mut decode, notes),
        "avro" => avro(input, name_override, &mut decode, notes)?,
        other => {
            notes.add(
                &format!("{}.data_format", input.path),
                format!("{other:?} is not a format kinflux reads (influx, json, json_v2, avro): the input is left out"),
            );
            return None;
        }
    }
    Some(decode)
}

/// Telegraf's json_v2: one `[[json_v2]]` block with `tag` and `field` entries whose
/// paths are plain dotted names.
fn json_v2(
    input: &Section<'_>,
    name_override: Option<&str>,
    decode: &mut Table,
    notes: &mut Notes,
) -> Option<()> {
    let blocks = input.tables("json_v2");
    let Some(first) = blocks.first() else {
        notes.add(
            &format!("{}.json_v2", input.path),
            "no [[json_v2]] block: the input is left out",
        );
        return None;
    };
    if blocks.len() > 1 {
        notes.add(
            &format!("{}.json_v2", input.path),
            "only the first [[json_v2]] block is carried over",
        );
    }
    let block = Section::new(first, format!("{}.json_v2[0]", input.path));
    let mut mapping = Table::new();
    let mut rename = Table::new();
    let mut types = Table::new();
    let mut optional = Vec::new();
    let measurement = match (
        name_override,
        block.str("measurement_name_path"),
        block.str("measurement_name"),
    ) {
        (Some(o), _, _) => constant(o),
        (None, Some(path), _) if simple(path) => field(path),
        (None, Some(path), name) => {
            notes.add(
                &format!("{}.measurement_name_path", block.path),
                format!("{path:?} is a GJSON query kinflux cannot follow"),
            );
            constant(name.unwrap_or(PLUGIN_NAME))
        }
        (None, None, name) => constant(name.unwrap_or(PLUGIN_NAME)),
    };
    mapping.insert("measurement".into(), measurement);
    let mut entries = |key: &str, list: &mut Vec<Value>| {
        for (i, t) in block.tables(key).into_iter().enumerate() {
            let entry = Section::new(t, format!("{}.{key}[{i}]", block.path));
            let Some(path) = entry.str("path") else {
                continue;
            };
            if !simple(path) {
                notes.add(
                    &format!("{}.path", entry.path),
                    format!("{path:?} is a GJSON query kinflux cannot follow; left out"),
                );
                continue;
            }
            list.push(s(path));
            // json_v2 names a value by the last part of its path; kinflux joins the parts.
            let written = path.replace('.', "_");
            let name = entry
                .str("rename")
                .map(str::to_owned)
                .unwrap_or_else(|| path.rsplit('.').next().unwrap_or(path).to_owned());
            let name = name.replace(' ', "_");
            if name != written {
                rename.insert(written, s(&name));
            }
            if let Some(ty) = entry.str("type") {
                types.insert(name.clone(), s(ty));
            }
            if entry.bool("optional") == Some(true) {
                optional.push(s(path));
            }
            entry.leftovers(&|_| None, notes);
        }
    };
    let mut tags = Vec::new();
    let mut fields = Vec::new();
    entries("tag", &mut tags);
    entries("field", &mut fields);
    mapping.insert("tags".into(), Value::Array(tags));
    mapping.insert("fields".into(), Value::Array(fields));
    if !optional.is_empty() {
        mapping.insert("optional".into(), Value::Array(optional));
    }
    if let Some(path) = block.str("timestamp_path") {
        let mut ts = Table::new();
        ts.insert("field".into(), s(path));
        ts.insert(
            "format".into(),
            s(block.str("timestamp_format").unwrap_or("unix")),
        );
        if let Some(tz) = block.str("timestamp_timezone") {
            ts.insert("timezone".into(), s(tz));
        }
        mapping.insert("timestamp".into(), Value::Table(ts));
    }
    block.drop_key("object", "json_v2 object blocks are not carried over: map the object's paths as tag and field entries", notes);
    block.leftovers(&|_| None, notes);
    decode.insert("format".into(), s("json"));
    if !types.is_empty() {
        decode.insert("types".into(), Value::Table(types));
    }
    if !rename.is_empty() {
        decode.insert("rename".into(), Value::Table(rename));
    }
    decode.insert("mapping".into(), Value::Table(mapping));
    Some(())
}

/// Telegraf's first JSON parser (`data_format = "json"`).
fn json_v1(
    input: &Section<'_>,
    name_override: Option<&str>,
    decode: &mut Table,
    notes: &mut Notes,
) {
    let mut mapping = Table::new();
    let measurement = match (name_override, input.str("json_name_key")) {
        (Some(o), _) => constant(o),
        (None, Some(key)) => field(key),
        (None, None) => constant(PLUGIN_NAME),
    };
    mapping.insert("measurement".into(), measurement);
    let tags: Vec<Value> = input.strings("tag_keys").iter().map(|t| s(t)).collect();
    mapping.insert("tags".into(), Value::Array(tags));
    if let Some(key) = input.str("json_time_key") {
        let mut ts = Table::new();
        ts.insert("field".into(), s(key));
        if let Some(f) = input.str("json_time_format") {
            ts.insert("format".into(), s(f));
        }
        if let Some(tz) = input.str("json_timezone") {
            ts.insert("timezone".into(), s(tz));
        }
        mapping.insert("timestamp".into(), Value::Table(ts));
    }
    input.drop_key(
        "json_string_fields",
        "kinflux keeps every string field (Telegraf's json parser drops those not listed)",
        notes,
    );
    input.drop_key(
        "json_query",
        "a GJSON query kinflux cannot follow: map paths instead",
        notes,
    );
    input.drop_key("json_strict", "kinflux is always strict", notes);
    if input.get("json_string_fields").is_none() {
        notes.add(
            &format!("{}.data_format", input.path),
            "json: Telegraf drops string fields, kinflux keeps them",
        );
    }
    decode.insert("format".into(), s("json"));
    decode.insert("mapping".into(), Value::Table(mapping));
}

/// Telegraf's avro parser, as kinflux's `telegraf` preset.
fn avro(
    input: &Section<'_>,
    name_override: Option<&str>,
    decode: &mut Table,
    notes: &mut Notes,
) -> Option<()> {
    let mut preset = Table::new();
    match name_override {
        Some(o) => {
            preset.insert("measurement".into(), s(o));
            input.drop_key("avro_measurement_field", "name_override replaces it", notes);
            input.drop_key("avro_measurement", "name_override replaces it", notes);
        }
        None => {
            for (from, to) in [
                ("avro_measurement", "measurement"),
                ("avro_measurement_field", "measurement_field"),
            ] {
                if let Some(v) = input.str(from) {
                    preset.insert(to.into(), s(v));
                }
            }
        }
    }
    for (from, to) in [
        ("avro_timestamp", "timestamp"),
        ("avro_timestamp_format", "timestamp_format"),
        ("avro_field_separator", "field_separator"),
        ("avro_union_mode", "union_mode"),
    ] {
        if let Some(v) = input.str(from) {
            preset.insert(to.into(), s(v));
        }
    }
    for (from, to) in [("avro_tags", "tags"), ("avro_fields", "fields")] {
        let list = input.strings(from);
        if !list.is_empty() {
            preset.insert(to.into(), Value::Array(list.iter().map(|v| s(v)).collect()));
        }
    }
    if input.str("avro_format").is_some_and(|f| f != "binary") {
        notes.add(
            &format!("{}.avro_format", input.path),
            "kinflux reads binary Avro only: the input is left out",
        );
        return None;
    }
    match (input.str("avro_schema_registry"), input.get("avro_schema")) {
        (Some(url), _) => {
            decode.insert("registry_url".into(), s(url));
            if let Some(ca) = input.str("avro_schema_registry_cert") {
                decode.insert("registry_ca_file".into(), s(ca));
            }
        }
        (None, Some(_)) => {
            notes.add(&format!("{}.avro_schema", input.path), "write the schema to a file and set decode.schema_file (framing = \"plain\" reads bare and single-object bodies)");
            decode.insert("framing".into(), s("plain"));
            decode.insert("schema_file".into(), s("schema.avsc"));
        }
        (None, None) => {
            notes.add(
                &format!("{}.avro_schema_registry", input.path),
                "neither a registry nor a schema: the input is left out",
            );
            return None;
        }
    }
    decode.insert("format".into(), s("avro"));
    decode.insert("telegraf".into(), Value::Table(preset));
    Some(())
}

fn constant(name: &str) -> Value {
    let mut t = Table::new();
    t.insert("constant".into(), s(name));
    Value::Table(t)
}

fn field(path: &str) -> Value {
    let mut t = Table::new();
    t.insert("field".into(), s(path));
    Value::Table(t)
}

/// A GJSON path that is plain dotted names (no wildcards, arrays, modifiers or escapes).
fn simple(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}
