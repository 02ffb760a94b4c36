//! A stop in the middle of the stream drains (flush, write, commit, leave), and a restart
//! goes on from the committed offsets: nothing lost, nothing duplicated.

mod common;

use std::time::Duration;

use common::*;
use kinflux::{CancellationToken, Config, Pipeline};
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::produce_values;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_mid_stream_then_restart_loses_and_duplicates_nothing() {
    let Some((brokers, influx, topic, db)) = case("drain", 2).await else {
        return;
    };
    let per_partition = 30_000usize;
    for p in 0..2 {
        let values = (0..per_partition)
            .map(|i| {
                format!(
                    "drain,p={p} v={i}i {}\n",
                    1_600_000_000_000_000_000i64 + i as i64
                )
                .into_bytes()
            })
            .collect();
        produce_values(&brokers, &topic, p, values, 1_700_000_000_000).await;
    }
    // Small batches and one write at a time, so the stop lands mid-stream.
    let toml = BridgeConfig::new(&brokers, &influx, &topic, &db)
        .influx("concurrency = 1")
        .section("[batch]\nmax_points = 500")
        .toml();

    let stop = CancellationToken::new();
    let first = Pipeline::from_config(&Config::from_toml(&toml).unwrap()).unwrap();
    let metrics = first.metrics();
    let run = tokio::spawn(first.run(stop.clone()));
    // Stop once some, but not all, points are written.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while metrics.snapshot().points_written < 5_000 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let first = run.await.unwrap().expect("first run drains without error");
    assert!(
        first.points_written < (2 * per_partition) as u64,
        "the stop came too late to test anything"
    );
    assert_eq!(first.points_written, count(&influx, &db, "drain", "v"));

    // The restart reads only what the first run did not commit.
    let second = run_until_caught_up(&toml).await;
    assert_eq!(
        first.records_in + second.records_in,
        (2 * per_partition) as u64,
        "the drain committed exactly what it wrote"
    );
    assert_eq!(
        count(&influx, &db, "drain", "v"),
        (2 * per_partition) as u64
    );
}
