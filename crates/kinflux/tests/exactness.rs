//! 200,000 line-protocol records over 4 partitions, through the real Kafka and InfluxDB:
//! InfluxDB ends up holding exactly the expected points. The exactness test runs on tansu
//! too when `KINFLUX_TANSU_BROKERS` is set (the opt-in compatibility leg).

mod common;

use common::*;
use kinflux_testkit::influx::{count, query, rows};
use kinflux_testkit::kafka::produce_values;

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 50_000;
const BASE_NS: i64 = 1_600_000_000_000_000_000;

fn line(partition: i32, i: usize) -> Vec<u8> {
    // One point per record; series spread over 40 sensors per partition; unique times.
    format!(
        "exact,partition={partition},sensor=s{} v={}i,x={}.5 {}\n",
        i % 40,
        i,
        i % 1000,
        BASE_NS + (i as i64) * 1_000 + partition as i64
    )
    .into_bytes()
}

/// Two tasks, the four partitions spread over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_exactly_once_in_influxdb() {
    if let Some(case) = case("exact", PARTITIONS).await {
        every_record_lands_exactly_once(case, 2).await;
    }
}

/// One task holding every partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_exactly_once_in_influxdb_with_one_task() {
    if let Some(case) = case("exact_one_task", PARTITIONS).await {
        every_record_lands_exactly_once(case, 1).await;
    }
}

/// The same on tansu, the compatibility leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_lands_exactly_once_in_influxdb_on_tansu() {
    if let Some(case) = tansu_case("exact_tansu", PARTITIONS).await {
        every_record_lands_exactly_once(case, 2).await;
    }
}

async fn every_record_lands_exactly_once(
    (brokers, influx, topic, db): (String, String, String, String),
    tasks: usize,
) {
    let producers = (0..PARTITIONS).map(|p| {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::spawn(async move {
            let values = (0..PER_PARTITION).map(|i| line(p, i)).collect();
            produce_values(&brokers, &topic, p, values, 1_700_000_000_000).await;
        })
    });
    for p in producers {
        p.await.expect("producer task");
    }

    let config = kinflux_testkit::bridge_config::BridgeConfig::new(&brokers, &influx, &topic, &db)
        .tasks(tasks)
        .toml();
    let summary = run_until_caught_up(&config).await;
    let total = (PARTITIONS as usize * PER_PARTITION) as u64;
    assert_eq!(summary.records_in, total);
    assert_eq!(summary.points_written, total);
    assert_eq!(summary.dead_lettered, 0);

    assert_eq!(count(&influx, &db, "exact", "v"), total);
    // No extra series: 4 partitions x 40 sensors.
    let series = query(&influx, &db, "SHOW SERIES FROM \"exact\"");
    assert_eq!(rows(&series).len(), 160);
    // A sample of values, exactly as produced.
    for (p, i) in [(0, 0usize), (1, 12_345), (2, 49_999), (3, 31_337)] {
        let t = BASE_NS + (i as i64) * 1_000 + p as i64;
        let answer = query(
            &influx,
            &db,
            &format!(
                "SELECT v, x, sensor FROM \"exact\" WHERE time = {t} AND \"partition\" = '{p}'"
            ),
        );
        let r = rows(&answer);
        assert_eq!(r.len(), 1, "point {p}/{i}: {answer}");
        assert_eq!(r[0][1].as_i64(), Some(i as i64));
        assert_eq!(r[0][2].as_f64(), Some((i % 1000) as f64 + 0.5));
        assert_eq!(r[0][3].as_str(), Some(format!("s{}", i % 40).as_str()));
    }
}

/// With tags to add, line protocol goes through points instead of being copied as it
/// came: every point gets the tags, lines with unsorted tags or no time land too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enriched_line_protocol_lands_with_its_tags() {
    let Some((brokers, influx, topic, db)) = case("enriched", 1).await else {
        return;
    };
    const N: usize = 1_500;
    let values = (0..N)
        .map(|i| {
            let s = i % 5;
            match i % 3 {
                0 => format!("enriched,a=1,sensor=s{s} v={i}i {}\n", BASE_NS + i as i64),
                1 => format!("enriched,sensor=s{s},a=1 v={i}i {}\n", BASE_NS + i as i64),
                // No time: the record's (base + its index, in ms) is used.
                _ => format!("enriched,a=1,sensor=s{s} v={i}i\n"),
            }
            .into_bytes()
        })
        .collect();
    produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;

    let extra = "[tags]\ntopic_tag = \"topic\"\nsite = \"north\"\n";
    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, extra)).await;
    assert_eq!(summary.points_written, N as u64);
    assert_eq!(summary.dead_lettered, 0);
    assert_eq!(count(&influx, &db, "enriched", "v"), N as u64);
    let series = query(&influx, &db, "SHOW SERIES FROM \"enriched\"");
    let keys: Vec<String> = rows(&series)
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..5)
        .map(|s| format!("enriched,a=1,sensor=s{s},site=north,topic={topic}"))
        .collect();
    assert_eq!(keys, expected);
    // A line without a time took its record's: record index i + 1 (from 1), in ms.
    let t_ms = 1_700_000_000_000i64 + 3;
    let answer = query(
        &influx,
        &db,
        &format!(
            "SELECT v FROM \"enriched\" WHERE time = {}",
            t_ms * 1_000_000
        ),
    );
    assert_eq!(rows(&answer).len(), 1, "{answer}");
    assert_eq!(rows(&answer)[0][1].as_i64(), Some(2));
}
