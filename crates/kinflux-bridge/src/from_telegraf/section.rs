//! Reading one table of a Telegraf file while keeping count of the keys read, so that
//! every key left over is named as not carried over.

use std::cell::RefCell;
use std::collections::BTreeSet;

use toml::{Table, Value};

/// What could not be carried over, one line each: `inputs.kafka_consumer[0].key: why`.
#[derive(Debug, Default)]
pub(crate) struct Notes(pub(crate) Vec<String>);

impl Notes {
    pub(crate) fn add(&mut self, key: &str, why: impl std::fmt::Display) {
        self.0.push(format!("{key}: {why}"));
    }
}

/// A table of the Telegraf file, and the keys read from it so far.
pub(crate) struct Section<'t> {
    table: &'t Table,
    /// The table's key in the file, for notes: `inputs.kafka_consumer[0]`.
    pub(crate) path: String,
    used: RefCell<BTreeSet<String>>,
}

impl<'t> Section<'t> {
    pub(crate) fn new(table: &'t Table, path: impl Into<String>) -> Self {
        Section {
            table,
            path: path.into(),
            used: RefCell::new(BTreeSet::new()),
        }
    }

    /// The key's value, marking it read.
    pub(crate) fn get(&self, key: &str) -> Option<&'t Value> {
        let v = self.table.get(key)?;
        self.used.borrow_mut().insert(key.to_owned());
        Some(v)
    }

    pub(crate) fn str(&self, key: &str) -> Option<&'t str> {
        self.get(key).and_then(Value::as_str)
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    pub(crate) fn table(&self, key: &str) -> Option<&'t Table> {
        self.get(key).and_then(Value::as_table)
    }

    /// The array of tables under `key` (`[[inputs.kafka_consumer.json_v2]]`).
    pub(crate) fn tables(&self, key: &str) -> Vec<&'t Table> {
        match self.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_table).collect(),
            Some(Value::Table(t)) => vec![t],
            _ => Vec::new(),
        }
    }

    /// Marks `key` read, and notes why it is not carried over when it is set.
    pub(crate) fn drop_key(&self, key: &str, why: &str, notes: &mut Notes) {
        if self.get(key).is_some() {
            notes.add(&format!("{}.{key}", self.path), why);
        }
    }

    /// Notes every key not read, with the reason `why_of` gives (or a plain "not
    /// carried over").
    pub(crate) fn leftovers(
        &self,
        why_of: &dyn Fn(&str) -> Option<&'static str>,
        notes: &mut Notes,
    ) {
        let used = self.used.borrow();
        for key in self.table.keys().filter(|k| !used.contains(*k)) {
            let why = why_of(key).unwrap_or("kinflux has no such option; not carried over");
            notes.add(&format!("{}.{key}", self.path), why);
        }
    }
}

/// Why the keys every Telegraf plugin takes are left out, when they are.
pub(crate) fn common_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "namepass" | "namedrop" | "fieldpass" | "fielddrop" | "fieldinclude" | "fieldexclude"
        | "tagpass" | "tagdrop" | "taginclude" | "tagexclude" | "metricpass" => {
            "metric filters are not carried over: kinflux writes every point of its topics"
        }
        "name_prefix" | "name_suffix" => "kinflux cannot add to measurement names",
        "interval" | "collection_jitter" | "precision" | "alias" | "log_level" => {
            "has no effect on a Kafka consumer; left out"
        }
        _ => return None,
    })
}
