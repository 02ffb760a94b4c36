//! Schema references (`"references": [{"name", "subject", "version"}]`): a schema that
//! uses named types registered under other subjects, as Confluent's API and Apicurio's
//! Confluent-compatible API serve them.

use std::collections::{HashMap, HashSet};

use apache_avro::Schema;
use apache_avro::schema::{Name, Namespace, UnionSchema};
use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};

use super::registry::{IdBody, SubjectVersionBody, encode_segment};
use super::{RegistryClient, RegistryError};
use crate::SchemaError;

/// The most schemas one schema may pull in through references, however deep: a guard
/// against a registry that serves a cycle of versions.
const MAX_REFERENCED: usize = 256;

/// A reference from a schema to a named type registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The full name of the referenced type, as the schema uses it.
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// The subject's version.
    pub version: i64,
}

impl RegistryClient {
    /// Parses `text`, fetching the schemas `references` names (and theirs) first.
    pub(super) async fn parse_with_references(
        &self,
        what: impl FnOnce() -> String,
        text: &str,
        references: &[Reference],
    ) -> Result<Schema, SchemaError> {
        let parsed = if references.is_empty() {
            Schema::parse_str(text)
        } else {
            let texts = self.referenced(references).await?;
            Schema::parse_str_with_list(text, &texts)
                .and_then(|(schema, defs)| inline(schema, &defs))
        };
        parsed.map_err(|e| SchemaError::Parse {
            what: what(),
            message: e.to_string(),
        })
    }

    /// The texts of every schema `references` reaches.
    async fn referenced(&self, references: &[Reference]) -> Result<Vec<String>, SchemaError> {
        let mut texts = Vec::new();
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        let mut queue: Vec<Reference> = references.to_vec();
        while let Some(r) = queue.pop() {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            if seen.len() > MAX_REFERENCED {
                return Err(SchemaError::Parse {
                    what: format!("reference {}", r.name),
                    message: format!("more than {MAX_REFERENCED} referenced schemas"),
                });
            }
            let version = if r.version < 0 {
                "latest".to_owned()
            } else {
                r.version.to_string()
            };
            let path = format!(
                "/subjects/{}/versions/{version}",
                encode_segment(&r.subject)
            );
            let body: SubjectVersionBody = self.call(Method::GET, &path, None).await?;
            queue.extend(body.references);
            texts.push(body.schema);
        }
        Ok(texts)
    }

    /// Registers `schema_json`, which uses the named types `references` names, under
    /// `subject`, and returns its global id.
    pub async fn register_with_references(
        &self,
        subject: &str,
        schema_json: &str,
        references: &[Reference],
    ) -> Result<u32, RegistryError> {
        let path = format!("/subjects/{}/versions", encode_segment(subject));
        let body =
            serde_json::json!({ "schema": schema_json, "references": references }).to_string();
        let IdBody { id } = self
            .call(Method::POST, &path, Some(Bytes::from(body)))
            .await?;
        Ok(id)
    }
}

/// `schema` with each referenced named type defined in place at its first use, so the
/// schema stands alone (a decode plan and the Avro reader resolve names within one
/// schema).
fn inline(mut schema: Schema, defs: &[Schema]) -> apache_avro::AvroResult<Schema> {
    let by_name: HashMap<Name, &Schema> = defs
        .iter()
        .filter_map(|d| named(d, &None).map(|n| (n, d)))
        .collect();
    let mut defined = HashSet::new();
    inline_in(&mut schema, &None, &by_name, &mut defined)?;
    Ok(schema)
}

/// The full name a named type defines.
fn named(schema: &Schema, ns: &Namespace) -> Option<Name> {
    match schema {
        Schema::Record(r) => Some(r.name.fully_qualified_name(ns)),
        Schema::Enum(e) => Some(e.name.fully_qualified_name(ns)),
        Schema::Fixed(f) => Some(f.name.fully_qualified_name(ns)),
        _ => None,
    }
}

fn inline_in(
    schema: &mut Schema,
    ns: &Namespace,
    defs: &HashMap<Name, &Schema>,
    defined: &mut HashSet<Name>,
) -> apache_avro::AvroResult<()> {
    if let Schema::Ref { name } = schema {
        let full = name.fully_qualified_name(ns);
        match defs.get(&full) {
            Some(def) if !defined.contains(&full) => *schema = (*def).clone(),
            _ => return Ok(()),
        }
    }
    if let Some(name) = named(schema, ns) {
        defined.insert(name);
    }
    match schema {
        Schema::Record(r) => {
            let inner = r.name.fully_qualified_name(ns).namespace;
            for field in &mut r.fields {
                inline_in(&mut field.schema, &inner, defs, defined)?;
            }
        }
        Schema::Array(a) => inline_in(&mut a.items, ns, defs, defined)?,
        Schema::Map(m) => inline_in(&mut m.types, ns, defs, defined)?,
        Schema::Union(u) => {
            let mut variants = u.variants().to_vec();
            for v in &mut variants {
                inline_in(v, ns, defs, defined)?;
            }
            *u = UnionSchema::new(variants)?;
        }
        _ => {}
    }
    Ok(())
}
