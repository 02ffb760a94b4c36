//! Consumer-group behaviour against the broker at `KINFLUX_KAFKA_BROKERS`.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::*;
use kinflux_kafka::{Consumer, PartitionKey};
use kinflux_testkit::kafka::create_topic;
use kinflux_testkit::{require_or_skip, unique};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_consumer_resumes_right_after_committed_offset() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("resume");
    let group = unique("g-resume");
    create_topic(&brokers, &topic, 2).await;
    produce_range(&brokers, &topic, 0, 0, 10).await;
    produce_range(&brokers, &topic, 1, 0, 10).await;

    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 20).await;
    assert_eq!(seen.len(), 20, "nothing twice");
    for p in 0..2 {
        let offs: Vec<i64> = seen
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(
            offs,
            (0..10).collect::<Vec<_>>(),
            "order kept in partition {p}"
        );
    }
    let r = &seen[0];
    assert_eq!(r.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(
        r.headers,
        vec![("h".to_owned(), bytes::Bytes::from_static(b"v"))]
    );
    assert!(r.timestamp_ms >= 1_700_000_000_000);
    // Processed up to offset 5 in p0 and 3 in p1: commit the next offsets to read.
    c.commit([
        (PartitionKey::new(topic.as_str(), 0), 6),
        (PartitionKey::new(topic.as_str(), 1), 4),
    ])
    .await
    .unwrap();
    c.close().await.unwrap();

    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 10).await;
    let mut first: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &seen {
        first.entry(r.partition).or_default().push(r.offset);
    }
    assert_eq!(first[&0], (6..10).collect::<Vec<_>>());
    assert_eq!(first[&1], (4..10).collect::<Vec<_>>());
    let committed = c
        .committed(&[
            PartitionKey::new(topic.as_str(), 0),
            PartitionKey::new(topic.as_str(), 1),
        ])
        .await
        .unwrap();
    assert_eq!(committed[&PartitionKey::new(topic.as_str(), 0)], Some(6));
    c.close().await.unwrap();
}

fn partitions_of(topic: &str, n: i32) -> Vec<PartitionKey> {
    (0..n).map(|p| PartitionKey::new(topic, p)).collect()
}

/// Drives two consumers concurrently until both assignments satisfy `pred`.
async fn settle(
    a: &mut Consumer,
    b: &mut Consumer,
    pred: impl Fn(&[PartitionKey], &[PartitionKey]) -> bool,
) -> (Vec<PartitionKey>, Vec<PartitionKey>) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let (x, y) = (a.assignment(), b.assignment());
        if pred(&x, &y) {
            return (x, y);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {x:?} / {y:?}"
        );
        let step = Duration::from_millis(100);
        tokio::select! {
            r = a.recv() => { r.unwrap(); }
            r = b.recv() => { r.unwrap(); }
            _ = tokio::time::sleep(step) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_partitions_and_survivor_takes_over_on_leave() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("split");
    let group = unique("g-split");
    create_topic(&brokers, &topic, 4).await;

    let mut a = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    wait_assignment(&mut a, T, |x| x.len() == 4).await;
    let mut b = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let (x, y) = settle(&mut a, &mut b, |x, y| x.len() == 2 && y.len() == 2).await;
    let mut all: Vec<_> = x.iter().chain(&y).cloned().collect();
    all.sort();
    assert_eq!(all, partitions_of(&topic, 4), "disjoint and complete");

    // Records produced now reach whichever member owns the partition.
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 3).await;
    }
    let mut got = 0;
    let deadline = std::time::Instant::now() + T;
    while got < 12 {
        assert!(std::time::Instant::now() < deadline, "got {got} of 12");
        tokio::select! {
            r = a.recv() => if let kinflux_kafka::Message::Records(rs) = r.unwrap() {
                assert!(rs.iter().all(|r| x.contains(&r.partition_key())));
                got += rs.len();
            },
            r = b.recv() => if let kinflux_kafka::Message::Records(rs) = r.unwrap() {
                assert!(rs.iter().all(|r| y.contains(&r.partition_key())));
                got += rs.len();
            },
        }
    }
    assert_eq!(got, 12);

    b.close().await.unwrap();
    let started = std::time::Instant::now();
    wait_assignment(&mut a, T, |x| x.len() == 4).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a clean leave moves partitions at once, took {:?}",
        started.elapsed()
    );
    a.close().await.unwrap();
}

