//! Property: for random schemas, records and mappings, the plan decoder gives the same
//! point (or fails likewise) as apache-avro's `from_avro_datum` followed by a plain,
//! Value-based reference mapper written here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use apache_avro::{Decimal, Schema, from_avro_datum, to_avro_datum};
use base64::Engine as _;
use kinflux_avro::{
    BytesMode, CollectionMode, DecodePlan, Mapping, MeasurementSource, TimestampSource,
};
use kinflux_series::{FieldValue, FieldValueRef, Point, PointRef, PointView, Precision, Timestamp};
use proptest::prelude::*;

/// A random Avro type.
#[derive(Debug, Clone)]
enum Ty {
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Str,
    Bytes,
    Fixed(usize),
    Enum(usize),
    Decimal,
    Nullable(Box<Ty>),
    IntOrString,
    Record(Vec<Ty>),
    Array(Box<Ty>),
    Map(Box<Ty>),
}

impl Ty {
    /// Usable as a tag: a scalar that is text or a whole number, possibly nullable.
    fn taggable(&self) -> bool {
        match self {
            Ty::Bool | Ty::Int | Ty::Long | Ty::Str | Ty::Enum(_) | Ty::IntOrString => true,
            Ty::Nullable(inner) => inner.taggable(),
            _ => false,
        }
    }

    /// A plain scalar field that an explicit field list may name in any mapping.
    fn plain_scalar(&self) -> bool {
        match self {
            Ty::Bool | Ty::Int | Ty::Long | Ty::Float | Ty::Double | Ty::Str | Ty::Enum(_) => true,
            Ty::Decimal | Ty::IntOrString | Ty::Record(_) => true,
            Ty::Nullable(inner) => inner.plain_scalar(),
            _ => false,
        }
    }

    fn is_long(&self) -> bool {
        match self {
            Ty::Long => true,
            Ty::Nullable(inner) => inner.is_long(),
            _ => false,
        }
    }
}

fn ty() -> impl Strategy<Value = Ty> {
    let leaf = prop_oneof![
        Just(Ty::Null),
        Just(Ty::Bool),
        Just(Ty::Int),
        Just(Ty::Long),
        Just(Ty::Float),
        Just(Ty::Double),
        Just(Ty::Str),
        Just(Ty::Bytes),
        (1usize..4).prop_map(Ty::Fixed),
        (1usize..4).prop_map(Ty::Enum),
        Just(Ty::Decimal),
        Just(Ty::IntOrString),
    ];
    let leaf = prop_oneof![
        3 => leaf.clone(),
        1 => leaf.prop_filter("no null or union in a union", |t| !matches!(t, Ty::Null | Ty::IntOrString)).prop_map(|t| Ty::Nullable(Box::new(t))),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Ty::Record),
            inner.clone().prop_map(|t| Ty::Array(Box::new(t))),
            inner.prop_map(|t| Ty::Map(Box::new(t))),
        ]
    })
}

/// Renders the schema JSON; named types get unique names from `next`.
fn render(ty: &Ty, next: &mut usize) -> serde_json::Value {
    use serde_json::json;
    let mut name = |kind: &str| {
        *next += 1;
        format!("{kind}{next}")
    };
    match ty {
        Ty::Null => json!("null"),
        Ty::Bool => json!("boolean"),
        Ty::Int => json!("int"),
        Ty::Long => json!("long"),
        Ty::Float => json!("float"),
        Ty::Double => json!("double"),
        Ty::Str => json!("string"),
        Ty::Bytes => json!("bytes"),
        Ty::Fixed(size) => json!({"type": "fixed", "name": name("F"), "size": size}),
        Ty::Enum(n) => {
            json!({"type": "enum", "name": name("E"), "symbols": (0..*n).map(|i| format!("S{i}")).collect::<Vec<_>>()})
        }
        Ty::Decimal => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": 30, "scale": 2})
        }
        Ty::Nullable(inner) => json!(["null", render(inner, next)]),
        Ty::IntOrString => json!(["int", "string"]),
        Ty::Record(fields) => {
            let record_name = name("R");
            let fields: Vec<_> = fields
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"name": format!("f{i}"), "type": render(t, next)}))
                .collect();
            json!({"type": "record", "name": record_name, "fields": fields})
        }
        Ty::Array(items) => json!({"type": "array", "items": render(items, next)}),
        Ty::Map(values) => json!({"type": "map", "values": render(values, next)}),
    }
}

