//! Fault tests of the whole bridge on a three-node Apache Kafka cluster (the test kit's
//! `KafkaCluster`: replication factor 3, `min.insync.replicas` 2), the `kinflux` binary a
//! separate process. Every test ends with InfluxDB holding exactly the produced points
//! and every partition committed to its end.
//!
//! - the broker leading most partitions is SIGKILLed mid-stream: the bridge follows the
//!   new leaders;
//! - the group coordinator's broker is SIGKILLed: the group finds the new coordinator;
//! - a rolling restart (controlled shutdown, start, wait for the replicas to catch up) of
//!   every broker;
//! - one of two bridges is SIGSTOPped past its session timeout, then SIGCONTed: its
//!   partitions moved meanwhile, and it neither writes nor commits for them.
//!
//! CI sizes take about a minute each; `KINFLUX_FAULTS_FULL=1` runs larger streams.
//! Needs influxd and the Kafka jars (`KINFLUX_KAFKA_HOME`), like `faults.rs`.

mod rig;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kinflux_testkit::kafka::create_topic_replicated;
use rig::tap::Tap;
use rig::*;

const PARTITIONS: i32 = 4;

/// A three-node cluster and an influxd, or `None` after the SKIPPED rule.
fn cluster_servers() -> Option<(KafkaCluster, Influxd)> {
    let influx = Influxd::start("")?;
    let cluster = KafkaCluster::start()?;
    Some((cluster, influx))
}

/// Records per partition of the stream: CI size, or full.
fn per_partition() -> usize {
    if full() { 50_000 } else { 8_000 }
}

/// The end of every test: the stream is done, InfluxDB holds exactly what was produced,
/// and every partition is committed to its end.
async fn finish(
    stream: tokio::task::JoinHandle<()>,
    influx: &Influxd,
    db: &str,
    bridges: &mut [&mut Bridge],
) {
    stream.await.expect("producer");
    settle(per_partition(), influx, db, bridges).await;
}