/// Two members split 4 partitions, then one dies without leaving the group (no
/// LeaveGroup, no more heartbeats): the first to join, which leads, or the second. The
/// survivor must hold all 4 once the dead member's session has timed out.
async fn survivor_takes_every_partition_after_a_member_dies(name: &str, leader_dies: bool) {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique(name);
    let group = unique(&format!("g-{name}"));
    create_topic(&brokers, &topic, 4).await;

    let mut first = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    wait_assignment(&mut first, T, |x| x.len() == 4).await;
    let mut second = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    settle(&mut first, &mut second, |x, y| x.len() == 2 && y.len() == 2).await;
    let (dead, mut survivor) = if leader_dies {
        (first, second)
    } else {
        (second, first)
    };
    drop(dead);
    let started = std::time::Instant::now();
    wait_assignment(&mut survivor, T, |x| x.len() == 4).await;
    eprintln!(
        "partitions moved {:?} after the {} died",
        started.elapsed(),
        if leader_dies { "leader" } else { "follower" }
    );
    survivor.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_a_dead_member_move_after_its_session_times_out() {
    survivor_takes_every_partition_after_a_member_dies("dead", false).await;
}

/// Apache Kafka elects the survivor as leader once the dead leader's session expired.
/// (tansu 0.6.0 does not: it keeps naming the dead leader in its JoinGroup answers, so
/// this test fails against tansu; a broker bug.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_a_dead_leader_move_after_its_session_times_out() {
    survivor_takes_every_partition_after_a_member_dies("dead-leader", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_matches_watermarks_and_seek_by_timestamp_replays() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("lag");
    let group = unique("g-lag");
    create_topic(&brokers, &topic, 1).await;
    produce_range(&brokers, &topic, 0, 0, 10).await;
    let tp = PartitionKey::new(topic.as_str(), 0);

    let mut c = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    recv_until(&mut c, T, |rs| rs.len() >= 10).await;
    c.commit([(tp.clone(), 4)]).await.unwrap();
    let (low, high) = c.watermarks(&tp).await.unwrap();
    assert_eq!((low, high), (0, 10));
    let lag = c.lag();
    assert_eq!(lag.len(), 1);
    let l = &lag[0];
    assert_eq!(l.high_watermark, Some(high));
    assert_eq!(l.position, Some(10));
    assert_eq!(l.committed, Some(4));
    assert_eq!(l.lag, Some(0));
    assert_eq!(l.committed_lag, Some(6));
    assert_eq!(c.high_watermarks()[&tp], 10);

    // Pause: new records are not fetched; resume: they come.
    c.pause(std::slice::from_ref(&tp));
    produce_range(&brokers, &topic, 0, 10, 5).await;
    let idle = tokio::time::timeout(Duration::from_millis(800), c.recv()).await;
    assert!(
        !matches!(idle, Ok(Ok(kinflux_kafka::Message::Records(ref rs))) if !rs.is_empty()),
        "paused partition delivered records"
    );
    c.resume(std::slice::from_ref(&tp));
    let more = recv_until(&mut c, T, |rs| rs.len() >= 5).await;
    assert_eq!(more[0].offset, 10);
    let l = &c.lag()[0];
    assert_eq!(l.high_watermark, Some(15));
    assert_eq!(l.lag, Some(0));
    assert_eq!(l.committed_lag, Some(11));

    // Offsets by timestamp (record i has timestamp 1_700_000_000_000 + i), and seek there.
    let at = c
        .offset_for_timestamp(&tp, 1_700_000_000_007)
        .await
        .unwrap();
    assert_eq!(at, 7);
    c.seek(&tp, at).unwrap();
    let again = recv_until(&mut c, T, |rs| rs.len() >= 8).await;
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (7..15).collect::<Vec<_>>()
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_regex_subscribes_to_matching_topics() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let prefix = unique("rx");
    let (t1, t2) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&brokers, &t1, 1).await;
    create_topic(&brokers, &t2, 1).await;
    produce_range(&brokers, &t1, 0, 0, 2).await;
    produce_range(&brokers, &t2, 0, 0, 3).await;
    let mut cfg = config(&brokers, &unique("g-rx"), &[]);
    cfg.topics.clear();
    cfg.topic_regex = Some(format!("{prefix}-.*"));
    cfg.metadata_refresh_interval = Duration::from_millis(500);
    let mut c = Consumer::connect(cfg).await.unwrap();
    let seen = recv_until(&mut c, T, |rs| rs.len() >= 5).await;
    assert_eq!(seen.iter().filter(|r| *r.topic == *t1).count(), 2);
    assert_eq!(seen.iter().filter(|r| *r.topic == *t2).count(), 3);
    c.commit_positions().await.unwrap();

    // A topic created later is found by the periodic metadata check.
    let t3 = format!("{prefix}-c");
    create_topic(&brokers, &t3, 1).await;
    produce_range(&brokers, &t3, 0, 0, 4).await;
    let seen = recv_until(&mut c, T, |rs| {
        rs.iter().filter(|r| *r.topic == *t3).count() >= 4
    })
    .await;
    assert!(
        seen.iter().all(|r| *r.topic == *t3),
        "committed records of the old topics came back"
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_partitions_stay_until_the_revocation_is_released_and_can_be_committed() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("revoke");
    let group = unique("g-revoke");
    create_topic(&brokers, &topic, 2).await;
    for p in 0..2 {
        produce_range(&brokers, &topic, p, 0, 3).await;
    }
    let mut a = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    recv_until(&mut a, T, |rs| rs.len() >= 6).await;
    let mut b = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    // a is told first, and keeps its partitions while it holds the revocation.
    let revocation = loop {
        tokio::select! {
            m = a.recv() => if let kinflux_kafka::Message::Revoked(r) = m.unwrap() { break r },
            m = b.recv() => { m.unwrap(); }
        }
    };
    assert_eq!(revocation.partitions().len(), 2);
    assert!(revocation.deadline() > tokio::time::Instant::now());
    // The caller flushes and commits inside the window.
    a.commit([
        (PartitionKey::new(topic.as_str(), 0), 3),
        (PartitionKey::new(topic.as_str(), 1), 3),
    ])
    .await
    .expect("commit while the revocation is held");
    let hold = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < hold {
        assert!(
            b.assignment().is_empty(),
            "b got partitions before a released them"
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), b.recv()).await;
    }
    revocation.done();
    let (x, y) = settle(&mut a, &mut b, |x, y| x.len() == 1 && y.len() == 1).await;
    assert_ne!(x, y);
    // Nothing committed comes back to either member.
    let idle = tokio::time::timeout(Duration::from_millis(500), b.recv()).await;
    assert!(!matches!(idle, Ok(Ok(kinflux_kafka::Message::Records(_)))));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_gets_its_partitions_back_after_a_quick_restart() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("static");
    let group = unique("g-static");
    create_topic(&brokers, &topic, 2).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.group_instance_id = Some("bridge-1".into());
    let mut a = Consumer::connect(cfg.clone()).await.unwrap();
    let before = wait_assignment(&mut a, T, |x| x.len() == 2).await;
    drop(a); // crash: no LeaveGroup
    let mut a = Consumer::connect(cfg).await.unwrap();
    let after = wait_assignment(&mut a, T, |x| x.len() == 2).await;
    assert_eq!(before, after);
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_partition_buffer_stops_fetching_until_drained() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("backpressure");
    create_topic(&brokers, &topic, 1).await;
    let tp = PartitionKey::new(topic.as_str(), 0);
    let mut cfg = config(&brokers, &unique("g-bp"), &[&topic]);
    cfg.max_buffered_bytes = 1; // one batch fills it
    let mut c = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut c, T, |a| a.len() == 1).await;
    // The end of the log after each produce, from the offsets the broker gave: a produce
    // the client retried after a lost answer appends its records twice.
    let end_after = |offsets: Vec<i64>| offsets.last().expect("records were produced") + 1;
    let first_end = end_after(produce_range(&brokers, &topic, 0, 0, 5).await);
    let deadline = std::time::Instant::now() + T;
    while c.high_watermarks().get(&tp) != Some(&first_end) {
        assert!(
            std::time::Instant::now() < deadline,
            "first batch never fetched: high watermark {:?}, want {first_end}; {} failed fetches",
            c.high_watermarks().get(&tp),
            c.fetch_failures()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first batch sits in the buffer, undelivered: no more fetches.
    let second_end = end_after(produce_range(&brokers, &topic, 0, 5, 5).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        c.high_watermarks()[&tp],
        first_end,
        "fetched although the buffer is full"
    );
    // Draining lets it fetch again.
    let seen = recv_until(&mut c, T, |rs| rs.len() as i64 >= second_end).await;
    assert_eq!(
        seen.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..second_end).collect::<Vec<_>>()
    );
    assert_eq!(c.high_watermarks()[&tp], second_end);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_rebalance_revokes_only_the_partitions_that_move() {
    use kinflux_kafka::{AssignmentStrategy, Message};
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("coop");
    let group = unique("g-coop");
    create_topic(&brokers, &topic, 4).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.assignment_strategies = vec![AssignmentStrategy::CooperativeSticky];

    let mut a = Consumer::connect(cfg.clone()).await.unwrap();
    wait_assignment(&mut a, T, |x| x.len() == 4).await;
    let mut b = Consumer::connect(cfg).await.unwrap();
    let mut a_revoked: Vec<PartitionKey> = Vec::new();
    let mut a_assigned_again = 0;
    let mut b_assigned: Vec<PartitionKey> = Vec::new();
    let deadline = std::time::Instant::now() + T;
    // A consumer's assignment changes before its message is received, so the loop
    // waits for the messages as well: both can be seen settled with b's Assigned
    // still queued.
    while !(a.assignment().len() == 2
        && b.assignment().len() == 2
        && a_revoked.len() >= 2
        && b_assigned.len() >= 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {:?} / {:?}; a revoked {a_revoked:?}, b assigned {b_assigned:?}",
            a.assignment(),
            b.assignment()
        );
        tokio::select! {
            m = a.recv() => match m.unwrap() {
                Message::Revoked(r) => a_revoked.extend(r.partitions().iter().cloned()),
                Message::Assigned(_) => a_assigned_again += 1,
                _ => {}
            },
            m = b.recv() => if let Message::Assigned(tps) = m.unwrap() { b_assigned.extend(tps) },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    a_revoked.sort();
    b_assigned.sort();
    assert_eq!(a_revoked, b_assigned, "only what moved was revoked");
    assert_eq!(a_revoked.len(), 2);
    assert_eq!(
        a_assigned_again, 0,
        "a kept its other partitions without a new Assigned"
    );

    // b leaves: its partitions come to a incrementally, with no revocation for a.
    let kept = a.assignment();
    b.close().await.unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + T;
    while a.assignment().len() < 4 || got.len() < b_assigned.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "takeover never happened"
        );
        match tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
            Ok(Ok(Message::Assigned(tps))) => got.extend(tps),
            Ok(Ok(Message::Revoked(r))) => panic!("a lost {:?}", r.partitions()),
            _ => {}
        }
    }
    got.sort();
    assert_eq!(got, b_assigned);
    assert!(kept.iter().all(|tp| a.assignment().contains(tp)));
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_joining_is_assigned_within_seconds() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("later");
    let group = unique("g-later");
    // The metadata refresh is minutes away: only the look-out for missing topics finds it.
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.metadata_refresh_interval = Duration::from_secs(300);
    let mut c = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut c, T, |a| a.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    create_topic(&brokers, &topic, 2).await;
    let started = std::time::Instant::now();
    wait_assignment(&mut c, Duration::from_secs(10), |a| a.len() == 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    c.close().await.unwrap();
}

