//! `kafka.start_at` as a time: a backfill replays the records from that time on, resolved
//! through ListOffsets by timestamp, and `--until-caught-up` ends it.

mod common;

use common::*;
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::produce_values;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_a_time_replays_only_the_records_from_then_on() {
    let Some((brokers, influx, topic, db)) = case("backfill", 1).await else {
        return;
    };
    let n = 1_000i64;
    // Record i has the Kafka timestamp base + i + 1 ms (see `produce`), and no time of
    // its own: the point takes the record's time.
    let base_ms = 1_700_000_000_000i64;
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