/// InfluxDB holds exactly the `per_partition` records produced to each partition, and
/// every partition is committed to its end.
async fn settle(per_partition: usize, influx: &Influxd, db: &str, bridges: &mut [&mut Bridge]) {
    assert_exact(
        influx,
        db,
        PARTITIONS,
        per_partition,
        Duration::from_secs(180),
        bridges,
    )
    .await;
    let refs: Vec<&Bridge> = bridges.iter().map(|b| &**b).collect();
    assert_committed(&refs, PARTITIONS, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_leading_the_partitions_is_killed_mid_stream() {
    let Some((mut cluster, influx)) = cluster_servers() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("leader"), unique("leader_db"));
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    let stream = Stream::new(&cluster.brokers(), &topic, PARTITIONS, per_partition()).spawn();
    let mut bridge = Bridge::start(&config(
        &cluster.brokers(),
        &influx,
        &topic,
        &db,
        "",
        "",
        "",
    ));
    wait_written(&mut bridge, &influx, &db).await;

    let before = cluster.partitions(&topic);
    let victim = cluster.busiest_leader(&topic);
    let led: Vec<i32> = before
        .iter()
        .filter(|(_, s)| s.leader == victim)
        .map(|(p, _)| *p)
        .collect();
    cluster.kill(victim);
    eprintln!(
        "leader: SIGKILL node {victim} (leader of {led:?}) at {:.1} s with {} points written",
        started.elapsed().as_secs_f64(),
        count(&influx, &db)
    );
    // The controller moves leadership to the in-sync followers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = cluster.partitions(&topic);
        if now.values().all(|s| s.leader >= 0 && s.leader != victim) {
            eprintln!(
                "leader: new leaders {:?} after {:.1} s",
                now.iter().map(|(p, s)| (*p, s.leader)).collect::<Vec<_>>(),
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(Instant::now() < deadline, "no new leaders: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finish(stream, &influx, &db, &mut [&mut bridge]).await;
    bridge.assert_running();
    eprintln!(
        "leader: done after {:.1} s, node {victim} still down",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinators_broker_is_killed_mid_stream() {
    let Some((mut cluster, influx)) = cluster_servers() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("coord"), unique("coord_db"));
    let group = format!("{topic}_group");
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    let stream = Stream::new(&cluster.brokers(), &topic, PARTITIONS, per_partition()).spawn();
    let mut bridge = Bridge::start(&config(
        &cluster.brokers(),
        &influx,
        &topic,
        &db,
        "",
        "",
        "",
    ));
    wait_written(&mut bridge, &influx, &db).await;
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    // Something committed through the first coordinator.
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        let c = cluster.committed(&group, &topic, &partitions);
        if let Some(c) = c.filter(|c| c.values().any(|&o| o > 0)) {
            break c;
        }
        assert!(Instant::now() < deadline, "no commit within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let victim = cluster.coordinator(&group);
    cluster.kill(victim);
    eprintln!(
        "coordinator: SIGKILL node {victim}, the coordinator of {group}, at {:.1} s; committed {before:?}",
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let moved_to = loop {
        let now = cluster.coordinator(&group);
        if now != victim {
            break now;
        }
        assert!(Instant::now() < deadline, "the coordinator did not move");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Commits go on through the new coordinator.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = cluster.committed(&group, &topic, &partitions);
        if now
            .as_ref()
            .is_some_and(|n| n.iter().any(|(p, o)| *o > before[p]))
        {
            eprintln!(
                "coordinator: node {moved_to} took over; commits go on {:.1} s in: {now:?}",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        bridge.assert_running();
        assert!(
            Instant::now() < deadline,
            "no commit through the new coordinator: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finish(stream, &influx, &db, &mut [&mut bridge]).await;
    bridge.assert_running();
    eprintln!(
        "coordinator: done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_broker_loses_nothing() {
    let Some((mut cluster, influx)) = cluster_servers() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("rolling"), unique("rolling_db"));
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    // Until the last restart is over, however long this machine takes: 250 records a
    // partition and second (1,250 at full size).
    let stream = Stream::new(&cluster.brokers(), &topic, PARTITIONS, 1_000_000)
        .chunk(if full() { 500 } else { 100 })
        .pause(Duration::from_millis(400))
        .spawn_until_stopped();
    let mut bridge = Bridge::start(&config(
        &cluster.brokers(),
        &influx,
        &topic,
        &db,
        "",
        "",
        "",
    ));
    wait_written(&mut bridge, &influx, &db).await;
    for id in cluster.ids() {
        let t = Instant::now();
        cluster.stop(id);
        let stopped = t.elapsed();
        cluster.resume(id);
        // The next node may go only once this one's replicas have caught up.
        cluster.wait_in_sync(&topic, Duration::from_secs(120));
        cluster.wait_in_sync("__consumer_offsets", Duration::from_secs(120));
        bridge.assert_running();
        eprintln!(
            "rolling: node {id} stopped in {:.1} s, back and in sync after {:.1} s ({:.1} s in, {} points written)",
            stopped.as_secs_f64(),
            t.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64(),
            count(&influx, &db)
        );
    }
    assert!(
        !stream.is_finished(),
        "the stream ended before the last restart; raise its cap"
    );
    let produced = stream.stop().await;
    eprintln!("rolling: {produced} records produced to each partition");
    settle(produced, &influx, &db, &mut [&mut bridge]).await;
    bridge.assert_running();
    eprintln!(
        "rolling: done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Two bridges share the partitions; `a` is frozen past its session timeout and `b`
/// takes everything. After SIGCONT, `a` must find out it lost its partitions before it
/// writes or commits anything of theirs: what it sends InfluxDB (through a tap) until it
/// has rejoined holds no point, and the group's committed offsets never go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_frozen_past_its_session_timeout_writes_and_commits_nothing_it_lost() {
    let Some((cluster, influx)) = cluster_servers() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("frozen"), unique("frozen_db"));
    let group = format!("{topic}_group");
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    let stream = Stream::new(&cluster.brokers(), &topic, PARTITIONS, per_partition())
        .chunk(100)
        .spawn();
    let tap = Tap::start(&format!("127.0.0.1:{}", influx.port())).await;
    // Small uncompressed batches: each write is one small request the tap can read.
    let influx_keys = "gzip = false";
    let batch = "[batch]\nmax_points = 200\nmax_age = \"100ms\"\n";
    let a_config = config_url(
        &cluster.brokers(),
        &tap.url(),
        &topic,
        &db,
        "",
        influx_keys,
        batch,
    );
    let b_config = config(
        &cluster.brokers(),
        &influx,
        &topic,
        &db,
        "",
        influx_keys,
        batch,
    );
    let mut a = Bridge::start(&a_config);
    let mut b = Bridge::start(&b_config);
    // Disjoint too: a bridge's partition gauges lag its assignment by up to a second, so
    // right after a rejoin both may still list the same partitions.
    let both = |pa: &[i32], pb: &[i32]| {
        !pa.is_empty()
            && !pb.is_empty()
            && pa.len() + pb.len() == PARTITIONS as usize
            && pa.iter().all(|p| !pb.contains(p))
    };
    let (pa, pb) = wait_partitions(&mut a, &mut b, "sharing", Duration::from_secs(60), both).await;
    eprintln!(
        "frozen: shared at {:.1} s: a {pa:?}, b {pb:?}",
        started.elapsed().as_secs_f64()
    );
    // The group's commits, sampled from here to the end: they must never go back.
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let sampler = {
        let brokers = cluster.brokers();
        let (group, topic) = (group.clone(), topic.clone());
        let partitions = partitions.clone();
        let done = StopOnDrop::default();
        let stop = std::sync::Arc::clone(&done.0);
        let handle = tokio::task::spawn_blocking(move || {
            let mut last: BTreeMap<i32, i64> = BTreeMap::new();
            let mut samples = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(now) = committed_of(&brokers, &group, &topic, &partitions) {
                    samples += 1;
                    for (p, o) in now {
                        let prev = last.insert(p, o).unwrap_or(-1);
                        assert!(
                            o >= prev,
                            "partition {p}: the committed offset went back from {prev} to {o}"
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        (done, handle)
    };

    a.stop();
    let frozen = Instant::now();
    // The session timeout is 6 s: b must get everything. (Only b is asked: a frozen
    // process accepts a connection and never answers.)
    let deadline = Instant::now() + Duration::from_secs(30);
    let pb = loop {
        let pb = b.metrics().map(|m| m.partitions()).unwrap_or_default();
        if pb.len() == PARTITIONS as usize {
            break pb;
        }
        b.assert_running();
        assert!(
            Instant::now() < deadline,
            "b never took every partition: {pb:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took_over = frozen.elapsed();
    // Let b write and commit past where a stopped, and anything a had in the kernel's
    // buffers reach the tap.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mark = tap.len();
    let joins_before = a.log().matches("joined group").count();
    a.cont();
    eprintln!(
        "frozen: b took {pb:?} {:.1} s after SIGSTOP; SIGCONT a after {:.1} s",
        took_over.as_secs_f64(),
        frozen.elapsed().as_secs_f64()
    );
    // Until a has joined again it owns nothing, and must write nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.log().matches("joined group").count() == joins_before {
        a.assert_running();
        assert!(Instant::now() < deadline, "a never rejoined:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = tap.partitions_since(mark);
    let rejoined = tap.len();
    eprintln!(
        "frozen: a rejoined; it sent {} bytes and points of {written:?} in between",
        rejoined - mark
    );
    assert!(
        written.is_empty(),
        "a wrote points of partitions it had lost before rejoining: {written:?}\n{}",
        a.log()
    );
    // Afterwards a writes only what it owns again.
    let (pa, pb) = wait_partitions(
        &mut a,
        &mut b,
        "sharing again",
        Duration::from_secs(60),
        both,
    )
    .await;
    finish(stream, &influx, &db, &mut [&mut a, &mut b]).await;
    let after: Vec<i32> = tap.partitions_since(rejoined).into_keys().collect();
    assert!(
        after.iter().all(|p| pa.contains(p)),
        "a wrote points of {after:?} after rejoining with {pa:?}"
    );
    drop(sampler.0);
    let samples = sampler.1.await.expect("the commit sampler");
    assert!(samples > 10, "only {samples} commit samples");
    eprintln!(
        "frozen: shared again (a {pa:?}, b {pb:?}); {samples} commit samples never went back; done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Sets its flag when dropped: a blocking sampler stops even when the test panics (the
/// runtime waits for blocking tasks when it shuts down).
#[derive(Default)]
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The group's committed offsets, from whichever node coordinates it now.
fn committed_of(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Option<BTreeMap<i32, i64>> {
    brokers.split(',').find_map(|b| {
        let (error, node) = kinflux_testkit::kafka_wire::coordinator(b, group).ok()?;
        if error != 0 {
            return None;
        }
        let (nodes, _) = kinflux_testkit::kafka_wire::metadata(b, topic).ok()?;
        kinflux_testkit::kafka_wire::committed(nodes.get(&node)?, group, topic, partitions).ok()
    })
}
