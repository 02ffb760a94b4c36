//! Arbitrary bytes through the Avro framing and decode plans: every outcome must be a
//! point or a typed error, never a panic, a hang or an outsized allocation.
#![no_main]

use std::sync::LazyLock;

use apache_avro::Schema;
use kinflux_avro::{BytesMode, CollectionMode, DecodePlan, Mapping, MeasurementSource, framing};
use libfuzzer_sys::fuzz_target;

const GARDEN: &str = include_str!("../../examples/schemas/garden.avsc");

/// Every kind of node: nested records, unions, enums, fixed, decimals, arrays and maps
/// of records, all expanded.
const WIDE: &str = r#"{"type":"record","name":"Wide","namespace":"fuzz","fields":[
    {"name":"s","type":"string"},
    {"name":"u","type":["null","int","string","boolean","float"]},
    {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
    {"name":"f","type":{"type":"fixed","name":"F","size":3}},
    {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},
    {"name":"id","type":{"type":"string","logicalType":"uuid"}},
    {"name":"nested","type":{"type":"record","name":"N","fields":[
        {"name":"x","type":"double"},{"name":"b","type":"bytes"}]}},
    {"name":"list","type":{"type":"array","items":"fuzz.N"}},
    {"name":"nulls","type":{"type":"array","items":"null"}},
    {"name":"dict","type":{"type":"map","values":{"type":"array","items":"long"}}},
    {"name":"t","type":["null",{"type":"long","logicalType":"timestamp-micros"}]}
]}"#;

static PLANS: LazyLock<Vec<DecodePlan>> = LazyLock::new(|| {
    let garden = Schema::parse_str(GARDEN).expect("garden schema");
    let wide = Schema::parse_str(WIDE).expect("wide schema");
    let mut garden_mapping = Mapping::new(MeasurementSource::Constant("garden".into()));
    garden_mapping.tags = vec!["sensor_id".into(), "zone".into(), "plant".into()];
    garden_mapping.timestamp = Some(kinflux_avro::TimestampSource {
        field: "time".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    let mut wide_mapping = Mapping::new(MeasurementSource::Field("s".into()));
    wide_mapping.tags = vec!["e".into(), "u".into()];
    wide_mapping.bytes = BytesMode::Base64;
    wide_mapping.collections = CollectionMode::Expand;
    wide_mapping.timestamp = Some(kinflux_avro::TimestampSource {
        field: "t".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    vec![
        DecodePlan::compile(&garden, &garden_mapping).expect("garden plan"),
        DecodePlan::compile(&wide, &wide_mapping).expect("wide plan"),
    ]
});

fuzz_target!(|data: &[u8]| {
    for plan in PLANS.iter() {
        let _ = plan.decode(data, None);
    }
    if let Ok((id, body)) = framing::split_confluent(data) {
        let _ = PLANS[(id % 2) as usize].decode(body, None);
    }
    if let Ok((_, body)) = framing::split_single_object(data) {
        let _ = PLANS[1].decode(body, None);
    }
});