fn value(ty: &Ty) -> BoxedStrategy<Value> {
    match ty {
        Ty::Null => Just(Value::Null).boxed(),
        Ty::Bool => any::<bool>().prop_map(Value::Boolean).boxed(),
        Ty::Int => any::<i32>().prop_map(Value::Int).boxed(),
        Ty::Long => prop_oneof![(-1i64 << 40..1i64 << 40), any::<i64>()]
            .prop_map(Value::Long)
            .boxed(),
        Ty::Float => (-1e6f32..1e6f32).prop_map(Value::Float).boxed(),
        Ty::Double => prop_oneof![-1e9f64..1e9f64, proptest::num::f64::NORMAL]
            .prop_map(Value::Double)
            .boxed(),
        Ty::Str => "\\PC{0,6}".prop_map(Value::String).boxed(),
        Ty::Bytes => prop::collection::vec(any::<u8>(), 0..6)
            .prop_map(Value::Bytes)
            .boxed(),
        Ty::Fixed(size) => {
            let size = *size;
            prop::collection::vec(any::<u8>(), size)
                .prop_map(move |v| Value::Fixed(size, v))
                .boxed()
        }
        Ty::Enum(n) => (0..*n as u32)
            .prop_map(|i| Value::Enum(i, format!("S{i}")))
            .boxed(),
        Ty::Decimal => prop::collection::vec(any::<u8>(), 1..6)
            .prop_map(|v| Value::Decimal(Decimal::from(v)))
            .boxed(),
        Ty::Nullable(inner) => prop_oneof![
            Just(Value::Union(0, Box::new(Value::Null))),
            value(inner).prop_map(|v| Value::Union(1, Box::new(v))),
        ]
        .boxed(),
        Ty::IntOrString => prop_oneof![
            any::<i32>().prop_map(|i| Value::Union(0, Box::new(Value::Int(i)))),
            "[a-z]{0,3}".prop_map(|s| Value::Union(1, Box::new(Value::String(s)))),
        ]
        .boxed(),
        Ty::Record(fields) => fields
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(|values| {
                Value::Record(
                    values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("f{i}"), v))
                        .collect(),
                )
            })
            .boxed(),
        Ty::Array(items) => prop::collection::vec(value(items), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        Ty::Map(values) => prop::collection::hash_map("[a-z]{1,3}", value(values), 0..3)
            .prop_map(Value::Map)
            .boxed(),
    }
}

/// The reference mapper: apache-avro's value tree, walked plainly.
struct Reference<'m> {
    mapping: &'m Mapping,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
    time: Option<Result<Timestamp, ()>>,
}

fn decimal_f64(bytes: &[u8], scale: i32) -> f64 {
    // Two's complement, big endian: the first byte carries the sign.
    let mut v = f64::from(bytes[0] as i8);
    for b in &bytes[1..] {
        v = v * 256.0 + f64::from(*b);
    }
    v / 10f64.powi(scale)
}