/// A member whose process stalls past its session timeout (here: the runtime's one thread
/// sleeps, so no heartbeat goes out) says so before anything else can run, and revokes its
/// partitions as lost, not as an ordinary rebalance; then it joins again.
#[tokio::test(flavor = "current_thread")]
async fn a_member_stalled_past_its_session_timeout_knows_and_revokes_as_lost() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("stalled");
    let group = unique("g-stalled");
    create_topic(&brokers, &topic, 2).await;
    let cfg = config(&brokers, &group, &[&topic]);
    let session_timeout = cfg.session_timeout;
    let mut a = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut a, T, |x| x.len() == 2).await;
    assert!(!a.membership_lost(), "a fresh member is not lost");
    // Every task of this runtime stalls, the heartbeat among them (a SIGSTOP, in effect).
    std::thread::sleep(session_timeout + Duration::from_secs(2));
    assert!(
        a.membership_lost(),
        "no heartbeat for longer than the session timeout must count as lost"
    );
    let deadline = std::time::Instant::now() + T;
    let revocation = loop {
        assert!(std::time::Instant::now() < deadline, "never revoked");
        match tokio::time::timeout(T, a.recv()).await {
            Ok(Ok(kinflux_kafka::Message::Revoked(r))) => break r,
            Ok(Ok(_)) => {}
            other => panic!("no revocation: {other:?}"),
        }
    };
    assert!(revocation.lost(), "the revocation must say it was lost");
    assert_eq!(revocation.partitions().len(), 2);
    revocation.done();
    loop {
        assert!(std::time::Instant::now() < deadline, "never assigned again");
        match tokio::time::timeout(T, a.recv()).await {
            Ok(Ok(kinflux_kafka::Message::Assigned(p))) => {
                assert_eq!(p.len(), 2);
                break;
            }
            Ok(Ok(_)) => {}
            other => panic!("not assigned again: {other:?}"),
        }
    }
    assert!(!a.membership_lost(), "joined again");
    a.close().await.unwrap();
}
