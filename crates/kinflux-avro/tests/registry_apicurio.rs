//! The registry client against the real Apicurio Registry 3.0.9 through its
//! Confluent-compatible API (`KINFLUX_REGISTRY_URL`, `.../apis/ccompat/v7`); what it answers
//! is recorded in docs/registry-answers.md.

use kinflux_avro::{RegistryClient, RegistryConfig, RegistryError};
use kinflux_testkit::{require_or_skip, unique};

const V1: &str = r#"{"type":"record","name":"m","namespace":"kinflux.test","fields":[{"name":"a","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"m","namespace":"kinflux.test","fields":[{"name":"a","type":"long"},{"name":"b","type":["null","string"],"default":null}]}"#;

fn field_names(schema: &apache_avro::Schema) -> Vec<String> {
    match schema {
        apache_avro::Schema::Record(record) => {
            record.fields.iter().map(|f| f.name.clone()).collect()
        }
        other => panic!("not a record: {other:?}"),
    }
}

#[tokio::test]
async fn register_fetch_by_id_and_latest_by_subject() {
    let url = require_or_skip!("KINFLUX_REGISTRY_URL");
    let registry = RegistryClient::new(RegistryConfig::new(&url)).unwrap();
    let subject = format!("{}-value", unique("kinflux_apicurio"));

    let id1 = registry.register(&subject, V1).await.unwrap();
    assert_eq!(
        registry.register(&subject, V1).await.unwrap(),
        id1,
        "the same schema keeps its id"
    );
    let latest = registry.latest(&subject).await.unwrap();
    assert_eq!(
        (latest.id, latest.version, latest.subject.as_str()),
        (id1, 1, subject.as_str())
    );

    let id2 = registry.register(&subject, V2).await.unwrap();
    assert_ne!(id2, id1);
    let latest = registry.latest(&subject).await.unwrap();
    assert_eq!((latest.id, latest.version), (id2, 2));
    assert_eq!(field_names(&latest.schema), ["a", "b"]);

    // A fresh client (no cache) reads both versions back by id.
    let fresh = RegistryClient::new(RegistryConfig::new(&url)).unwrap();
    assert_eq!(field_names(&fresh.schema_by_id(id1).await.unwrap()), ["a"]);
    assert_eq!(
        field_names(&fresh.schema_by_id(id2).await.unwrap()),
        ["a", "b"]
    );
}

#[tokio::test]
async fn unknown_ids_and_subjects_and_bad_schemas_are_refused_as_confluent_says() {
    let url = require_or_skip!("KINFLUX_REGISTRY_URL");
    let registry = RegistryClient::new(RegistryConfig::new(&url)).unwrap();
    let err = registry.schema_by_id(999_999).await.unwrap_err();
    assert!(err.to_string().contains("999999"), "{err}");
    let err = registry.latest(&unique("kinflux_nope")).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("not found") || err.to_string().contains("40401"),
        "{err}"
    );
    let err = registry
        .register(&unique("kinflux_bad"), "not json")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidSchema { .. }),
        "{err:?}"
    );
}

/// A schema that uses a type registered under another subject: the client fetches the
/// referenced subject version and resolves the name, and a record decodes through it.
#[tokio::test]
async fn schema_references_resolve_through_the_referenced_subject() {
    let url = require_or_skip!("KINFLUX_REGISTRY_URL");
    let registry = RegistryClient::new(RegistryConfig::new(&url)).unwrap();
    let pos_subject = unique("kinflux_pos");
    let pos = r#"{"type":"record","name":"Pos","namespace":"kinflux.ref","fields":[{"name":"lat","type":"double"},{"name":"lon","type":"double"}]}"#;
    registry.register(&pos_subject, pos).await.unwrap();
    let reading = r#"{"type":"record","name":"Reading","namespace":"kinflux.ref","fields":[{"name":"host","type":"string"},{"name":"pos","type":"kinflux.ref.Pos"}]}"#;
    let references = [kinflux_avro::Reference {
        name: "kinflux.ref.Pos".into(),
        subject: pos_subject.clone(),
        version: 1,
    }];
    let subject = format!("{}-value", unique("kinflux_reading"));
    let id = registry
        .register_with_references(&subject, reading, &references)
        .await
        .unwrap();

    let fresh = RegistryClient::new(RegistryConfig::new(&url)).unwrap();
    let schema = fresh.schema_by_id(id).await.unwrap();
    assert_eq!(field_names(&schema), ["host", "pos"]);
    let latest = fresh.latest(&subject).await.unwrap();
    assert_eq!(latest.id, id);

    // A record written with the resolved schema decodes with the Telegraf preset.
    let mut record = apache_avro::types::Record::new(&schema).unwrap();
    record.put("host", "h1");
    record.put(
        "pos",
        apache_avro::types::Value::Record(vec![
            ("lat".into(), apache_avro::types::Value::Double(1.5)),
            ("lon".into(), apache_avro::types::Value::Double(2.5)),
        ]),
    );
    let body = apache_avro::to_avro_datum(&schema, record).unwrap();
    let options: kinflux_avro::TelegrafOptions =
        toml::from_str("tags = [\"host\"]\nfield_separator = \".\"").unwrap();
    let points = kinflux_avro::decode_telegraf(&schema, &body, &options, None).unwrap();
    let fields: Vec<_> = points[0]
        .fields()
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    assert_eq!(fields, ["pos.lat", "pos.lon"]);
    assert_eq!(points[0].measurement().as_str(), "kinflux.ref.Reading");
}
