//! The dead-letter producer against a real broker at `KINFLUX_KAFKA_BROKERS`.

mod common;

use std::collections::BTreeMap;

use common::*;
use kinflux_kafka::{
    DeadLetterConfig, DeadLetterProducer, DeadLetterReason, Record, dead_letter, murmur2,
};
use kinflux_testkit::{kafka, require_or_skip, unique};

#[tokio::test]
async fn dead_letter_keeps_the_record_and_adds_error_headers() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("dlq");
    let mut cfg = DeadLetterConfig::new(kafka::bootstrap(&brokers), &topic);
    assert!(
        DeadLetterProducer::connect(cfg.clone()).await.is_err(),
        "missing topic without create_topic"
    );
    cfg.create_topic = true;
    cfg.partitions = 3;
    let dlq = DeadLetterProducer::connect(cfg).await.unwrap();

    let record = Record {
        topic: "source".into(),
        partition: 2,
        offset: 41,
        key: Some(bytes::Bytes::from_static(b"sensor-7")),
        value: Some(bytes::Bytes::from_static(b"not line protocol")),
        headers: vec![("trace".into(), bytes::Bytes::from_static(b"abc"))],
        timestamp_ms: 1_700_000_000_123,
    };
    let (partition, offset) = dlq
        .send(
            &record,
            &DeadLetterReason::new("decode", "bad field at 1:5"),
        )
        .await
        .unwrap();
    let expected = (murmur2(b"sensor-7") & 0x7fff_ffff) % 3;
    assert_eq!(partition, expected, "Java default partitioner");

    let records = kafka::read_all(&brokers, &topic, partition).await;
    let got = &records
        .iter()
        .find(|r| r.offset == offset)
        .expect("the dead letter at the offset send returned")
        .record;
    assert_eq!(got.key.as_deref(), Some(&b"sensor-7"[..]));
    assert_eq!(got.value.as_deref(), Some(&b"not line protocol"[..]));
    assert_eq!(got.timestamp.timestamp_millis(), 1_700_000_000_123);
    let h: BTreeMap<&str, &[u8]> = got
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    assert_eq!(h["trace"], b"abc");
    assert_eq!(h[dead_letter::HEADER_ERROR_CLASS], b"decode");
    assert_eq!(h[dead_letter::HEADER_ERROR_MESSAGE], b"bad field at 1:5");
    assert_eq!(h[dead_letter::HEADER_SOURCE_TOPIC], b"source");
    assert_eq!(h[dead_letter::HEADER_SOURCE_PARTITION], b"2");
    assert_eq!(h[dead_letter::HEADER_SOURCE_OFFSET], b"41");

    // Null keys go round-robin over the partitions.
    let spread: std::collections::BTreeSet<i32> = (0..3).map(|_| dlq.partition_for(None)).collect();
    assert_eq!(spread.len(), 3);
}
