//! The `consumer` group protocol (KIP-848) against the broker at `KINFLUX_KAFKA_BROKERS`
//! (Apache Kafka 4.x enables it by default).

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use kinflux_kafka::{Consumer, GroupProtocol, Message, PartitionKey, Record, RemoteAssignor};
use kinflux_testkit::kafka::create_topic;
use kinflux_testkit::{require_or_skip, unique};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(60);

/// What a pumped consumer shows the test.
#[derive(Default)]
struct Seen {
    records: Mutex<Vec<Record>>,
    assignment: Mutex<Vec<PartitionKey>>,
    revoked: Mutex<Vec<PartitionKey>>,
}

/// Receives until `stop`, committing after every batch and on every revocation (before
/// acknowledging it), so no record should ever be handed out twice in the group.
async fn pump(mut c: Consumer, seen: Arc<Seen>, stop: CancellationToken) -> Consumer {
    loop {
        *seen.assignment.lock().unwrap() = c.assignment();
        let m = tokio::select! {
            m = c.recv() => m.expect("recv"),
            () = stop.cancelled() => return c,
            // The assignment also changes without a message (after a revocation).
            () = tokio::time::sleep(Duration::from_millis(100)) => continue,
        };
        match m {
            Message::Records(rs) => {
                seen.records.lock().unwrap().extend(rs);
                c.commit_positions().await.expect("commit");
            }
            Message::Revoked(r) => {
                c.commit_positions().await.expect("commit on revoke");
                seen.revoked
                    .lock()
                    .unwrap()
                    .extend(r.partitions().iter().cloned());
                r.done();
            }
            _ => {}
        }
    }
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn all(seen: &[&Arc<Seen>]) -> Vec<(i32, i64)> {
    seen.iter()
        .flat_map(|s| {
            s.records
                .lock()
                .unwrap()
                .iter()
                .map(|r| (r.partition, r.offset))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_exactly_once(seen: &[&Arc<Seen>], per_partition: i64, partitions: i32) {
    let got = all(seen);
    let unique: BTreeSet<(i32, i64)> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "a record was read twice");
    let want: BTreeSet<(i32, i64)> = (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| (p, o)))
        .collect();
    assert_eq!(unique, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_revoke_after_commit_and_take_over_on_leave() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("kip848");
    let group = unique("g-kip848");
    create_topic(&brokers, &topic, 4).await;
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 10).await;
    }
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    cfg.group_remote_assignor = Some(RemoteAssignor::Uniform);

    // One member gets every partition.
    let (a, b) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let c1 = Consumer::connect(cfg.clone()).await.unwrap();
    let t1 = tokio::spawn(pump(c1, Arc::clone(&a), stop_a.clone()));
    wait_for("all 40 records", || all(&[&a]).len() >= 40).await;
    assert_eq!(a.assignment.lock().unwrap().len(), 4);

    // A second member: the broker takes two partitions from the first, which commits
    // them before releasing them.
    let c2 = Consumer::connect(cfg.clone()).await.unwrap();
    let t2 = tokio::spawn(pump(c2, Arc::clone(&b), stop_b.clone()));
    wait_for("a 2/2 split", || {
        a.assignment.lock().unwrap().len() == 2 && b.assignment.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(a.revoked.lock().unwrap().len(), 2, "two partitions revoked");
    let mut split: Vec<PartitionKey> = a.assignment.lock().unwrap().clone();
    split.extend(b.assignment.lock().unwrap().iter().cloned());
    split.sort();
    assert_eq!(
        split,
        (0..4)
            .map(|p| PartitionKey::new(topic.as_str(), p))
            .collect::<Vec<_>>()
    );
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 10, 10).await;
    }
    wait_for("80 records", || all(&[&a, &b]).len() >= 80).await;
    assert!(
        !b.records.lock().unwrap().is_empty(),
        "the second member read"
    );
    assert_exactly_once(&[&a, &b], 20, 4);

    // The second member leaves (epoch -1): the first takes everything back at once.
    stop_b.cancel();
    let c2 = t2.await.unwrap();
    let left = Instant::now();
    c2.close().await.unwrap();
    wait_for("the first member owning all 4 again", || {
        a.assignment.lock().unwrap().len() == 4
    })
    .await;
    assert!(
        left.elapsed() < Duration::from_secs(20),
        "took {:?}",
        left.elapsed()
    );
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 20, 5).await;
    }
    wait_for("100 records", || all(&[&a, &b]).len() >= 100).await;
    assert_exactly_once(&[&a, &b], 25, 4);

    stop_a.cancel();
    let c1 = t1.await.unwrap();
    let committed = c1
        .committed(
            &(0..4)
                .map(|p| PartitionKey::new(topic.as_str(), p))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert!(committed.values().all(|c| *c == Some(25)), "{committed:?}");
    c1.close().await.unwrap();
}

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/rdkafka_member.py"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librdkafka_consumer_protocol_member_shares_the_group() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    let found = std::process::Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    if !kinflux_testkit::env::available(found, "no python3 with confluent-kafka") {
        return;
    }
    init_tracing();
    let topic = unique("kip848-x");
    let group = unique("g-kip848-x");
    create_topic(&brokers, &topic, 4).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    let mut k = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut k, T, |a| a.len() == 4).await;

    let mut py = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args(["member", "--brokers", &brokers, "--group", &group])
        .args(["--topic", &topic, "--protocol", "consumer"])
        .args(["--expect", "10", "--timeout", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mine = wait_assignment(&mut k, T, |a| a.len() == 2).await;
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    let seen = recv_until(&mut k, T, |rs| rs.len() >= 10).await;
    assert!(seen.iter().all(|r| mine.contains(&r.partition_key())));
    k.commit(mine.iter().map(|tp| (tp.clone(), 5)))
        .await
        .unwrap();

    // Keep heartbeating while librdkafka reads its half, commits and leaves.
    let mut stdout = py.stdout.take().expect("stdout");
    let read = async move {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
            .await
            .expect("read stdout");
        out
    };
    tokio::pin!(read);
    let out = loop {
        tokio::select! {
            out = &mut read => break out,
            r = k.recv() => { r.unwrap(); }
        }
    };
    assert!(py.wait().await.unwrap().success());
    let report: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("report")).expect("json report");
    let theirs: Vec<i32> = report["assigned"]
        .as_array()
        .expect("assigned")
        .iter()
        .map(|v| v.as_i64().expect("int") as i32)
        .collect();
    let mut both: Vec<i32> = theirs
        .iter()
        .copied()
        .chain(mine.iter().map(|tp| tp.partition))
        .collect();
    both.sort();
    assert_eq!(both, vec![0, 1, 2, 3], "ours {mine:?}, theirs {theirs:?}");

    // librdkafka left: ours takes its partitions and resumes after its commits.
    wait_assignment(&mut k, T, |a| a.len() == 4).await;
    for p in &theirs {
        produce_range(&brokers, &topic, *p, 5, 1).await;
    }
    let more = recv_until(&mut k, T, |rs| rs.len() >= theirs.len()).await;
    assert!(
        more.iter().all(|r| r.offset == 5),
        "nothing committed comes back"
    );
    k.close().await.unwrap();
}

