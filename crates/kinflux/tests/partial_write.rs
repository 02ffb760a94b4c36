//! Records whose field types conflict with what InfluxDB already stores: InfluxDB refuses
//! those lines in a partial write, and only their records go to the dead-letter topic.

mod common;

use common::*;
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::{create_topic, produce_values, read_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_conflicting_records_are_dead_lettered() {
    let Some((brokers, influx, topic, db)) = case("partial", 1).await else {
        return;
    };
    // First write fixes `v` as an integer field in the shard the test writes to.
    let seed = config_toml(&brokers, &influx, &format!("{topic}_seed"), &db, "");
    create_topic(&brokers, &format!("{topic}_seed"), 1).await;
    produce_values(
        &brokers,
        &format!("{topic}_seed"),
        0,
        vec![b"conflict,s=seed v=1i 1600000000000000000\n".to_vec()],
        1_700_000_000_000,
    )
    .await;
    run_until_caught_up(&seed).await;

    let n = 1_000;
    let mut conflicting = Vec::new();
    let values = (0..n)
        .map(|i| {
            let ts = 1_600_000_000_000_000_000i64 + 1 + i as i64;
            if i % 50 == 3 {
                conflicting.push(i as i64);
                format!("conflict,s=x v=\"text {i}\" {ts}\n").into_bytes()
            } else {
                format!("conflict,s=s{} v={i}i {ts}\n", i % 7).into_bytes()
            }
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, "")).await;

    let good = (n - conflicting.len()) as u64;
    assert_eq!(summary.dead_lettered, conflicting.len() as u64);
    assert_eq!(summary.points_written, good);
    assert_eq!(count(&influx, &db, "conflict", "v"), good + 1);

    let dead = read_all(&brokers, &format!("{topic}_dlq"), 0).await;
    let mut offsets: Vec<i64> = dead
        .iter()
        .map(|r| {
            let h: std::collections::HashMap<_, _> = r
                .record
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            assert_eq!(h["kinflux.error.class"], "rejected");
            assert!(h["kinflux.error.message"].contains("conflict"), "{h:?}");
            h["kinflux.source.offset"].parse().unwrap()
        })
        .collect();
    offsets.sort();
    assert_eq!(offsets, conflicting);
}
