//! Consuming survives a broker restart. The test starts its own Apache Kafka (same ports,
//! same data across a SIGKILL and a restart), so it does not disturb other tests.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use kinflux_kafka::Consumer;
use kinflux_testkit::kafka::create_topic;
use kinflux_testkit::process::KafkaBroker;
use kinflux_testkit::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_resumes_after_broker_restart() {
    let Some(mut broker) = KafkaBroker::start() else {
        return;
    };
    init_tracing();
    let brokers = broker.brokers();
    let topic = unique("restart");
    let group = unique("g_restart");
    create_topic(&brokers, &topic, 2).await;
    for p in 0..2 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    // Not what this test is about: see `connect_waits_for_the_coordinator_of_a_fresh_cluster`.
    broker.wait_for_group_coordinator();
    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 10).await;
    assert_eq!(seen.len(), 10);
    c.commit_positions().await.unwrap();

    // Down for a while: fetches and heartbeats fail and back off meanwhile.
    broker.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.resume();
    for p in 0..2 {
        produce_range(&brokers, &topic, p, 5, 5).await;
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

/// A consumer started against a cluster that was just created must wait for the group
/// coordinator, which is COORDINATOR_NOT_AVAILABLE (a retriable error) until
/// `__consumer_offsets` exists, as the Java client does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_waits_for_the_coordinator_of_a_fresh_cluster() {
    let Some(broker) = KafkaBroker::start() else {
        return;
    };
    init_tracing();
    let brokers = broker.brokers();
    let topic = unique("fresh");
    create_topic(&brokers, &topic, 1).await;
    let connected = Consumer::connect(config(&brokers, &unique("g_fresh"), &[&topic])).await;
    let mut c = connected.expect("connect waits for the coordinator");
    produce_range(&brokers, &topic, 0, 0, 3).await;
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    c.close().await.unwrap();
}
