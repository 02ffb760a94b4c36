//! A topic written by transactional producers, committed and aborted transactions
//! interleaved, its log ending in a commit marker: under the default read_committed the
//! bridge writes exactly the committed points, and `--until-caught-up` ends.

mod common;

use std::process::Command;

use common::*;
use kinflux_testkit::influx::{count, query, rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_committed_transactions_reach_influxdb_and_the_run_ends() {
    let found = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    if !kinflux_testkit::env::available(found, "no python3 with confluent-kafka") {
        return;
    }
    let Some((brokers, influx, topic, db)) = case("txn", 1).await else {
        return;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kinflux-kafka/tests/python/rdkafka_produce.py"
    );
    let out = Command::new("python3")
        .args([
            script,
            "transactions",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
        ])
        .args(["--codec", "lz4", "--count", "5", "--line-protocol"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').next().unwrap_or_default())
            .expect("producer report");
    let committed = report["committed"].as_array().expect("committed").len() as u64;
    assert!(committed > 0 && !report["aborted"].as_array().expect("aborted").is_empty());

    let toml = BridgeConfig::new(&brokers, &influx, &topic, &db).toml();
    let summary = run_until_caught_up(&toml).await;
    assert_eq!(summary.records_in, committed);
    assert_eq!(count(&influx, &db, "txn", "v"), committed);
    let aborted = rows(&query(
        &influx,
        &db,
        "SELECT count(v) FROM txn WHERE producer = 'b'",
    ));
    assert!(
        aborted.is_empty(),
        "aborted points were written: {aborted:?}"
    );
}