/// A broker of our own with a 3 s consumer session timeout (the shared one keeps Kafka's
/// 45 s minimum).
fn short_session_broker() -> Option<kinflux_testkit::process::KafkaBroker> {
    kinflux_testkit::process::KafkaBroker::start_with(
        "group.consumer.min.session.timeout.ms=3000\n\
         group.consumer.session.timeout.ms=3000\n\
         group.consumer.min.heartbeat.interval.ms=500\n\
         group.consumer.heartbeat.interval.ms=500\n",
    )
}

/// A revocation that takes twice the session timeout keeps the membership: heartbeats
/// go on meanwhile, and the commit at its end is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_revocation_keeps_heartbeating_and_its_commit_is_accepted() {
    let Some(broker) = short_session_broker() else {
        return;
    };
    init_tracing();
    let brokers = broker.brokers();
    broker.wait_for_group_coordinator();
    let topic = unique("kip848-slow");
    let group = unique("g-kip848-slow");
    create_topic(&brokers, &topic, 2).await;
    for p in 0..2 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    let mut c1 = Consumer::connect(cfg.clone()).await.unwrap();
    recv_until(&mut c1, T, |rs| rs.len() >= 10).await;
    let b = Arc::new(Seen::default());
    let stop_b = CancellationToken::new();
    let t2 = tokio::spawn(pump(
        Consumer::connect(cfg).await.unwrap(),
        Arc::clone(&b),
        stop_b.clone(),
    ));
    let revocation = loop {
        match tokio::time::timeout(T, c1.recv()).await.unwrap().unwrap() {
            Message::Revoked(r) => break r,
            _ => continue,
        }
    };
    let gone = revocation.partitions().to_vec();
    assert_eq!(gone.len(), 1);
    tokio::time::sleep(Duration::from_secs(6)).await;
    c1.commit(gone.iter().map(|tp| (tp.clone(), 5)))
        .await
        .expect("still a member after 6 s: the commit is accepted");
    revocation.done();
    wait_for("the partition reaching the other member", || {
        *b.assignment.lock().unwrap() == gone
    })
    .await;
    assert!(
        b.records.lock().unwrap().is_empty(),
        "it starts after the commit"
    );
    assert_eq!(
        c1.assignment().len(),
        1,
        "the first member kept the other partition"
    );
    stop_b.cancel();
    t2.await.unwrap().close().await.unwrap();
    c1.close().await.unwrap();
}

