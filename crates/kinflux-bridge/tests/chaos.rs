//! The chaos run (`KINFLUX_CHAOS=1`; skipped otherwise): three `kinflux` processes in one
//! group read a six-partition topic of a three-node Kafka cluster while it receives
//! 5,000,000 records (1% malformed) over at least 10 minutes, and every 20 to 60 s a
//! random fault strikes: SIGKILL a bridge (every other time the group's leader), kill and
//! restart a broker, stop InfluxDB for 20 s, SIGSTOP a bridge past its session timeout,
//! or make the dead-letter topic unwritable (its `min.insync.replicas` raised above its
//! replicas) for 20 s. At the end InfluxDB holds exactly the good records, every
//! malformed one is in the dead-letter topic, and an independent librdkafka reader
//! (`chaos_reader.py`), which sampled the group's committed offsets once a second during
//! the run, found no commit ahead of what InfluxDB or the dead-letter topic held.
//!
//! ```text
//! KINFLUX_CHAOS=1 cargo test -p kinflux-bridge --test chaos -- --nocapture
//! ```
//!
//! `KINFLUX_CHAOS_RECORDS` (5000000) and `KINFLUX_CHAOS_MINUTES` (10) change the size.
//! Needs influxd, the Kafka jars and Python's confluent-kafka.

mod rig;

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kinflux_testkit::bridge_config::BridgeConfig;
use kinflux_testkit::kafka::{self, create_topic_replicated};
use rig::*;
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};

const PARTITIONS: i32 = 6;
const BRIDGES: usize = 3;
/// Record `i` of a partition is malformed when `i % 100 == BAD_AT`: 1%.
const BAD_AT: usize = 37;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn is_bad(i: usize) -> bool {
    i % 100 == BAD_AT
}

fn value(partition: i32, i: usize) -> Vec<u8> {
    if is_bad(i) {
        format!("not line protocol: p={partition} i={i}").into_bytes()
    } else {
        line(partition, i)
    }
}

/// Produces `per_partition` records to each partition, spread evenly over `span`; a
/// failed produce (a broker down) is retried with a new client.
async fn produce(brokers: String, topic: String, per_partition: usize, span: Duration) {
    let rounds = (span.as_millis() / 500).max(1) as usize;
    let chunk = per_partition.div_ceil(rounds);
    let started = Instant::now();
    let mut client = kafka::client(&brokers).await;
    let mut from = 0;
    let mut round = 0u32;
    while from < per_partition {
        let to = (from + chunk).min(per_partition);
        for p in 0..PARTITIONS {
            let mut attempts = 0;
            loop {
                let records = (from..to)
                    .map(|i| {
                        kafka::keyed(format!("s{}", i % SENSORS), value(p, i), 1_700_000_000_000)
                    })
                    .collect();
                let sent = tokio::time::timeout(Duration::from_secs(15), async {
                    let pc = client
                        .partition_client(&topic, p, UnknownTopicHandling::Retry)
                        .await?;
                    pc.produce(records, Compression::NoCompression).await
                })
                .await;
                if let Ok(Ok(_)) = sent {
                    break;
                }
                attempts += 1;
                assert!(attempts < 120, "producing failed 120 times: {sent:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(Ok(c)) = tokio::time::timeout(
                    Duration::from_secs(5),
                    ClientBuilder::new(kafka::bootstrap(&brokers)).build(),
                )
                .await
                {
                    client = c;
                }
            }
        }
        from = to;
        round += 1;
        // Keep to the schedule (catch up after a stall, never run ahead of it).
        let due = started + Duration::from_millis(500) * round;
        tokio::time::sleep_until(due.into()).await;
    }
}

/// The faults the run draws from.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillBridge,
    KillBroker,
    StopInflux,
    FreezeBridge,
    DeadLetterUnwritable,
}

const FAULTS: [Fault; 5] = [
    Fault::KillBridge,
    Fault::KillBroker,
    Fault::StopInflux,
    Fault::FreezeBridge,
    Fault::DeadLetterUnwritable,
];

/// Which of the bridges leads the group (from their logs), if one clearly does.
fn leader(bridges: &[Bridge]) -> Option<usize> {
    let joins: Vec<Option<(i64, bool)>> = bridges.iter().map(Bridge::last_join).collect();
    let newest = joins.iter().flatten().map(|(g, _)| *g).max()?;
    joins
        .iter()
        .position(|j| matches!(j, Some((g, true)) if *g == newest))
}

fn sleep(d: Duration) {
    std::thread::sleep(d);
}

fn rand_secs(from: u64, to: u64) -> Duration {
    Duration::from_millis(rand::random_range(from * 1000..to * 1000))
}

