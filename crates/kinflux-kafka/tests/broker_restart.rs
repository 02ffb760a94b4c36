//! Consuming survives a broker restart. The test starts its own tansu (same port, same
//! SQLite file across the restart), so it does not disturb other tests.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::*;
use kinflux_kafka::Consumer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_resumes_after_broker_restart() {
    if !own_broker_allowed() {
        return;
    }
    init_tracing();
    let mut tansu = Tansu::start(&[]);
    let brokers = tansu.brokers();
    let topic = unique("restart");
    let group = unique("g-restart");
    create_topic(&brokers, &topic, 2).await;
    for p in 0..2 {
        produce(&brokers, &topic, p, 0, 5).await;
    }
    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 10).await;
    assert_eq!(seen.len(), 10);
    c.commit_positions().await.unwrap();

    // Down for a while: fetches and heartbeats fail and back off meanwhile.
    tansu.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tansu.restart();
    for p in 0..2 {
        produce(&brokers, &topic, p, 5, 5).await;
    }
    let seen = recv_until(&mut c, Duration::from_secs(60), |rs| rs.len() >= 10).await;
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &seen {
        by_partition.entry(r.partition).or_default().push(r.offset);
    }
    for p in 0..2 {
        assert_eq!(
            by_partition[&p],
            (5..10).collect::<Vec<_>>(),
            "partition {p} resumes after the committed offset, no gap, nothing twice"
        );
    }
    c.commit_positions().await.unwrap();
    c.close().await.unwrap();
}
