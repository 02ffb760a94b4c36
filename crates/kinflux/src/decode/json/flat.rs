//! The flat path: an object of scalar members mapped as it is read, with no tree.
//!
//! Most JSON records are one flat object whose tags, time and measurement are top-level
//! members. Building the tree for them (a vector of members, sorted so that lookups and
//! repeated keys work like serde_json's map), looking the mapped members up in it and
//! freeing it took a quarter of the decoder's instructions (callgrind). Here each member
//! goes straight to its slot (a mapped member) or into the fields as it is read.
//!
//! The flat path gives exactly what the tree gives, or gives up: a member whose value is
//! an object or an array, bad JSON, a missing member, a value of the wrong type, a point
//! that fails its checks. The caller then decodes the record through the tree, which also
//! names the error. The tests hold both paths to the same results on made-up documents.

use std::borrow::Cow;

use kinflux_avro::MeasurementSource;
use kinflux_series::{PointRef, Timestamp};

use super::value::Json;
use super::{Field, JsonDecoder, read, time_of};

/// Mapped members a flat plan holds at most: slots live on the stack.
const MAX_SLOTS: usize = 8;

/// What a mapped top-level member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Measurement,
    /// The `n`th tag of the mapping.
    Tag(usize),
    Time,
}

/// The mapped top-level members of a decoder whose every mapped path is one member.
#[derive(Debug, Clone)]
pub(super) struct FlatPlan {
    /// Each mapped member's name and role; the index is its slot.
    slots: Vec<(String, Role)>,
}

impl FlatPlan {
    /// The plan for `decoder`, or `None` when its mapping needs the tree: nested paths,
    /// listed fields, renames (two keys could become one field), a member with two roles,
    /// or more mapped members than slots.
    pub(super) fn new(decoder: &JsonDecoder) -> Option<Self> {
        if decoder.fields.is_some()
            || !decoder.used_nested.is_empty()
            || !decoder.typing.rename.is_empty()
        {
            return None;
        }
        let mut slots = Vec::new();
        if let Some(path) = &decoder.measurement_path {
            slots.push((path.first()?.clone(), Role::Measurement));
        }
        for (n, (path, _)) in decoder.tags.iter().enumerate() {
            slots.push((path.first()?.clone(), Role::Tag(n)));
        }
        if let Some(time) = &decoder.time {
            slots.push((time.path.first()?.clone(), Role::Time));
        }
        let names_once = slots
            .iter()
            .enumerate()
            .all(|(i, (name, _))| slots[..i].iter().all(|(other, _)| other != name));
        (slots.len() <= MAX_SLOTS && names_once).then_some(FlatPlan { slots })
    }

    /// The slot of the member named `key`, if it is mapped.
    fn slot(&self, key: &str) -> Option<usize> {
        self.slots.iter().position(|(name, _)| name == key)
    }

    /// The slot of `role`.
    fn slot_of(&self, role: Role) -> Option<usize> {
        self.slots.iter().position(|&(_, r)| r == role)
    }
}