/// Strikes `fault`, waits it out and repairs it: what happened, for the record.
fn strike(
    fault: Fault,
    bridges: &mut [Bridge],
    cluster: &mut KafkaCluster,
    influx: &mut Influxd,
    dlq: &str,
    kills: &mut usize,
) -> String {
    match fault {
        Fault::KillBridge => {
            let lead = leader(bridges);
            // Every other bridge kill takes the group's leader, so a run of ten faults
            // is all but sure to kill it once; the others pick any bridge.
            let i = match lead {
                Some(l) if *kills % 2 == 0 => l,
                _ => rand::random_range(0..bridges.len()),
            };
            *kills += 1;
            bridges[i].kill();
            let down = rand_secs(1, 6);
            sleep(down);
            bridges[i].resume();
            format!(
                "SIGKILL bridge {i}{} for {:.1} s",
                if lead == Some(i) {
                    " (the group leader)"
                } else {
                    ""
                },
                down.as_secs_f64()
            )
        }
        Fault::KillBroker => {
            let id = rand::random_range(1..=3);
            cluster.kill(id);
            let down = rand_secs(5, 16);
            sleep(down);
            cluster.resume(id);
            format!(
                "SIGKILL broker {id}, restarted after {:.1} s",
                down.as_secs_f64()
            )
        }
        Fault::StopInflux => {
            influx.kill();
            sleep(Duration::from_secs(20));
            influx.resume();
            "InfluxDB down for 20 s".to_owned()
        }
        Fault::FreezeBridge => {
            let i = rand::random_range(0..bridges.len());
            bridges[i].stop();
            let frozen = rand_secs(8, 16);
            sleep(frozen);
            bridges[i].cont();
            format!("SIGSTOP bridge {i} for {:.1} s", frozen.as_secs_f64())
        }
        Fault::DeadLetterUnwritable => {
            cluster.set_topic_config(dlq, "min.insync.replicas", "4");
            sleep(Duration::from_secs(20));
            cluster.set_topic_config(dlq, "min.insync.replicas", "2");
            "dead-letter topic min.insync.replicas 4 (of 3 replicas) for 20 s".to_owned()
        }
    }
}

/// The librdkafka reader, until [`finish_reader`].
fn start_reader(args: &[&str]) -> Child {
    Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/chaos_reader.py"
        ))
        .args(args)
        .spawn()
        .expect("start python3 chaos_reader.py")
}

