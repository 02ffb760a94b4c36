//! What the consumer's integration tests share beyond the test kit: numbered test
//! records, a consumer configuration with short timeouts, and receiving until a condition
//! holds.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use kinflux_kafka::{Consumer, ConsumerConfig, Message, PartitionKey, Record};
pub mod members;

use kinflux_testkit::kafka;

/// Produces `n` records `"{topic}-{partition}-{i}"` (key `k{i}`, header `h: v`, timestamp
/// `1_700_000_000_000 + i` ms) to a partition, for `i` from `from`. Returns the offsets.
pub async fn produce_range(
    brokers: &str,
    topic: &str,
    partition: i32,
    from: usize,
    n: usize,
) -> Vec<i64> {
    let records = (from..from + n)
        .map(|i| {
            let value = format!("{topic}-{partition}-{i}");
            let mut record = kafka::keyed(format!("k{i}"), value, 1_700_000_000_000 + i as i64);
            record.headers.insert("h".to_owned(), b"v".to_vec());
            record
        })
        .collect();
    kafka::produce(brokers, topic, partition, records).await
}

/// A consumer configuration for tests: earliest, short timeouts.
pub fn config(brokers: &str, group: &str, topics: &[&str]) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(kafka::bootstrap(brokers), group, topics.iter().copied());
    c.auto_offset_reset = kinflux_kafka::AutoOffsetReset::Earliest;
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(300);
    c.rebalance_timeout = Duration::from_secs(10);
    c.fetch_max_wait = Duration::from_millis(100);
    c
}

/// Receives until `pred` holds for the records seen so far, acknowledging revocations.
/// Panics after `timeout`.
pub async fn recv_until(
    consumer: &mut Consumer,
    timeout: Duration,
    mut pred: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + timeout;
    while !pred(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; got {} records", seen.len());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(Message::Records(rs))) => seen.extend(rs),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("recv failed: {e}"),
            Err(_) => panic!("timed out; got {} records", seen.len()),
        }
    }
    seen
}

/// Keeps receiving (and acknowledging revocations) until the assignment satisfies `pred`
/// and stays so for `settle`.
pub async fn wait_assignment(
    consumer: &mut Consumer,
    timeout: Duration,
    pred: impl Fn(&[PartitionKey]) -> bool,
) -> Vec<PartitionKey> {
    let deadline = Instant::now() + timeout;
    loop {
        let a = consumer.assignment();
        if pred(&a) {
            return a;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "assignment never matched; last {a:?}");
        let step = left.min(Duration::from_millis(200));
        if let Ok(Err(e)) = tokio::time::timeout(step, consumer.recv()).await {
            panic!("recv failed: {e}");
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kinflux_kafka=info,kinflux_backoff=warn".into()),
        )
        .with_test_writer()
        .try_init();
}
