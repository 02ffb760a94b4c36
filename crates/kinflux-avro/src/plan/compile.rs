//! Compiling a (writer schema, mapping) pair into a [`DecodePlan`].

use apache_avro::Schema;
use apache_avro::schema::{Name, NamesRef, Namespace, RecordField, ResolvedSchema};
use kinflux_series::{Precision, TIME_KEY};

use super::{DecodePlan, Node, Sink};
use crate::PlanError;
use crate::mapping::{BytesMode, CollectionMode, Mapping, MeasurementSource};

/// What the mapping wants from one path.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Tag,
    Field,
    Time(Option<Precision>),
    Measurement,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Tag => "a tag",
            Role::Field => "a field",
            Role::Time(_) => "the timestamp",
            Role::Measurement => "the measurement",
        }
    }
}

#[derive(Debug)]
struct Wanted {
    path: Vec<String>,
    role: Role,
    optional: bool,
    found: bool,
}

/// Where in the record the compiler is.
#[derive(Debug, Clone, Copy)]
enum Place<'p> {
    /// At a path the mapping can name; `inherit` when an enclosing record was mapped as a
    /// field, or all scalars are fields.
    Named { path: &'p [String], inherit: bool },
    /// Inside an expanded array or map: every scalar is a field, keyed relative to the
    /// element.
    Element { rel: &'p [String] },
    /// Nothing here is mapped: only walk past it.
    Skipped,
}

struct Compiler<'s, 'm> {
    names: &'s NamesRef<'s>,
    wanted: Vec<Wanted>,
    separator: &'m str,
    bytes: BytesMode,
    collections: CollectionMode,
    all_fields: bool,
    /// The flattened tag keys, sorted.
    tag_keys: Vec<String>,
    /// Named types being compiled, to refuse recursive schemas.
    stack: Vec<Name>,
}

impl DecodePlan {
    /// Compiles the plan for records written with `writer` and mapped by `mapping`.
    ///
    /// Fails when the writer schema is not a record, lacks a path the mapping requires,
    /// has a mapped field of a type that cannot fill its role, or is recursive.
    pub fn compile(writer: &Schema, mapping: &Mapping) -> Result<DecodePlan, PlanError> {
        let resolved = ResolvedSchema::try_from(writer).map_err(|e| PlanError::UndefinedName {
            name: e.to_string(),
        })?;
        if matches!(&mapping.measurement, MeasurementSource::Constant(name) if name.is_empty()) {
            return Err(PlanError::InvalidMapping("the measurement is empty".into()));
        }
        let mut compiler = Compiler {
            names: resolved.get_names(),
            wanted: wanted(mapping)?,
            separator: &mapping.field_separator,
            bytes: mapping.bytes,
            collections: mapping.collections,
            all_fields: mapping.fields.is_none(),
            tag_keys: tag_keys(mapping)?,
            stack: Vec::new(),
        };
        let (record, namespace) = compiler.deref(writer, &None)?;
        let Schema::Record(record) = record else {
            return Err(PlanError::NotARecord);
        };
        let full = record.name.fully_qualified_name(&namespace);
        let writer_name = full.fullname(None);
        compiler.stack.push(full.clone());
        let mut root = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let path = compiler.child(&[], field);
            root.push(compiler.node(
                &field.schema,
                &full.namespace,
                Place::Named {
                    path: &path,
                    inherit: compiler.all_fields,
                },
                false,
            )?);
        }
        if let Some(missing) = compiler.wanted.iter().find(|w| !w.found && !w.optional) {
            return Err(PlanError::MissingField {
                schema: writer_name,
                path: missing.path.join("."),
                role: missing.role.name(),
            });
        }
        let measurement = match &mapping.measurement {
            MeasurementSource::Constant(name) => Some(name.clone()),
            MeasurementSource::RecordName => Some(writer_name.clone()),
            MeasurementSource::Field(_) => None,
        };
        let field_hint = match &mapping.fields {
            Some(fields) => fields.len(),
            None => record.fields.len(),
        };
        Ok(DecodePlan {
            root,
            measurement,
            separator: mapping.field_separator.clone(),
            writer_name,
            tag_keys: compiler.tag_keys,
            field_hint,
        })
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// The mapped paths, each with its role; a path with two roles is an error.
fn wanted(mapping: &Mapping) -> Result<Vec<Wanted>, PlanError> {
    let mut out: Vec<Wanted> = Vec::new();
    let mut add = |path: &str, role: Role, optional: bool| {
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(PlanError::InvalidMapping(format!(
                "{path:?} is not a field path"
            )));
        }
        let path = split(path);
        if let Some(other) = out.iter().find(|w| w.path == path) {
            return Err(PlanError::InvalidMapping(format!(
                "{:?} is mapped both as {} and as {}",
                path.join("."),
                other.role.name(),
                role.name()
            )));
        }
        out.push(Wanted {
            path,
            role,
            optional,
            found: false,
        });
        Ok(())
    };
    let optional = |p: &String| mapping.optional.contains(p);
    if let MeasurementSource::Field(path) = &mapping.measurement {
        add(path, Role::Measurement, false)?;
    }
    if let Some(ts) = &mapping.timestamp {
        let unit = ts.numeric_unit().map_err(PlanError::InvalidMapping)?;
        add(&ts.field, Role::Time(unit), false)?;
    }
    for tag in &mapping.tags {
        add(tag, Role::Tag, optional(tag))?;
    }
    for field in mapping.fields.iter().flatten() {
        add(field, Role::Field, optional(field))?;
    }
    if mapping.field_separator.is_empty() {
        return Err(PlanError::InvalidMapping("field_separator is empty".into()));
    }
    Ok(out)
}

/// The tag keys as they will be written (paths joined with the separator), sorted; two
/// paths that flatten to one key are an error.
fn tag_keys(mapping: &Mapping) -> Result<Vec<String>, PlanError> {
    let mut keys: Vec<String> = mapping
        .tags
        .iter()
        .map(|path| {
            path.split('.')
                .collect::<Vec<_>>()
                .join(&mapping.field_separator)
        })
        .collect();
    keys.sort();
    if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(PlanError::InvalidMapping(format!(
            "two tag paths are both written as {:?}",
            pair[0]
        )));
    }
    Ok(keys)
}

