//! Helpers shared by the examples' integration tests: where the real servers are.

/// The Kafka bootstrap brokers from `KINFLUX_KAFKA_BROKERS`. Without it the test is
/// skipped loudly, except under `CI=true`, where a missing broker is a failure.
pub(crate) fn kafka_brokers() -> Option<String> {
    match std::env::var("KINFLUX_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("KINFLUX_KAFKA_BROKERS is not set; CI must start Kafka (scripts/services start)")
        }
        _ => {
            eprintln!("SKIPPED (no KINFLUX_KAFKA_BROKERS)");
            None
        }
    }
}

/// A name no other test run uses.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}
