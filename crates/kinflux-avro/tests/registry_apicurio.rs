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
