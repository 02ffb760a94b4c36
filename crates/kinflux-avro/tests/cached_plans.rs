//! `ConfluentDecoder::with_cached_plan`, the pipeline's way to decode a record at once:
//! nothing before a schema is looked up, then the same point as `decode_owned`, and the
//! same errors (framing, a cached plan error) as the waiting path.

use apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux_avro::{
    ConfluentDecoder, DecodeError, Error, Mapping, MeasurementSource, SchemaDir, framing,
};

/// A reading, and a schema without the mapping's tag: its plan fails.
const READING: &str = r#"{"type":"record","name":"reading","fields":[
    {"name":"sensor","type":"string"},{"name":"value","type":"double"}]}"#;
const NO_SENSOR: &str = r#"{"type":"record","name":"other","fields":[
    {"name":"value","type":"double"}]}"#;

fn framed(id: u32, schema: &str, fields: Vec<(String, Value)>) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let mut record = Vec::new();
    framing::write_confluent_header(id, &mut record);
    record.extend_from_slice(&to_avro_datum(&schema, Value::Record(fields)).unwrap());
    record
}

#[tokio::test]
async fn a_cached_plan_decodes_at_once_with_the_same_points_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let schemas = SchemaDir::new(dir.path());
    schemas.store(1, READING).unwrap();
    schemas.store(2, NO_SENSOR).unwrap();
    let mut mapping = Mapping::new(MeasurementSource::Constant("m".into()));
    mapping.tags = vec!["sensor".into()];
    let decoder = ConfluentDecoder::new(schemas, mapping);

    let reading = framed(
        1,
        READING,
        vec![
            ("sensor".into(), Value::String("s-1".into())),
            ("value".into(), Value::Double(0.5)),
        ],
    );
    let owned = |plan: &kinflux_avro::DecodePlan, body: &[u8]| plan.decode_owned(body, None);
    // Not looked up yet: the caller must wait for the source.
    assert!(decoder.with_cached_plan(&reading, owned).is_none());
    let waited = decoder.decode_owned(&reading, None).await.unwrap();
    let at_once = decoder
        .with_cached_plan(&reading, owned)
        .expect("cached after the first lookup")
        .expect("the schema fits")
        .expect("the record decodes");
    assert_eq!(at_once, waited);

    // Bad framing is an error without any lookup.
    assert!(matches!(
        decoder.with_cached_plan(b"\x01abc", owned),
        Some(Err(Error::Decode(DecodeError::WrongMagicByte {
            found: 0x01
        })))
    ));

    // A schema that does not fit: not cached at first, then its plan error every time.
    let other = framed(2, NO_SENSOR, vec![("value".into(), Value::Double(1.0))]);
    assert!(decoder.with_cached_plan(&other, owned).is_none());
    let waited = decoder.decode_owned(&other, None).await.unwrap_err();
    assert!(matches!(waited, Error::Plan(_)), "{waited}");
    let at_once = decoder.with_cached_plan(&other, owned);
    assert!(
        matches!(&at_once, Some(Err(Error::Plan(e))) if e.to_string() == waited.to_string()),
        "{at_once:?}"
    );
}
