//! The schema registry client against the test kit's registry
//! (`kinflux_testkit::http::Registry`), which serves Confluent's documented endpoints and
//! error bodies.

use std::time::{Duration, Instant};

use apache_avro::{Schema, to_avro_datum, types::Value};
use kinflux_avro::{
    ConfluentDecoder, Error, Mapping, MeasurementSource, RegistryAuth, RegistryClient,
    RegistryConfig, RegistryError, SchemaError, framing,
};
use kinflux_series::PointView;
use kinflux_testkit::http::Registry;

const GARDEN: &str = include_str!("../../../examples/schemas/garden.avsc");

fn client(url: &str) -> RegistryClient {
    let mut config = RegistryConfig::new(url);
    config.backoff = Duration::from_millis(5);
    RegistryClient::new(config).unwrap()
}

#[tokio::test]
async fn registered_schemas_are_found_by_id_and_by_subject() {
    let server = Registry::start().await;
    let registry = client(&server.url);
    let id = registry.register("garden-value", GARDEN).await.unwrap();
    assert_eq!(registry.register("garden-value", GARDEN).await.unwrap(), id);
    let latest = registry.latest("garden-value").await.unwrap();
    assert_eq!(
        (latest.id, latest.version, latest.subject.as_str()),
        (id, 1, "garden-value")
    );
    assert_eq!(
        latest.schema.name().unwrap().fullname(None),
        "garden.Reading"
    );

    // A fresh client fetches by id once, then serves it from its cache.
    let registry = client(&server.url);
    let before = server.state.lock().unwrap().requests;
    let schema = registry.schema_by_id(id).await.unwrap();
    let again = registry.schema_by_id(id).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&schema, &again));
    assert_eq!(server.state.lock().unwrap().requests, before + 1);
}

