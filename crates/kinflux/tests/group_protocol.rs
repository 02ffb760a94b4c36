//! The pipeline on KIP-848's `consumer` group protocol: `kafka.group_protocol = "consumer"`
//! reads every record into InfluxDB exactly once and commits where it stopped.

mod common;

use common::*;
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::produce_values;

const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_on_the_consumer_group_protocol_lands_every_record_once() {
    let Some((brokers, influx, topic, db)) = case("kip848", PARTITIONS).await else {
        return;
    };
    for p in 0..PARTITIONS {
        let values = (0..PER_PARTITION)
            .map(|i| {
                format!(
                    "kip848,partition={p} v={i}i {}\n",
                    1_600_000_000_000_000_000i64 + i as i64 * 1_000 + i64::from(p)
                )
                .into_bytes()
            })
            .collect();
        produce_values(&brokers, &topic, p, values, 1_700_000_000_000).await;
    }
    let config = BridgeConfig::new(&brokers, &influx, &topic, &db)
        .kafka("group_protocol = \"consumer\"\ngroup_remote_assignor = \"range\"")
        .toml();
    let summary = run_until_caught_up(&config).await;
    let total = (PARTITIONS as usize * PER_PARTITION) as u64;
    assert_eq!(summary.records_in, total);
    assert_eq!(summary.points_written, total);
    assert_eq!(count(&influx, &db, "kip848", "v"), total);

    // A second run of the same group finds everything committed: nothing is read again.
    let again = run_until_caught_up(&config).await;
    assert_eq!(again.records_in, 0);
    assert_eq!(count(&influx, &db, "kip848", "v"), total);
}