impl Reference<'_> {
    fn tag(&mut self, key: &str, v: &Value) {
        let text = match v {
            Value::Union(_, inner) => return self.tag(key, inner),
            Value::Null => return,
            Value::String(s) => s.clone(),
            Value::Enum(_, s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Long(i) => i.to_string(),
            Value::Boolean(b) => b.to_string(),
            other => panic!("untaggable {other:?}"),
        };
        if !text.is_empty() {
            self.tags.push((key.to_owned(), text));
        }
    }

    fn time(&mut self, v: &Value) {
        match v {
            Value::Union(_, inner) => self.time(inner),
            Value::Null => {}
            Value::Long(ms) => {
                self.time =
                    Some(Timestamp::from_precision(*ms, Precision::Milliseconds).map_err(|_| ()))
            }
            other => panic!("not a time {other:?}"),
        }
    }

    fn field(&mut self, key: &str, v: &Value) {
        let sep = &self.mapping.field_separator;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let value = match v {
            Value::Null => return,
            Value::Boolean(b) => FieldValue::Boolean(*b),
            Value::Int(i) => FieldValue::Integer(i64::from(*i)),
            Value::Long(i) => FieldValue::Integer(*i),
            Value::Float(f) => FieldValue::Float(f64::from(*f)),
            Value::Double(f) => FieldValue::Float(*f),
            Value::String(s) | Value::Enum(_, s) => FieldValue::String(s.clone()),
            Value::Bytes(b) | Value::Fixed(_, b) => match self.mapping.bytes {
                BytesMode::Base64 => FieldValue::String(b64(b)),
                _ => return,
            },
            Value::Decimal(d) => {
                FieldValue::Float(decimal_f64(&<Vec<u8>>::try_from(d).unwrap(), 2))
            }
            Value::Union(_, inner) => return self.field(key, inner),
            Value::Record(fields) => {
                for (name, v) in fields {
                    self.field(&format!("{key}{sep}{name}"), v);
                }
                return;
            }
            Value::Array(items) => {
                if self.mapping.collections == CollectionMode::Expand {
                    for (i, v) in items.iter().enumerate() {
                        self.field(&format!("{key}{sep}{i}"), v);
                    }
                }
                return;
            }
            Value::Map(entries) => {
                if self.mapping.collections == CollectionMode::Expand {
                    for (k, v) in entries {
                        self.field(&format!("{key}{sep}{k}"), v);
                    }
                }
                return;
            }
            other => panic!("unexpected {other:?}"),
        };
        self.fields.push((key.to_owned(), value));
    }

    fn map(mapping: &Mapping, record: &Value, fallback: Option<Timestamp>) -> Result<Point, ()> {
        let Value::Record(top) = record else {
            panic!("not a record")
        };
        let mut r = Reference {
            mapping,
            tags: vec![],
            fields: vec![],
            time: None,
        };
        let time_field = mapping.timestamp.as_ref().map(|t| t.field.as_str());
        for (name, v) in top {
            if mapping.tags.contains(name) {
                r.tag(name, v);
            } else if Some(name.as_str()) == time_field {
                r.time(v);
            } else if mapping.fields.as_ref().is_none_or(|f| f.contains(name)) {
                r.field(name, v);
            }
        }
        let time = match r.time {
            Some(Err(())) => return Err(()),
            Some(Ok(t)) => Some(t),
            None => fallback,
        };
        PointRef::new(
            Cow::Borrowed("m"),
            r.tags
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
            r.fields
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.as_ref()))
                .collect(),
            time,
        )
        .map(PointRef::into_owned)
        .map_err(|_| ())
    }
}

