//! `kafka.start_at`: a time is a backfill that replays the records from that time on
//! (resolved through ListOffsets by timestamp), once per group; `earliest` applies only
//! where the group has no committed offset.

mod common;

use common::*;
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::{create_topic, produce_values};
use kinflux_testkit::unique;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_a_time_replays_only_the_records_from_then_on() {
    let Some((brokers, influx, topic, db)) = case("backfill", 1).await else {
        return;
    };
    let n = 1_000i64;
    // Record i has the Kafka timestamp base + i + 1 ms (see `produce`), and no time of
    // its own: the point takes the record's time.
    let base_ms = recent_ms();
    let values = (0..n)
        .map(|i| format!("replay v={i}i\n").into_bytes())
        .collect();
    produce_values(&brokers, &topic, 0, values, base_ms).await;

    // From the record with index 600 on (timestamp base + 601 ms).
    let from = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((base_ms + 601) as u64),
    );
    let toml = BridgeConfig::new(&brokers, &influx, &topic, &db)
        .kafka(&format!("start_at = \"{from}\""))
        .toml();
    let summary = run_until_caught_up(&toml).await;
    assert_eq!(summary.records_in, 400);
    assert_eq!(count(&influx, &db, "replay", "v"), 400);
    let first = query(&influx, &db, "SELECT first(v) FROM replay");
    assert_eq!(rows(&first)[0][1].as_i64(), Some(600));
    assert_eq!(
        rows(&first)[0][0].as_i64(),
        Some((base_ms + 601) * 1_000_000)
    );

    // Earliest from a fresh group replays everything.
    let toml = BridgeConfig::new(&brokers, &influx, &topic, &db)
        .group(&format!("{topic}_group2"))
        .kafka("start_at = \"earliest\"")
        .toml();
    assert_eq!(run_until_caught_up(&toml).await.records_in, n as u64);
    assert_eq!(
        count(&influx, &db, "replay", "v"),
        n as u64,
        "the replay wrote the same points again"
    );
}

/// `config_toml` with `start_at` set.
fn starting_at(brokers: &str, influx: &str, topic: &str, db: &str, start_at: &str) -> String {
    config_toml(brokers, influx, topic, db, "").replace(
        "commit_interval",
        &format!("start_at = \"{start_at}\"\ncommit_interval"),
    )
}

fn lines(from: i64, to: i64) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| format!("replay v={i}i {}\n", 1_600_000_000_000_000_000i64 + i).into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earliest_applies_only_where_the_group_has_no_committed_offset() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("earliest");
    let db = unique("earliest_db");
    create_topic(&brokers, &topic, 1).await;
    let base_ms = recent_ms();
    produce_values(&brokers, &topic, 0, lines(0, 100), base_ms).await;
    let toml = starting_at(&brokers, &influx, &topic, &db, "earliest");
    assert_eq!(run_until_caught_up(&toml).await.records_in, 100);

    // A restart goes on from the group's commit: only the new records.
    produce_values(&brokers, &topic, 0, lines(100, 150), base_ms + 1_000).await;
    assert_eq!(run_until_caught_up(&toml).await.records_in, 50);
    assert_eq!(count(&influx, &db, "replay", "v"), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_is_applied_once_per_group() {
    let Some((brokers, influx)) = servers() else {
        return;
    };
    let topic = unique("once");
    let db = unique("once_db");
    create_topic(&brokers, &topic, 1).await;
    let base_ms = recent_ms();
    produce_values(&brokers, &topic, 0, lines(0, 1_000), base_ms).await;
    // From the record with index 600 on (timestamp base + 601 ms).
    let from = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((base_ms + 601) as u64),
    );
    let toml = starting_at(&brokers, &influx, &topic, &db, &from.to_string());
    assert_eq!(run_until_caught_up(&toml).await.records_in, 400);

    // Restarted with the same setting, the group goes on from its commit: nothing again,
    // then only what came since.
    assert_eq!(run_until_caught_up(&toml).await.records_in, 0);
    produce_values(&brokers, &topic, 0, lines(1_000, 1_010), base_ms + 2_000).await;
    assert_eq!(run_until_caught_up(&toml).await.records_in, 10);

    // Another time is another backfill.
    let from = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis((base_ms + 901) as u64),
    );
    let toml = starting_at(&brokers, &influx, &topic, &db, &from.to_string());
    assert_eq!(run_until_caught_up(&toml).await.records_in, 110);
    assert_eq!(count(&influx, &db, "replay", "v"), 410);
}