/// A short name for an Avro type, for error messages.
fn type_name(schema: &Schema) -> &'static str {
    match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "long",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes | Schema::BigDecimal => "bytes",
        Schema::String => "string",
        Schema::Uuid => "uuid",
        Schema::Fixed(_) | Schema::Duration => "fixed",
        Schema::Enum(_) => "enum",
        Schema::Decimal(_) => "decimal",
        Schema::Record(_) => "record",
        Schema::Union(_) => "union",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Ref { .. } => "named type",
    }
}

impl<'s> Compiler<'s, '_> {
    /// Follows a reference to the named type it names.
    fn deref<'x>(
        &self,
        schema: &'x Schema,
        namespace: &Namespace,
    ) -> Result<(&'x Schema, Namespace), PlanError>
    where
        's: 'x,
    {
        match schema {
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                match self.names.get(&full) {
                    Some(found) => Ok((*found, full.namespace)),
                    None => Err(PlanError::UndefinedName {
                        name: full.fullname(None),
                    }),
                }
            }
            other => Ok((other, namespace.clone())),
        }
    }

    fn key(&self, parts: &[String]) -> String {
        parts.join(self.separator)
    }

    /// The role the mapping gives to `path`, marking it found.
    fn role_of(&mut self, path: &[String]) -> Option<Role> {
        let wanted = self.wanted.iter_mut().find(|w| w.path == path)?;
        wanted.found = true;
        Some(wanted.role)
    }

    fn leads_to_mapped(&self, path: &[String]) -> bool {
        self.wanted
            .iter()
            .any(|w| w.path.len() > path.len() && w.path.starts_with(path))
    }

    /// The node for a value of `schema` at `place`. `in_union` turns type mismatches
    /// into run-time rejections of that branch, so the other branches still map.
    fn node(
        &mut self,
        schema: &Schema,
        namespace: &Namespace,
        place: Place<'_>,
        in_union: bool,
    ) -> Result<Node, PlanError> {
        let (schema, namespace) = self.deref(schema, namespace)?;
        let namespace = &namespace;
        // The role here, and whether values below inherit "field".
        let (role, inherit) = match place {
            Place::Named { path, inherit } => match self.role_of(path) {
                Some(role) => (Some(role), inherit || role == Role::Field),
                None if inherit => (Some(Role::Field), true),
                None => (None, false),
            },
            Place::Element { .. } => (Some(Role::Field), true),
            Place::Skipped => (None, false),
        };
        match schema {
            Schema::Record(record) => {
                if let Some(role @ (Role::Tag | Role::Time(_) | Role::Measurement)) = role {
                    return self.mismatch(place, schema, role, in_union);
                }
                let full = record.name.fully_qualified_name(namespace);
                if self.stack.contains(&full) {
                    return Err(PlanError::RecursiveSchema {
                        name: full.fullname(None),
                    });
                }
                self.stack.push(full.clone());
                let mut nodes = Vec::with_capacity(record.fields.len());
                for field in &record.fields {
                    let node = match place {
                        Place::Named { path, .. } => {
                            let child = self.child(path, field);
                            let place = if inherit
                                || self.leads_to_mapped(&child)
                                || self.is_wanted(&child)
                            {
                                Place::Named {
                                    path: &child,
                                    inherit,
                                }
                            } else {
                                Place::Skipped
                            };
                            self.node(&field.schema, &full.namespace, place, false)?
                        }
                        Place::Element { rel } => {
                            let mut child = rel.to_vec();
                            child.push(field.name.clone());
                            self.node(
                                &field.schema,
                                &full.namespace,
                                Place::Element { rel: &child },
                                false,
                            )?
                        }
                        Place::Skipped => {
                            self.node(&field.schema, &full.namespace, Place::Skipped, false)?
                        }
                    };
                    nodes.push(node);
                }
                self.stack.pop();
                Ok(Node::Record(nodes))
            }
            Schema::Union(union) => {
                let mut branches = Vec::with_capacity(union.variants().len());
                for variant in union.variants() {
                    // The union's path is each branch's path: the role applies to whichever
                    // branch the data takes.
                    branches.push(self.node(variant, namespace, place, true)?);
                }
                Ok(Node::Union(branches))
            }
            Schema::Array(array) => {
                if let Some(role @ (Role::Tag | Role::Time(_) | Role::Measurement)) = role {
                    return self.mismatch(place, schema, role, in_union);
                }
                let expand = self.expands(place, schema, role, in_union)?;
                let items = match expand {
                    Some(_) => {
                        self.node(&array.items, namespace, Place::Element { rel: &[] }, false)?
                    }
                    None => self.node(&array.items, namespace, Place::Skipped, false)?,
                };
                Ok(Node::Array {
                    zero_width: items.is_zero_width(),
                    key: expand,
                    items: Box::new(items),
                })
            }
            Schema::Map(map) => {
                if let Some(role @ (Role::Tag | Role::Time(_) | Role::Measurement)) = role {
                    return self.mismatch(place, schema, role, in_union);
                }
                let expand = self.expands(place, schema, role, in_union)?;
                let values = match expand {
                    Some(_) => {
                        self.node(&map.types, namespace, Place::Element { rel: &[] }, false)?
                    }
                    None => self.node(&map.types, namespace, Place::Skipped, false)?,
                };
                Ok(Node::Map {
                    zero_width: values.is_zero_width(),
                    key: expand,
                    values: Box::new(values),
                })
            }
            Schema::Null => Ok(Node::Null),
            Schema::Fixed(fixed) if fixed.size == 0 => Ok(Node::Null),
            scalar => {
                let sink = match role {
                    None => Sink::Skip,
                    Some(role) => match self.sink(place, scalar, role) {
                        Ok(sink) => sink,
                        // Only a type mismatch depends on the branch the data takes;
                        // other errors are about the mapping and stop the compile.
                        Err(PlanError::WrongType { .. }) if in_union => {
                            return Ok(Node::Reject {
                                path: self.place_key(place),
                                avro_type: type_name(scalar),
                                role: role.name(),
                            });
                        }
                        Err(e) => return Err(e),
                    },
                };
                Ok(scalar_node(scalar, sink))
            }
        }
    }

    /// The path of `field` under `parent`, by its name; or by one of its aliases when
    /// only the alias is mapped (the field was renamed, and the mapping still uses the
    /// old name).
    fn child(&self, parent: &[String], field: &RecordField) -> Vec<String> {
        let with = |name: &str| {
            let mut path = parent.to_vec();
            path.push(name.to_owned());
            path
        };
        let by_name = with(&field.name);
        if self.is_wanted(&by_name) || self.leads_to_mapped(&by_name) {
            return by_name;
        }
        field
            .aliases
            .iter()
            .flatten()
            .map(|alias| with(alias))
            .find(|path| self.is_wanted(path) || self.leads_to_mapped(path))
            .unwrap_or(by_name)
    }

    fn is_wanted(&self, path: &[String]) -> bool {
        self.wanted.iter().any(|w| w.path == path)
    }

    fn place_key(&self, place: Place<'_>) -> String {
        match place {
            Place::Named { path, .. } => self.key(path),
            Place::Element { rel } => self.key(rel),
            Place::Skipped => String::new(),
        }
    }

    fn mismatch(
        &self,
        place: Place<'_>,
        schema: &Schema,
        role: Role,
        in_union: bool,
    ) -> Result<Node, PlanError> {
        if in_union {
            return Ok(Node::Reject {
                path: self.place_key(place),
                avro_type: type_name(schema),
                role: role.name(),
            });
        }
        Err(PlanError::WrongType {
            path: match place {
                Place::Named { path, .. } => path.join("."),
                _ => self.place_key(place),
            },
            avro_type: type_name(schema).to_owned(),
            role: role.name(),
        })
    }

    /// Whether an array or map at `place` is expanded, and under which key.
    fn expands(
        &self,
        place: Place<'_>,
        schema: &Schema,
        role: Option<Role>,
        in_union: bool,
    ) -> Result<Option<String>, PlanError> {
        match role {
            None => Ok(None),
            Some(Role::Field) if self.collections == CollectionMode::Expand => {
                Ok(Some(self.place_key(place)))
            }
            // All-scalars mode leaves collections out unless told to expand them.
            Some(Role::Field) if !self.explicit(place) => Ok(None),
            // Named on purpose as a field while collections are configured away: an
            // error, except in a union, where this branch is walked past.
            Some(role) => {
                self.mismatch(place, schema, role, in_union)?;
                Ok(None)
            }
        }
    }

    /// True when the mapping names this very path (not an enclosing record, not "all").
    fn explicit(&self, place: Place<'_>) -> bool {
        match place {
            Place::Named { path, .. } => self.is_wanted(path),
            _ => false,
        }
    }

    /// The sink for a scalar of type `schema` that the mapping gives `role`.
    fn sink(&self, place: Place<'_>, schema: &Schema, role: Role) -> Result<Sink, PlanError> {
        let wrong = || {
            Err(PlanError::WrongType {
                path: match place {
                    Place::Named { path, .. } => path.join("."),
                    _ => self.place_key(place),
                },
                avro_type: type_name(schema).to_owned(),
                role: role.name(),
            })
        };
        let is_bytes = matches!(
            schema,
            Schema::Bytes | Schema::BigDecimal | Schema::Fixed(_) | Schema::Duration
        );
        match role {
            Role::Field | Role::Tag if is_bytes && self.bytes == BytesMode::Skip => {
                if self.explicit(place) {
                    // Named on purpose but configured away: say so rather than drop it.
                    wrong()
                } else {
                    Ok(Sink::Skip)
                }
            }
            Role::Field => {
                let key = self.place_key(place);
                if key == TIME_KEY && matches!(place, Place::Named { .. }) {
                    return Err(PlanError::ReservedFieldKey { path: key });
                }
                Ok(Sink::Field(key))
            }
            Role::Tag => {
                let key = self.place_key(place);
                match self.tag_keys.binary_search(&key) {
                    Ok(rank) => Ok(Sink::Tag(rank)),
                    Err(_) => Err(PlanError::InvalidMapping(format!(
                        "tag {key:?} is not among the mapped tags"
                    ))),
                }
            }
            Role::Measurement => match schema {
                Schema::String | Schema::Enum(_) | Schema::Uuid => Ok(Sink::Measurement),
                _ => wrong(),
            },
            Role::Time(unit) => {
                let logical = match schema {
                    Schema::TimestampMillis | Schema::LocalTimestampMillis => {
                        Some(Precision::Milliseconds)
                    }
                    Schema::TimestampMicros | Schema::LocalTimestampMicros => {
                        Some(Precision::Microseconds)
                    }
                    Schema::TimestampNanos | Schema::LocalTimestampNanos => {
                        Some(Precision::Nanoseconds)
                    }
                    Schema::Int | Schema::Long => None,
                    _ => return wrong(),
                };
                match unit.or(logical) {
                    Some(unit) => Ok(Sink::Time(unit)),
                    None => Err(PlanError::NoTimeUnit {
                        path: self.place_key(place),
                    }),
                }
            }
        }
    }
}

fn scalar_node(schema: &Schema, sink: Sink) -> Node {
    match schema {
        Schema::Boolean => Node::Boolean(sink),
        Schema::Int | Schema::Date | Schema::TimeMillis => Node::Int(sink),
        Schema::Float => Node::Float(sink),
        Schema::Double => Node::Double(sink),
        Schema::Bytes | Schema::BigDecimal => Node::Bytes(sink),
        Schema::String => Node::String(sink),
        Schema::Uuid => Node::Uuid(sink),
        Schema::Fixed(fixed) => Node::Fixed(fixed.size, sink),
        Schema::Duration => Node::Fixed(12, sink),
        Schema::Enum(e) => Node::Enum(e.symbols.clone(), sink),
        Schema::Decimal(d) => Node::Decimal {
            fixed: match &*d.inner {
                Schema::Fixed(f) => Some(f.size),
                _ => None,
            },
            scale: i32::try_from(d.scale).unwrap_or(i32::MAX),
            sink,
        },
        // Long and every logical type on long.
        _ => Node::Long(sink),
    }
}
