//! Avro decoding of the garden schema: the compiled plan (borrowed and owned points)
//! against apache-avro's `from_avro_datum` followed by a Value-based mapping to the same
//! points, side by side.
#![allow(missing_docs)]

use std::hint::black_box;

use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinflux_avro::{DecodePlan, Mapping};
use kinflux_series::{Point, Precision, Timestamp};

const GARDEN: &str = include_str!("../examples/schemas/garden.avsc");
const RECORDS: usize = 1000;
const ZONES: [&str; 5] = ["NORTH", "SOUTH", "EAST", "WEST", "GREENHOUSE"];
const PLANTS: [&str; 4] = ["tomato", "basil", "lettuce", "rosemary"];

fn mapping() -> Mapping {
    let mut m = Mapping::new(kinflux_avro::MeasurementSource::Constant("garden".into()));
    m.tags = vec!["sensor_id".into(), "zone".into(), "plant".into()];
    m.timestamp = Some(kinflux_avro::TimestampSource {
        field: "time".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    m
}

fn records(schema: &Schema) -> Vec<Vec<u8>> {
    (0..RECORDS)
        .map(|i| {
            let zone = i % ZONES.len();
            let value = Value::Record(vec![
                (
                    "sensor_id".into(),
                    Value::String(format!("sensor-{:03}", i % 50)),
                ),
                ("zone".into(), Value::Enum(zone as u32, ZONES[zone].into())),
                (
                    "plant".into(),
                    Value::String(PLANTS[i % PLANTS.len()].into()),
                ),
                (
                    "soil_moisture".into(),
                    Value::Double(0.2 + (i % 60) as f64 / 100.0),
                ),
                (
                    "temperature".into(),
                    Value::Float(15.0 + (i % 20) as f32 / 2.0),
                ),
                ("light_lux".into(), Value::Long(1000 + i as i64 * 7)),
                (
                    "battery".into(),
                    Value::Double(1.0 - (i % 100) as f64 / 200.0),
                ),
                (
                    "ph".into(),
                    if i % 3 == 0 {
                        Value::Union(0, Box::new(Value::Null))
                    } else {
                        Value::Union(1, Box::new(Value::Double(6.0 + (i % 10) as f64 / 10.0)))
                    },
                ),
                (
                    "note".into(),
                    if i % 10 == 0 {
                        Value::Union(1, Box::new(Value::String("watered".into())))
                    } else {
                        Value::Union(0, Box::new(Value::Null))
                    },
                ),
                (
                    "time".into(),
                    Value::TimestampMillis(1_700_000_000_000 + i as i64 * 1000),
                ),
            ]);
            to_avro_datum(schema, value).expect("garden record matches its schema")
        })
        .collect()
}

/// The straightforward way: a value tree per record, then a walk that picks the
/// measurement, tags, fields and time by name.
fn value_then_map(schema: &Schema, body: &[u8]) -> Point {
    let value = from_avro_datum(schema, &mut &body[..], None).expect("valid record");
    let Value::Record(fields) = value else {
        panic!("garden records are records")
    };
    let mut point = Point::builder("garden");
    for (name, value) in fields {
        let value = match value {
            Value::Union(_, inner) => *inner,
            other => other,
        };
        point = match (name.as_str(), value) {
            (_, Value::Null) => point,
            ("sensor_id" | "plant", Value::String(s)) => point.tag(name, s),
            ("zone", Value::Enum(_, s)) => point.tag(name, s),
            ("time", Value::TimestampMillis(ms)) => point.timestamp(
                Timestamp::from_precision(ms, Precision::Milliseconds).expect("time in range"),
            ),
            (_, Value::Double(f)) => point.field(name, f),
            (_, Value::Float(f)) => point.field(name, f64::from(f)),
            (_, Value::Long(i)) => point.field(name, i),
            (_, Value::String(s)) => point.field(name, s),
            (_, other) => panic!("unexpected {other:?}"),
        };
    }
    point.build().expect("valid point")
}

fn bench(c: &mut Criterion) {
    let schema = Schema::parse_str(GARDEN).expect("garden schema parses");
    let records = records(&schema);
    let plan = DecodePlan::compile(&schema, &mapping()).expect("garden mapping compiles");
    // Same points both ways, or the comparison means nothing.
    for body in &records {
        assert_eq!(
            plan.decode_owned(body, None).expect("decodes"),
            value_then_map(&schema, body)
        );
    }

    let mut group = c.benchmark_group("avro_decode_garden");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("plan_point_ref", |b| {
        b.iter(|| {
            for body in &records {
                black_box(plan.decode(black_box(body), None).expect("decodes"));
            }
        })
    });
    group.bench_function("plan_point_owned", |b| {
        b.iter(|| {
            for body in &records {
                black_box(plan.decode_owned(black_box(body), None).expect("decodes"));
            }
        })
    });
    group.bench_function("apache_avro_value_then_map", |b| {
        b.iter(|| {
            for body in &records {
                black_box(value_then_map(&schema, black_box(body)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
