//! Network faults: the `kinflux` binary runs in a network namespace of the test's own (a
//! separate host, linked to this machine by a veth pair), a three-node Kafka cluster and
//! influxd listen on this machine's end of the link. nftables inside the namespace cuts
//! the bridge off from one broker, then from InfluxDB, for 30 s each; a delaying, lossy
//! TCP proxy (the test kit's `FaultyLink`: this kernel has no netem) sits on the InfluxDB
//! link in the other test. Nothing is lost or written twice (InfluxDB ends with exactly
//! the produced points), every partition is committed to its end, and the lag that
//! built up during a fault is worked off once it is gone.
//!
//! Needs root, `ip` and `nft` (Debian's nftables), influxd and the Kafka jars; without
//! them the tests say SKIPPED (and fail under `CI=true`). `KINFLUX_FAULTS_FULL=1` runs
//! longer streams.

mod rig;

use std::time::{Duration, Instant};

use kinflux_testkit::faulty_link::{Faults, FaultyLink};
use kinflux_testkit::kafka::create_topic_replicated;
use rig::*;

const PARTITIONS: i32 = 4;
/// How long each cut lasts (the 30 s).
const CUT: Duration = Duration::from_secs(30);

fn per_partition() -> usize {
    if full() { 40_000 } else { 10_000 }
}

/// A namespace, and a three-node cluster and an influxd on this machine's end of its
/// link; `None` after the SKIPPED rule.
fn servers_across() -> Option<(Netns, KafkaCluster, Influxd)> {
    let ns = Netns::create()?;
    let influx = Influxd::start_on(&ns.host_ip(), "")?;
    let cluster = KafkaCluster::start_on(&ns.host_ip())?;
    Some((ns, cluster, influx))
}

/// Committed lag now (0 while the bridge has no gauge yet, or does not answer).
fn lag(bridge: &Bridge) -> f64 {
    committed_lag(&[bridge], PARTITIONS).unwrap_or(0.0)
}

/// The group's committed lag as the cluster sees it (end offsets minus the group's
/// commits), read from this side of the link: while a leader is cut off, the bridge's own
/// lag gauge keeps the watermarks of its last fetch from that leader and cannot rise.
async fn cluster_lag(cluster: &KafkaCluster, topic: &str) -> Option<f64> {
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let committed = cluster.committed(&format!("{topic}_group"), topic, &partitions)?;
    let mut lag = 0i64;
    for p in partitions {
        let (_, end) = kinflux_testkit::kafka::watermarks(&cluster.brokers(), topic, p).await;
        lag += end - committed.get(&p).copied().unwrap_or(-1).max(0);
    }
    Some(lag as f64)
}