impl JsonDecoder {
    /// The point of `text` read as a flat object, or `None` when the tree must decide
    /// (see the module's doc).
    pub(super) fn flat_point<'v>(
        &'v self,
        plan: &FlatPlan,
        text: &'v str,
        fallback: Option<Timestamp>,
    ) -> Option<PointRef<'v>> {
        let mut slots: [Option<Json<'v>>; MAX_SLOTS] = [const { None }; MAX_SLOTS];
        let mut fields: Vec<Field<'v>> = Vec::new();
        let mut member = |key: Cow<'v, str>, value: Json<'v>| match plan.slot(&key) {
            Some(slot) => {
                // A repeated member keeps its last value, as in the tree.
                slots[slot] = Some(value);
                true
            }
            None => match self.typing.field_of(&key, value) {
                Ok(Some(value)) => {
                    fields.push((key, value));
                    true
                }
                Ok(None) => {
                    // `null` leaves the field out, whatever an earlier repeat said.
                    fields.retain(|(k, _)| *k != key);
                    true
                }
                Err(_) => false,
            },
        };
        if !read::read_flat_object(text, &mut member) {
            return None;
        }
        let mut take = |role: Role| plan.slot_of(role).and_then(|slot| slots[slot].take());

        let measurement = match &self.mapping.measurement {
            MeasurementSource::Constant(c) => Cow::Borrowed(c.as_str()),
            _ => match take(Role::Measurement)? {
                Json::String(s) => s,
                _ => return None,
            },
        };
        let mut tags = Vec::with_capacity(self.tags.len());
        for (n, (path, key)) in self.tags.iter().enumerate() {
            let value = match take(Role::Tag(n)) {
                None if self.optional.contains(&path[0]) => continue,
                None => return None,
                Some(Json::Null) => continue,
                Some(Json::String(s)) => s,
                Some(v @ (Json::Number(_) | Json::Bool(_))) => Cow::Owned(v.to_string()),
                Some(_) => return None,
            };
            tags.push((Cow::Borrowed(key.as_str()), value));
        }
        let mut timestamp = fallback;
        if let Some(spec) = &self.time {
            match take(Role::Time) {
                None if self.optional.contains(&spec.path[0]) => {}
                None => return None,
                Some(Json::Null) => {}
                Some(v) => timestamp = Some(time_of(&v, spec).ok()?),
            }
        }
        // The tree gives the fields in key order, a repeated key at its last value:
        // a stable sort keeps repeats in document order for the point to keep the last.
        // Keys mostly differ in their first byte: deciding on it inline spares a `memcmp`
        // call per comparison.
        let by_key = |a: &Field<'_>, b: &Field<'_>| {
            let (a, b) = (a.0.as_bytes(), b.0.as_bytes());
            a.first().cmp(&b.first()).then_with(|| a.cmp(b))
        };
        if !fields.is_sorted_by(|a, b| by_key(a, b).is_le()) {
            fields.sort_by(by_key);
        }
        PointRef::new(measurement, tags, fields, timestamp).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kinflux_avro::Mapping;
    use kinflux_series::PointView;
    use proptest::prelude::*;

    use super::super::{FieldType, NumberMode, Typing};
    use super::*;

    /// The decoder of a mapping drawn from the members the documents below use.
    fn decoder(
        measurement_field: bool,
        tags: Vec<&str>,
        time: u8,
        optional: Vec<&str>,
        pinned: Option<FieldType>,
        auto: bool,
    ) -> JsonDecoder {
        let measurement = if measurement_field {
            r#"{ field = "m" }"#
        } else {
            r#"{ constant = "load" }"#
        };
        let timestamp = match time {
            0 => "",
            1 => r#"timestamp = { field = "time", unit = "ms" }"#,
            _ => r#"timestamp = { field = "time" }"#,
        };
        let toml = format!(
            "measurement = {measurement}\ntags = {tags:?}\noptional = {optional:?}\n{timestamp}"
        );
        let mapping: Mapping = toml::from_str(&toml).expect(&toml);
        let typing = Typing {
            types: pinned
                .map(|ty| BTreeMap::from([("usage".to_owned(), ty)]))
                .unwrap_or_default(),
            numbers: if auto {
                NumberMode::Auto
            } else {
                NumberMode::Float
            },
            ..Typing::default()
        };
        JsonDecoder::with_typing(mapping, typing).expect("a mapping for JSON")
    }

    /// The same decoder with the flat path turned off: every record through the tree.
    fn tree_only(decoder: &JsonDecoder) -> JsonDecoder {
        JsonDecoder {
            flat: None,
            ..decoder.clone()
        }
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "host", "region", "time", "m", "usage", "ok", "a", "b", "x y", "é", "", "a\\\"",
        ])
    }

    /// A member's value: mostly scalars of every kind, sometimes nested or broken.
    fn value() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "1",
            "-7",
            "0.5",
            "1e3",
            "18446744073709551615",
            "-9223372036854775809",
            "1700000000000",
            "1.5e300",
            "\"s1\"",
            "\"\"",
            "\"12\"",
            "\"a\\\"b\"",
            "\"line\\nbreak\"",
            "\"2024-01-02T03:04:05Z\"",
            "true",
            "false",
            "null",
            "null",
            "{\"k\":1}",
            "[1,2]",
            "[]",
            "nul",
            "\"open",
        ])
    }

    fn document() -> impl Strategy<Value = String> {
        let members = prop::collection::vec((key(), value(), any::<bool>()), 0..8);
        prop_oneof![
            8 => members.prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v, spaced)| {
                        let k = serde_json::to_string(k).expect("a key");
                        if spaced { format!(" {k} : {v} ") } else { format!("{k}:{v}") }
                    })
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
            1 => Just("[{\"usage\":1}]".to_owned()),
            1 => Just("\"text\"".to_owned()),
            1 => Just("{\"usage\":1} x".to_owned()),
        ]
    }

    proptest! {
        /// Whatever the document and the mapping, the flat path gives what the tree gives:
        /// the same point, or the tree's error.
        #[test]
        fn flat_objects_map_as_the_tree_maps_them(
            doc in document(),
            measurement_field in any::<bool>(),
            tags in prop::sample::subsequence(vec!["host", "region", "ok"], 0..=3),
            time in 0u8..3,
            optional in prop::sample::subsequence(vec!["host", "m", "time", "region"], 0..=4),
            pinned in prop::option::of(prop::sample::select(vec![
                FieldType::Float, FieldType::Integer, FieldType::String, FieldType::Boolean,
            ])),
            auto in any::<bool>(),
            fallback in prop::option::of(0i64..10),
        ) {
            let flat = decoder(measurement_field, tags, time, optional, pinned, auto);
            prop_assert!(flat.flat.is_some());
            let tree = tree_only(&flat);
            let fallback = fallback.map(Timestamp::from_nanos);
            prop_assert_eq!(
                flat.decode_all(doc.as_bytes(), fallback),
                tree.decode_all(doc.as_bytes(), fallback),
                "{}", doc
            );
        }
    }

    /// The usual record takes the flat path; nested members, listed fields and renames
    /// take the tree.
    #[test]
    fn flat_objects_take_the_flat_path_and_the_rest_the_tree() {
        let d = decoder(false, vec!["host"], 1, vec![], None, false);
        let text = r#"{"host":"a","usage":0.5,"requests":3,"ok":true,"time":1700000000000}"#;
        let point = d.flat(text, None).expect("a flat object");
        assert_eq!(
            point.fields().map(|(k, _)| k).collect::<Vec<_>>(),
            ["ok", "requests", "usage"],
            "fields in key order, as the tree gives them"
        );
        assert!(d.flat(r#"{"host":"a","usage":{"x":1}}"#, None).is_none());
        assert!(d.flat(r#"{"usage":1}"#, None).is_none(), "host is missing");

        let nested: Mapping =
            toml::from_str("measurement = { constant = \"m\" }\ntags = [\"sensor.id\"]").unwrap();
        assert!(JsonDecoder::new(nested).unwrap().flat.is_none());
        let listed: Mapping =
            toml::from_str("measurement = { constant = \"m\" }\nfields = [\"usage\"]").unwrap();
        assert!(JsonDecoder::new(listed).unwrap().flat.is_none());
        let renamed = Typing {
            rename: BTreeMap::from([("usage".to_owned(), "u".to_owned())]),
            ..Typing::default()
        };
        let plain: Mapping = toml::from_str("measurement = { constant = \"m\" }").unwrap();
        assert!(
            JsonDecoder::with_typing(plain, renamed)
                .unwrap()
                .flat
                .is_none()
        );
    }
}