#[tokio::test]
async fn documented_errors_become_typed_errors() {
    let server = Registry::start().await;
    let registry = client(&server.url);
    assert!(matches!(
        registry.schema_by_id(99).await,
        Err(SchemaError::UnknownId(99))
    ));
    assert!(matches!(
        registry.latest("no-such-subject").await,
        Err(SchemaError::Registry(RegistryError::SubjectNotFound { .. }))
    ));
    assert!(matches!(
        registry.register("s", r#"{"type": "recordz"}"#).await,
        Err(RegistryError::InvalidSchema { .. })
    ));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let server = Registry::start().await;
    let registry = client(&server.url);
    let id = registry.register("s", GARDEN).await.unwrap();
    server.state.lock().unwrap().fail_next = 2;
    let fresh = client(&server.url);
    let before = server.state.lock().unwrap().requests;
    fresh.schema_by_id(id).await.unwrap();
    assert_eq!(server.state.lock().unwrap().requests, before + 3);

    server.state.lock().unwrap().fail_next = 10;
    let mut config = RegistryConfig::new(&server.url);
    config.retries = 1;
    config.backoff = Duration::from_millis(1);
    let impatient = RegistryClient::new(config).unwrap();
    assert!(matches!(
        impatient.schema_by_id(id).await,
        Err(SchemaError::Registry(RegistryError::Server {
            status: 500,
            error_code: 50001,
            ..
        }))
    ));
}

#[tokio::test]
async fn a_throttled_request_waits_as_long_as_retry_after_says() {
    let server = Registry::start().await;
    let id = client(&server.url).register("s", GARDEN).await.unwrap();
    server.state.lock().unwrap().throttle_next = 1;
    // The backoff alone would wait at most 5 ms; Retry-After asks for 1 s.
    let started = Instant::now();
    client(&server.url).schema_by_id(id).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Out of retries, the rate limit is the error.
    server.state.lock().unwrap().throttle_next = 5;
    let mut config = RegistryConfig::new(&server.url);
    config.retries = 0;
    assert!(matches!(
        RegistryClient::new(config).unwrap().schema_by_id(id).await,
        Err(SchemaError::Registry(RegistryError::RateLimited { .. }))
    ));
}

#[tokio::test]
async fn basic_and_bearer_credentials_are_sent() {
    let server = Registry::start().await;
    // "key:secret" in base64.
    server.state.lock().unwrap().required_auth = Some("Basic a2V5OnNlY3JldA==".into());
    assert!(matches!(
        client(&server.url).register("s", GARDEN).await,
        Err(RegistryError::Unauthorized { status: 401, .. })
    ));
    let mut config = RegistryConfig::new(&server.url);
    config.auth = Some(RegistryAuth::Basic {
        username: "key".into(),
        password: "secret".into(),
    });
    RegistryClient::new(config)
        .unwrap()
        .register("s", GARDEN)
        .await
        .unwrap();

    server.state.lock().unwrap().required_auth = Some("Bearer t0ken".into());
    let mut config = RegistryConfig::new(&server.url);
    config.auth = Some(RegistryAuth::Bearer("t0ken".into()));
    let registry = RegistryClient::new(config).unwrap();
    assert_eq!(registry.latest("s").await.unwrap().id, 1);
    assert!(!format!("{registry:?}").contains("t0ken"));
}

#[tokio::test]
async fn a_slow_registry_times_out() {
    let server = Registry::start().await;
    server.state.lock().unwrap().delay = Some(Duration::from_secs(5));
    let mut config = RegistryConfig::new(&server.url);
    config.timeout = Duration::from_millis(100);
    config.retries = 1;
    config.backoff = Duration::from_millis(1);
    let started = Instant::now();
    let result = RegistryClient::new(config).unwrap().schema_by_id(1).await;
    assert!(
        matches!(
            result,
            Err(SchemaError::Registry(RegistryError::Timeout(_)))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_closed_port_is_a_connection_error() {
    let url = format!("http://127.0.0.1:{}", kinflux_testkit::free_port());
    let mut config = RegistryConfig::new(url);
    config.retries = 0;
    let result = RegistryClient::new(config).unwrap().schema_by_id(1).await;
    assert!(
        matches!(
            result,
            Err(SchemaError::Registry(RegistryError::Connection(_)))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn confluent_records_decode_with_schemas_from_the_registry() {
    let server = Registry::start().await;
    let producer = client(&server.url);
    let id = producer.register("garden-value", GARDEN).await.unwrap();
    let schema = Schema::parse_str(GARDEN).unwrap();
    let body = to_avro_datum(
        &schema,
        Value::Record(vec![
            ("sensor_id".into(), Value::String("s-1".into())),
            ("zone".into(), Value::Enum(0, "NORTH".into())),
            ("plant".into(), Value::String("basil".into())),
            ("soil_moisture".into(), Value::Double(0.5)),
            ("temperature".into(), Value::Float(20.0)),
            ("light_lux".into(), Value::Long(300)),
            ("battery".into(), Value::Double(1.0)),
            ("ph".into(), Value::Union(0, Box::new(Value::Null))),
            ("note".into(), Value::Union(0, Box::new(Value::Null))),
            ("time".into(), Value::TimestampMillis(5)),
        ]),
    )
    .unwrap();
    let mut record = Vec::new();
    framing::write_confluent_header(id, &mut record);
    record.extend_from_slice(&body);

    let mut mapping = Mapping::new(MeasurementSource::Constant("garden".into()));
    mapping.tags = vec!["sensor_id".into(), "zone".into(), "plant".into()];
    mapping.timestamp = Some(kinflux_avro::TimestampSource {
        field: "time".into(),
        unit: None,
        format: None,
        timezone: None,
    });
    let decoder = ConfluentDecoder::new(client(&server.url), mapping);
    let point = decoder.decode_owned(&record, None).await.unwrap();
    assert_eq!(point.tags().len(), 3);
    assert_eq!(PointView::fields(&point).len(), 4);
    assert_eq!(
        point.timestamp(),
        Some(kinflux_series::Timestamp::from_nanos(5_000_000))
    );

    let mut unknown = record.clone();
    unknown[4] = 77;
    assert!(matches!(
        decoder.decode_owned(&unknown, None).await,
        Err(Error::Schema(SchemaError::UnknownId(77)))
    ));
}