/// A member that disappears without leaving loses its partitions after the broker's
/// session timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_move_after_the_session_timeout() {
    let Some(broker) = short_session_broker() else {
        return;
    };
    init_tracing();
    let brokers = broker.brokers();
    broker.wait_for_group_coordinator();
    let topic = unique("kip848-kill");
    let group = unique("g-kip848-kill");
    create_topic(&brokers, &topic, 4).await;
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 10).await;
    }
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    let (a, b) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let c1 = Consumer::connect(cfg.clone()).await.unwrap();
    let t1 = tokio::spawn(pump(c1, Arc::clone(&a), stop_a.clone()));
    wait_for("the first member owning all 4", || {
        a.assignment.lock().unwrap().len() == 4
    })
    .await;
    let c2 = Consumer::connect(cfg).await.unwrap();
    let t2 = tokio::spawn(pump(c2, Arc::clone(&b), stop_b.clone()));
    wait_for("a 2/2 split", || {
        a.assignment.lock().unwrap().len() == 2 && b.assignment.lock().unwrap().len() == 2
    })
    .await;
    wait_for("40 records", || all(&[&a, &b]).len() >= 40).await;

    // Killed: dropped without leaving.
    stop_b.cancel();
    drop(t2.await.unwrap());
    let killed = Instant::now();
    wait_for("the survivor owning all 4", || {
        a.assignment.lock().unwrap().len() == 4
    })
    .await;
    let moved = killed.elapsed();
    assert!(
        moved >= Duration::from_secs(2) && moved < Duration::from_secs(20),
        "moved after {moved:?}"
    );
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 10, 5).await;
    }
    wait_for("60 records", || all(&[&a, &b]).len() >= 60).await;
    assert_exactly_once(&[&a, &b], 15, 4);
    stop_a.cancel();
    t1.await.unwrap().close().await.unwrap();
}

/// The broker resolves `topic_regex` (ConsumerGroupHeartbeat v1), also for a topic
/// created after the member joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_resolves_the_topic_regex() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let prefix = unique("kip848re");
    let (first, second) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&brokers, &first, 2).await;
    create_topic(&brokers, &format!("{prefix}x"), 1).await; // not matched
    let mut cfg = config(&brokers, &unique("g-kip848re"), &[]);
    cfg.topic_regex = Some(format!("{prefix}-.*"));
    cfg.group_protocol = GroupProtocol::Consumer;
    let mut c = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut c, T, |a| a.len() == 2).await;
    create_topic(&brokers, &second, 1).await;
    let a = wait_assignment(&mut c, T, |a| a.len() == 3).await;
    assert!(
        a.iter()
            .all(|tp| tp.topic.starts_with(&format!("{prefix}-"))),
        "{a:?}"
    );
    produce_range(&brokers, &second, 0, 0, 3).await;
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 3).await;
    assert!(seen.iter().all(|r| *r.topic == *second));
    c.close().await.unwrap();
}

/// A static member leaves with epoch -2: its partitions wait for it (they do not move to
/// the other member) and it gets them back when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_gets_its_partitions_back_after_a_restart() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("kip848-static");
    let group = unique("g-kip848-static");
    create_topic(&brokers, &topic, 4).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    let mut fixed = cfg.clone();
    fixed.group_instance_id = Some("bridge-1".into());

    let (a, b) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let t1 = tokio::spawn(pump(
        Consumer::connect(fixed.clone()).await.unwrap(),
        Arc::clone(&a),
        stop_a.clone(),
    ));
    wait_for("the static member owning all 4", || {
        a.assignment.lock().unwrap().len() == 4
    })
    .await;
    let t2 = tokio::spawn(pump(
        Consumer::connect(cfg).await.unwrap(),
        Arc::clone(&b),
        stop_b.clone(),
    ));
    wait_for("a 2/2 split", || {
        a.assignment.lock().unwrap().len() == 2 && b.assignment.lock().unwrap().len() == 2
    })
    .await;
    let before = a.assignment.lock().unwrap().clone();
    stop_a.cancel();
    t1.await.unwrap().close().await.unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(b.assignment.lock().unwrap().len(), 2, "nothing moved");
    let a2 = Arc::new(Seen::default());
    let stop_a2 = CancellationToken::new();
    let t3 = tokio::spawn(pump(
        Consumer::connect(fixed).await.unwrap(),
        Arc::clone(&a2),
        stop_a2.clone(),
    ));
    wait_for("the same 2 partitions back", || {
        *a2.assignment.lock().unwrap() == before
    })
    .await;
    assert_eq!(b.assignment.lock().unwrap().len(), 2);
    stop_a2.cancel();
    stop_b.cancel();
    t3.await.unwrap().close().await.unwrap();
    t2.await.unwrap().close().await.unwrap();
}
