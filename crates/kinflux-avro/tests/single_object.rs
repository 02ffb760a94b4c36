//! Single-object encoding: records written by apache-avro's `GenericSingleObjectWriter`
//! (`C3 01`, the schema's Rabin fingerprint, the body) decode with the schema they name.

use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectWriter, Schema};
use kinflux_avro::{
    DecodeError, Error, Mapping, MeasurementSource, PlanError, SchemaError, SingleObjectDecoder,
};
use kinflux_series::PointView;

const V1: &str = r#"{"type":"record","name":"Reading","namespace":"so","fields":[
    {"name":"sensor","type":"string"},{"name":"v","type":"double"}]}"#;
const V2: &str = r#"{"type":"record","name":"Reading","namespace":"so","fields":[
    {"name":"sensor","type":"string"},{"name":"v","type":"double"},
    {"name":"unit","type":"string","default":"C"}]}"#;
const NO_SENSOR: &str = r#"{"type":"record","name":"Other","fields":[{"name":"v","type":"long"}]}"#;

fn write(schema: &Schema, value: Value) -> Vec<u8> {
    let mut writer = GenericSingleObjectWriter::new_with_capacity(schema, 64).unwrap();
    let mut out = Vec::new();
    writer.write_value(value, &mut out).unwrap();
    out
}

#[test]
fn records_decode_with_the_schema_their_fingerprint_names() {
    let v1 = Schema::parse_str(V1).unwrap();
    let v2 = Schema::parse_str(V2).unwrap();
    let other = Schema::parse_str(NO_SENSOR).unwrap();
    let mut mapping = Mapping::new(MeasurementSource::RecordName);
    mapping.tags = vec!["sensor".into()];
    let decoder = SingleObjectDecoder::new([&v1, &v2, &other], &mapping);

    let old = write(
        &v1,
        Value::Record(vec![
            ("sensor".into(), Value::String("a".into())),
            ("v".into(), Value::Double(1.5)),
        ]),
    );
    assert_eq!(old[..2], [0xC3, 0x01]);
    let point = decoder.decode(&old, None).unwrap();
    assert_eq!(point.measurement(), "so.Reading");
    assert_eq!(point.fields().map(|(k, _)| k).collect::<Vec<_>>(), ["v"]);

    let new = write(
        &v2,
        Value::Record(vec![
            ("sensor".into(), Value::String("a".into())),
            ("v".into(), Value::Double(1.5)),
            ("unit".into(), Value::String("F".into())),
        ]),
    );
    let point = decoder.decode(&new, None).unwrap();
    assert_eq!(
        point.fields().map(|(k, _)| k).collect::<Vec<_>>(),
        ["v", "unit"]
    );

    let unfit = write(&other, Value::Record(vec![("v".into(), Value::Long(1))]));
    assert!(matches!(
        decoder.decode(&unfit, None),
        Err(Error::Plan(PlanError::MissingField { .. }))
    ));

    let mut unknown = old.clone();
    unknown[2] ^= 0xff;
    assert!(matches!(
        decoder.decode(&unknown, None),
        Err(Error::Schema(SchemaError::UnknownFingerprint(_)))
    ));
    assert!(matches!(
        decoder.decode(&old[1..], None),
        Err(Error::Decode(DecodeError::WrongSingleObjectMarker { .. }))
    ));
}
