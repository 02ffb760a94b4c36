//! Consumer-group behaviour against a real broker (tansu) at `KINFLUX_KAFKA_BROKERS`.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::*;
use kinflux_kafka::{Consumer, TopicPartition};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_consumer_resumes_right_after_committed_offset() {
    let Some(brokers) = brokers() else { return };
    init_tracing();
    let topic = unique("resume");
    let group = unique("g-resume");
    create_topic(&brokers, &topic, 2).await;
    produce(&brokers, &topic, 0, 0, 10).await;
    produce(&brokers, &topic, 1, 0, 10).await;

    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 20).await;
    assert_eq!(seen.len(), 20, "nothing twice");
    for p in 0..2 {
        let offs: Vec<i64> = seen
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offs, (0..10).collect::<Vec<_>>(), "order kept in partition {p}");
    }
    let r = &seen[0];
    assert_eq!(r.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(r.headers, vec![("h".to_owned(), bytes::Bytes::from_static(b"v"))]);
    assert!(r.timestamp_ms >= 1_700_000_000_000);
    // Processed up to offset 5 in p0 and 3 in p1: commit the next offsets to read.
    c.commit([
        (TopicPartition::new(&topic, 0), 6),
        (TopicPartition::new(&topic, 1), 4),
    ])
    .await
    .unwrap();
    c.close().await.unwrap();

    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 10).await;
    let mut first: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &seen {
        first.entry(r.partition).or_default().push(r.offset);
    }
    assert_eq!(first[&0], (6..10).collect::<Vec<_>>());
    assert_eq!(first[&1], (4..10).collect::<Vec<_>>());
    let committed = c
        .committed(&[TopicPartition::new(&topic, 0), TopicPartition::new(&topic, 1)])
        .await
        .unwrap();
    assert_eq!(committed[&TopicPartition::new(&topic, 0)], Some(6));
    c.close().await.unwrap();
}
