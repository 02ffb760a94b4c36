//! Points InfluxDB drops without naming their lines (beyond the retention policy) are
//! not counted as written.

mod common;

use common::*;
use kinflux::{CancellationToken, Config, PipelineBuilder};
use kinflux_testkit::influx::{count, query};
use kinflux_testkit::kafka::{create_topic, produce_values};
use kinflux_testkit::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_beyond_the_retention_policy_are_not_counted_as_written() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("drops");
    let db = unique("drops_db");
    create_topic(&brokers, &topic, 1).await;
    // The database keeps one hour: points from 2001 are beyond its retention policy.
    query(
        &influx,
        "",
        &format!("CREATE DATABASE {db} WITH DURATION 1h"),
    );
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let old_ns = 1_000_000_000_000_000_000i64;
    let values = (0..15i64)
        .map(|i| {
            let t = if i % 3 == 0 { old_ns + i } else { now_ns - i };
            format!("drops,i={i} v={i}i {t}\n").into_bytes()
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, recent_ms()).await;

    let toml = config_toml(&brokers, &influx, &topic, &db, "")
        .replace("create_database = true", "create_database = false");
    let pipeline = PipelineBuilder::from_config(&Config::from_toml(&toml).unwrap())
        .unwrap()
        .until_caught_up(true)
        .build()
        .unwrap();
    let metrics = pipeline.metrics();
    let summary = pipeline.run(CancellationToken::new()).await.unwrap();

    assert_eq!(count(&influx, &db, "drops", "v"), 10);
    assert_eq!(summary.points_written, 10, "only the stored points count");
    let m = metrics.snapshot();
    assert_eq!(m.points_written, 10);
    assert_eq!(m.points_dropped_by_influxdb, 5);
    assert_eq!(summary.dead_lettered, 0, "dropped points name no record");
}