/// Waits `fault` long, sampling the cluster's view of the committed lag: its peak.
async fn hold_cluster(
    bridge: &mut Bridge,
    cluster: &KafkaCluster,
    topic: &str,
    fault: Duration,
) -> f64 {
    let start = Instant::now();
    let mut peak = 0.0f64;
    while start.elapsed() < fault {
        bridge.assert_running();
        if let Some(lag) = cluster_lag(cluster, topic).await {
            peak = peak.max(lag);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    peak
}

/// Waits `fault` long, sampling the committed lag: its peak.
async fn hold(bridge: &mut Bridge, fault: Duration) -> f64 {
    let start = Instant::now();
    let mut peak = 0.0f64;
    while start.elapsed() < fault {
        bridge.assert_running();
        peak = peak.max(lag(bridge));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    peak
}

/// Waits until the committed lag is back under `bound` (the stream goes on meanwhile):
/// how long that took.
async fn recovers(bridge: &mut Bridge, bound: f64, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let now = lag(bridge);
        if now <= bound {
            return start.elapsed();
        }
        bridge.assert_running();
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: committed lag still {now} (bound {bound}) 120 s after the fault ended"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_from_a_broker_then_from_influxdb_for_30_s_each() {
    let Some((ns, cluster, influx)) = servers_across() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("cut"), unique("cut_db"));
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    // Produced here, over the link's far end, for the whole of both cuts and their
    // recoveries, however long they take: a chunk a partition every 0.9 s, a hundredth of
    // the test's size.
    let stream = Stream::new(
        &cluster.brokers(),
        &topic,
        PARTITIONS,
        100 * per_partition(),
    )
    .chunk(per_partition() / 100)
    .pause(Duration::from_millis(900))
    .spawn_until_stopped();
    let mut bridge = Bridge::start_in(
        &config(&cluster.brokers(), &influx, &topic, &db, "", "", ""),
        Some(&ns),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&influx, &db) == 0 {
        bridge.assert_running();
        assert!(Instant::now() < deadline, "nothing written within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = cluster_lag(&cluster, &topic).await.unwrap_or(0.0);

    // The broker leading most partitions: the bridge cannot fetch them, though the
    // broker is alive (no leader moves), nor reach it for metadata or the group.
    let broker = cluster.address(cluster.busiest_leader(&topic));
    ns.cut(&broker);
    let peak = hold_cluster(&mut bridge, &cluster, &topic, CUT).await;
    ns.mend(&broker);
    let took = recovers(&mut bridge, before.max(2_000.0), "broker cut").await;
    eprintln!(
        "cut: broker {broker} cut for {CUT:?} at {:.1} s: committed lag {before} -> peak {peak}, back down {:.1} s after",
        (started.elapsed() - CUT - took).as_secs_f64(),
        took.as_secs_f64()
    );
    assert!(
        peak > before,
        "the lag did not rise while a leader was cut off"
    );

    let influx_address = format!("{}:{}", ns.host_ip(), influx.port());
    let before = lag(&bridge);
    ns.cut(&influx_address);
    let peak = hold(&mut bridge, CUT).await;
    let retries = bridge
        .metrics()
        .map(|m| m.sum("kinflux_write_retries_total"));
    ns.mend(&influx_address);
    let took = recovers(&mut bridge, before.max(2_000.0), "InfluxDB cut").await;
    eprintln!(
        "cut: InfluxDB cut for {CUT:?}: committed lag {before} -> peak {peak}, back down {:.1} s after; write retries {retries:?}",
        took.as_secs_f64()
    );
    assert!(
        peak > before,
        "the lag did not rise while InfluxDB was cut off"
    );
    assert!(
        !stream.is_finished(),
        "the stream ended before the second cut was over; raise its cap"
    );

    let produced = stream.stop().await;
    eprintln!("cut: {produced} records produced to each partition");
    assert_exact(
        &influx,
        &db,
        PARTITIONS,
        produced,
        Duration::from_secs(180),
        &mut [&mut bridge],
    )
    .await;
    assert_committed(&[&bridge], PARTITIONS, Duration::from_secs(60)).await;
    bridge.assert_running();
    eprintln!("cut: done after {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_loss_on_the_influxdb_link() {
    let Some((ns, cluster, influx)) = servers_across() else {
        return;
    };
    let started = Instant::now();
    let (topic, db) = (unique("lossy"), unique("lossy_db"));
    create_topic_replicated(&cluster.brokers(), &topic, PARTITIONS, 3).await;
    let stream = Stream::new(&cluster.brokers(), &topic, PARTITIONS, per_partition())
        .chunk(100)
        .pause(Duration::from_millis(300))
        .spawn();
    // 80-120 ms each way, and 5% of chunks lost: a lost chunk resets its connection,
    // mid-request or mid-answer.
    let bad = Faults {
        latency: Duration::from_millis(80),
        jitter: Duration::from_millis(40),
        loss: 0.05,
    };
    let link = FaultyLink::start(
        &ns.host_ip(),
        &format!("{}:{}", ns.host_ip(), influx.port()),
        bad,
    )
    .await;
    let mut bridge = Bridge::start_in(
        &config_url(
            &cluster.brokers(),
            &format!("http://{}", link.address()),
            &topic,
            &db,
            "",
            "",
            // Small batches: a few requests a second for the loss to hit.
            "[batch]\nmax_points = 500\nmax_age = \"200ms\"\n",
        ),
        Some(&ns),
    );
    let bad_for = if full() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(30)
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = hold(&mut bridge, bad_for).await;
    let broken = link.broken();
    link.set(Faults::default());
    let took = recovers(&mut bridge, 2_000.0, "lossy link").await;
    eprintln!(
        "lossy: {bad_for:?} of {bad:?}: {} connections, {broken} broken by a loss; committed lag peak {peak}, under 2000 {:.1} s after",
        link.connections(),
        took.as_secs_f64()
    );
    assert!(broken > 0, "no connection was broken: the loss never hit");

    stream.await.expect("producer");
    assert_exact(
        &influx,
        &db,
        PARTITIONS,
        per_partition(),
        Duration::from_secs(180),
        &mut [&mut bridge],
    )
    .await;
    assert_committed(&[&bridge], PARTITIONS, Duration::from_secs(60)).await;
    bridge.assert_running();
    let m = bridge.metrics().expect("metrics");
    eprintln!(
        "lossy: write retries {:?}; done after {:.1} s",
        m.by_label("kinflux_write_retries_total"),
        started.elapsed().as_secs_f64()
    );
}