fn field_map(p: &Point) -> BTreeMap<String, FieldValue> {
    PointView::fields(p)
        .map(|(k, v)| {
            let v = match v {
                FieldValueRef::String(s) => FieldValue::String(s.into_owned()),
                other => other.into_owned(),
            };
            (k.to_owned(), v)
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Case {
    schema_json: String,
    record: Value,
    mapping: Mapping,
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(ty(), 1..7)
        .prop_flat_map(|fields| {
            let n = fields.len();
            let record = value(&Ty::Record(fields.clone()));
            (
                Just(fields),
                record,
                prop::collection::vec(any::<bool>(), n),
                prop::option::of(0..n),
                prop::option::of(prop::collection::vec(any::<bool>(), n)),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(
            |(fields, record, tag_mask, time_pick, field_mask, base64, expand)| {
                let mut next = 0;
                let schema_json = render(&Ty::Record(fields.clone()), &mut next).to_string();
                let mut mapping = Mapping::new(MeasurementSource::Constant("m".into()));
                let time = time_pick.filter(|&i| fields[i].is_long());
                mapping.timestamp = time.map(|i| TimestampSource {
                    field: format!("f{i}"),
                    unit: Some(Precision::Milliseconds),
                    format: None,
                    timezone: None,
                });
                mapping.tags = (0..fields.len())
                    .filter(|&i| tag_mask[i] && fields[i].taggable() && Some(i) != time)
                    .map(|i| format!("f{i}"))
                    .collect();
                mapping.fields = field_mask.map(|mask| {
                    (0..fields.len())
                        .filter(|&i| mask[i] && fields[i].plain_scalar())
                        .map(|i| format!("f{i}"))
                        .filter(|f| {
                            !mapping.tags.contains(f)
                                && Some(f) != mapping.timestamp.as_ref().map(|t| &t.field)
                        })
                        .collect()
                });
                mapping.bytes = if base64 {
                    BytesMode::Base64
                } else {
                    BytesMode::Skip
                };
                mapping.collections = if expand {
                    CollectionMode::Expand
                } else {
                    CollectionMode::Skip
                };
                Case {
                    schema_json,
                    record,
                    mapping,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plan_decoder_matches_apache_avro_and_a_reference_mapper(case in case()) {
        let schema = Schema::parse_str(&case.schema_json).unwrap();
        let body = to_avro_datum(&schema, case.record.clone()).unwrap();
        let tree = from_avro_datum(&schema, &mut &body[..], None).unwrap();
        let fallback = Some(Timestamp::from_nanos(777));
        let want = Reference::map(&case.mapping, &tree, fallback);

        let plan = DecodePlan::compile(&schema, &case.mapping).unwrap();
        let got = plan.decode_owned(&body, fallback);
        match (got, want) {
            (Ok(got), Ok(want)) => {
                prop_assert_eq!(got.measurement(), want.measurement());
                prop_assert_eq!(got.tags(), want.tags());
                prop_assert_eq!(field_map(&got), field_map(&want));
                prop_assert_eq!(got.timestamp(), want.timestamp());
            }
            (Err(_), Err(())) => {}
            (got, want) => prop_assert!(false, "plan gave {:?}, reference gave {:?}", got, want),
        }
    }

    #[test]
    fn truncated_or_corrupted_records_never_panic(case in case(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let schema = Schema::parse_str(&case.schema_json).unwrap();
        let body = to_avro_datum(&schema, case.record.clone()).unwrap();
        let plan = DecodePlan::compile(&schema, &case.mapping).unwrap();
        if !body.is_empty() {
            let _ = plan.decode(&body[..cut.index(body.len())], None);
            let mut corrupted = body.clone();
            let at = flip.0.index(corrupted.len());
            corrupted[at] ^= flip.1;
            let _ = plan.decode(&corrupted, None);
        }
    }
}

#[test]
fn reference_mapper_agrees_on_a_known_record() {
    // Guards the reference itself: a hand-checked record.
    let mapping = {
        let mut m = Mapping::new(MeasurementSource::Constant("m".into()));
        m.tags = vec!["f0".into()];
        m
    };
    let record = Value::Record(vec![
        ("f0".into(), Value::String("a".into())),
        (
            "f1".into(),
            Value::Record(vec![("f0".into(), Value::Long(2))]),
        ),
    ]);
    let point = Reference::map(&mapping, &record, None).unwrap();
    assert_eq!(point.tags().get("f0").map(|v| v.as_str()), Some("a"));
    assert_eq!(
        field_map(&point),
        BTreeMap::from([("f1_f0".to_owned(), FieldValue::Integer(2))])
    );
    let _unused: HashMap<(), ()> = HashMap::new();
}