fn finish_reader(mut reader: Child, out: &std::path::Path) -> serde_json::Value {
    send_signal(reader.id(), "TERM");
    let status = reader.wait().expect("wait for the reader");
    assert!(status.success(), "the reader failed: {status}");
    serde_json::from_str(&std::fs::read_to_string(out).expect("the reader's summary"))
        .expect("the reader's summary is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos() {
    if std::env::var("KINFLUX_CHAOS").as_deref() != Ok("1") {
        eprintln!("chaos: skipped (set KINFLUX_CHAOS=1 to run it)");
        return;
    }
    let records: usize = env_or("KINFLUX_CHAOS_RECORDS", 5_000_000);
    let minutes: u64 = env_or("KINFLUX_CHAOS_MINUTES", 10);
    let span = Duration::from_secs(minutes * 60);
    let per_partition = records / PARTITIONS as usize;
    let Some(mut influx) = Influxd::start("") else {
        return;
    };
    let Some(mut cluster) = KafkaCluster::start() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("chaos"), unique("chaos_db"));
    let (dlq, group) = (format!("{topic}_dlq"), format!("{topic}_group"));
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    create_topic_replicated(&cluster.brokers(), &dlq, 3, 3).await;
    let config = BridgeConfig::new(&cluster.brokers(), &influx.url(), &topic, &db)
        .dead_letter(&format!("topic = \"{dlq}\"\non_error = \"dead-letter\""))
        .toml();
    let producer = tokio::spawn(produce(
        cluster.brokers(),
        topic.clone(),
        per_partition,
        span,
    ));
    let mut bridges: Vec<Bridge> = (0..BRIDGES).map(|_| Bridge::start(&config)).collect();
    let summary_path = std::env::temp_dir().join(format!("{topic}_reader.json"));
    let parts = PARTITIONS.to_string();
    let reader = start_reader(&[
        &cluster.brokers(),
        &group,
        &topic,
        &parts,
        &dlq,
        &influx.url(),
        &db,
        summary_path.to_str().expect("a UTF-8 temp path"),
    ]);

    let mut struck = Vec::new();
    let mut kills = 0;
    while started.elapsed() < span {
        tokio::time::sleep(rand_secs(20, 61)).await;
        if started.elapsed() >= span {
            break;
        }
        let fault = FAULTS[rand::random_range(0..FAULTS.len())];
        let at = started.elapsed();
        let what = tokio::task::block_in_place(|| {
            strike(
                fault,
                &mut bridges,
                &mut cluster,
                &mut influx,
                &dlq,
                &mut kills,
            )
        });
        let line = format!(
            "{:6.1} s: {what}; {} points in InfluxDB",
            at.as_secs_f64(),
            count(&influx, &db)
        );
        eprintln!("chaos: {line}");
        struck.push(line);
        for (i, b) in bridges.iter_mut().enumerate() {
            if !b.is_running() {
                eprintln!("chaos: bridge {i} had exited; restarting it:\n{}", b.log());
                b.resume();
            }
        }
    }
    producer.await.expect("producer");
    let produced = started.elapsed();
    let good = (PARTITIONS as usize) * (0..per_partition).filter(|&i| !is_bad(i)).count();
    let bad_expected: BTreeSet<(i32, usize)> = (0..PARTITIONS)
        .flat_map(|p| {
            (0..per_partition)
                .filter(|&i| is_bad(i))
                .map(move |i| (p, i))
        })
        .collect();
    eprintln!(
        "chaos: {} records produced in {:.1} s ({good} good, {} malformed); {} faults",
        per_partition * PARTITIONS as usize,
        produced.as_secs_f64(),
        bad_expected.len(),
        struck.len()
    );

    // Every good record in InfluxDB, exactly.
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut next_report = Instant::now();
    loop {
        let n = count(&influx, &db);
        if n as usize == good {
            break;
        }
        assert!(
            (n as usize) < good,
            "more points than good records: {n} > {good}"
        );
        for b in &mut bridges {
            b.assert_running();
        }
        if Instant::now() >= next_report {
            eprintln!(
                "chaos: {:.1} s: {n} of {good} points",
                started.elapsed().as_secs_f64()
            );
            next_report += Duration::from_secs(30);
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {good} points after 30 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let drained = started.elapsed();
    {
        let refs: Vec<&Bridge> = bridges.iter().collect();
        assert_committed(&refs, PARTITIONS, Duration::from_secs(120)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&influx, &db) as usize, good);
    let series = query(&influx, &db, &format!("SHOW SERIES FROM \"{MEASUREMENT}\""));
    assert_eq!(rows(&series).len(), PARTITIONS as usize * SENSORS);
    for _ in 0..20 {
        let p = rand::random_range(0..PARTITIONS);
        let i = loop {
            let i = rand::random_range(0..per_partition);
            if !is_bad(i) {
                break i;
            }
        };
        let answer = query(
            &influx,
            &db,
            &format!(
                "SELECT v FROM \"{MEASUREMENT}\" WHERE time = {} AND \"partition\" = '{p}'",
                BASE_NS + (i as i64) * 1_000 + i64::from(p)
            ),
        );
        assert_eq!(rows(&answer).len(), 1, "point {p}/{i}: {answer}");
        assert_eq!(rows(&answer)[0][1].as_i64(), Some(i as i64));
    }

    // Every malformed record in the dead-letter topic.
    let mut dead = BTreeSet::new();
    let mut dead_records = 0usize;
    for p in 0..3 {
        for r in kafka::read_all(&cluster.brokers(), &dlq, p).await {
            dead_records += 1;
            let text =
                String::from_utf8_lossy(r.record.value.as_deref().unwrap_or_default()).into_owned();
            let (_, rest) = text
                .split_once("p=")
                .expect("a malformed record of the test");
            let (p, i) = rest.split_once(" i=").expect("p= and i=");
            dead.insert((p.parse().expect("p"), i.parse().expect("i")));
        }
    }
    let missing: Vec<_> = bad_expected.difference(&dead).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} malformed records not in the dead-letter topic, such as {missing:?}",
        bad_expected.difference(&dead).count()
    );
    assert_eq!(dead.len(), bad_expected.len(), "unexpected dead letters");

    let summary = finish_reader(reader, &summary_path);
    let metrics: Vec<String> = bridges
        .iter()
        .map(|b| {
            b.metrics().map_or_else(String::new, |m| {
                format!(
                    "in {} written {} dead {} retries {}",
                    m.sum("kinflux_records_in_total"),
                    m.sum("kinflux_points_written_total"),
                    m.sum("kinflux_dead_letters_total"),
                    m.sum("kinflux_write_retries_total")
                )
            })
        })
        .collect();
    eprintln!(
        "chaos: RESULT {} records ({good} good, {} malformed) over {:.1} s of production, \
         all written {:.1} s after the start; {} faults:\n  {}\n\
         dead-letter topic: {dead_records} records, {} distinct; InfluxDB: {good} points, \
         {} series\nreader: {summary}\nbridges since their last start: {metrics:?}",
        per_partition * PARTITIONS as usize,
        bad_expected.len(),
        produced.as_secs_f64(),
        drained.as_secs_f64(),
        struck.len(),
        struck.join("\n  "),
        dead.len(),
        PARTITIONS as usize * SENSORS,
    );
    assert_eq!(
        summary["violations"].as_array().map(Vec::len),
        Some(0),
        "the reader saw commits ahead of InfluxDB or the dead-letter topic: {summary}"
    );
    assert!(
        summary["good_checked"].as_u64().unwrap_or(0) > 0
            && summary["bad_checked"].as_u64().unwrap_or(0) > 0,
        "the reader checked too little: {summary}"
    );
}
