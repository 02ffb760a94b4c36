//! A librdkafka consumer (Python confluent-kafka) and a kinflux consumer in one group,
//! against the broker at `KINFLUX_KAFKA_BROKERS`, and against tansu at
//! `KINFLUX_TANSU_BROKERS` too when that is set (the opt-in compatibility leg; each case
//! has a `_on_tansu` twin).

mod common;

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use common::*;
use kinflux_kafka::{Consumer, Message, PartitionKey};
use kinflux_testkit::kafka::create_topic;
use kinflux_testkit::{require_or_skip, unique};
use tokio::io::AsyncReadExt;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/rdkafka_member.py"
);

fn python_available() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    kinflux_testkit::env::available(
        found,
        "no python3 with confluent-kafka (pip install confluent-kafka)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_kinflux_share_a_group_and_read_each_others_commits() {
    librdkafka_and_kinflux_share_a_group_and_read_each_others_commits_on(require_or_skip!(
        "KINFLUX_KAFKA_BROKERS"
    ))
    .await;
}

/// [`librdkafka_and_kinflux_share_a_group_and_read_each_others_commits`] on tansu, the opt-in compatibility leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_kinflux_share_a_group_and_read_each_others_commits_on_tansu() {
    if let Some(brokers) = kinflux_testkit::tansu_brokers() {
        librdkafka_and_kinflux_share_a_group_and_read_each_others_commits_on(brokers).await;
    }
}

async fn librdkafka_and_kinflux_share_a_group_and_read_each_others_commits_on(brokers: String) {
    if !python_available() {
        return;
    }
    init_tracing();
    let topic = unique("xclient");
    let group = unique("g-xclient");
    create_topic(&brokers, &topic, 4).await;

    let mut k = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    wait_assignment(&mut k, Duration::from_secs(30), |a| a.len() == 4).await;

    // The librdkafka member joins and reads the 10 records of its two partitions.
    let mut py = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args([
            "member",
            "--brokers",
            &brokers,
            "--group",
            &group,
            "--topic",
            &topic,
        ])
        .args(["--expect", "10", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mine = wait_assignment(&mut k, Duration::from_secs(60), |a| a.len() == 2).await;
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    let seen = recv_until(&mut k, Duration::from_secs(30), |rs| rs.len() >= 10).await;
    assert!(seen.iter().all(|r| mine.contains(&r.partition_key())));
    k.commit(mine.iter().map(|tp| (tp.clone(), 5)))
        .await
        .unwrap();

    // Keep serving the group (rebalances) while the Python member finishes and leaves.
    let mut stdout = py.stdout.take().expect("stdout");
    let read = async move {
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.expect("read stdout");
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
        serde_json::from_str(out.lines().last().expect("report line")).expect("json report");
    let theirs: Vec<i32> = report["assigned"]
        .as_array()
        .expect("assigned")
        .iter()
        .map(|v| v.as_i64().expect("int") as i32)
        .collect();
    let mut all: Vec<i32> = theirs
        .iter()
        .copied()
        .chain(mine.iter().map(|tp| tp.partition))
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![0, 1, 2, 3],
        "split: ours {mine:?}, theirs {theirs:?}"
    );
    for p in &theirs {
        let offs: Vec<i64> = report["consumed"][p.to_string()]
            .as_array()
            .expect("consumed")
            .iter()
            .map(|v| v.as_i64().expect("int"))
            .collect();
        assert_eq!(offs, vec![0, 1, 2, 3, 4]);
    }

    // kinflux reads librdkafka's commits, takes over its partitions and resumes after them.
    let everything: Vec<PartitionKey> = (0..4)
        .map(|p| PartitionKey::new(topic.as_str(), p))
        .collect();
    let committed = k.committed(&everything).await.unwrap();
    assert!(committed.values().all(|c| *c == Some(5)), "{committed:?}");
    wait_assignment(&mut k, Duration::from_secs(30), |a| a.len() == 4).await;
    for p in &theirs {
        produce_range(&brokers, &topic, *p, 5, 1).await;
    }
    let more = recv_until(&mut k, Duration::from_secs(30), |rs| {
        rs.len() >= theirs.len()
    })
    .await;
    assert!(
        more.iter().all(|r| r.offset == 5),
        "nothing committed comes back"
    );

    // librdkafka reads kinflux's commits.
    let out = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args([
            "committed",
            "--brokers",
            &brokers,
            "--group",
            &group,
            "--topic",
            &topic,
        ])
        .args(["--partitions", "4"])
        .output()
        .await
        .expect("python3");
    assert!(out.status.success());
    let c: BTreeMap<String, i64> = serde_json::from_slice(&out.stdout).expect("committed json");
    for tp in &mine {
        assert_eq!(c[&tp.partition.to_string()], 5, "{c:?}");
    }
    // Drain anything pending, then leave.
    while let Ok(Ok(Message::Records(_))) =
        tokio::time::timeout(Duration::from_millis(50), k.recv()).await
    {}
    k.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_leader_assigns_partitions_to_a_kinflux_member() {
    librdkafka_leader_assigns_partitions_to_a_kinflux_member_on(require_or_skip!(
        "KINFLUX_KAFKA_BROKERS"
    ))
    .await;
}

/// [`librdkafka_leader_assigns_partitions_to_a_kinflux_member`] on tansu, the opt-in compatibility leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_leader_assigns_partitions_to_a_kinflux_member_on_tansu() {
    if let Some(brokers) = kinflux_testkit::tansu_brokers() {
        librdkafka_leader_assigns_partitions_to_a_kinflux_member_on(brokers).await;
    }
}

async fn librdkafka_leader_assigns_partitions_to_a_kinflux_member_on(brokers: String) {
    if !python_available() {
        return;
    }
    init_tracing();
    let topic = unique("xleader");
    let group = unique("g-xleader");
    create_topic(&brokers, &topic, 4).await;

    // librdkafka joins first, so it leads the group and runs the assignor over our
    // subscription (ConsumerProtocolSubscription v2).
    let mut py = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args([
            "member",
            "--brokers",
            &brokers,
            "--group",
            &group,
            "--topic",
            &topic,
        ])
        .args(["--expect", "10", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    let mut stderr = tokio::io::BufReader::new(py.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut line),
        )
        .await
        .expect("librdkafka member never got an assignment")
        .unwrap();
        assert!(n > 0, "python exited early");
        if line.starts_with("assigned [0, 1, 2, 3]") {
            break;
        }
    }
    tokio::spawn(async move {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest).await;
    });

    let mut k = Consumer::connect(config(&brokers, &group, &[&topic]))
        .await
        .unwrap();
    let mine = wait_assignment(&mut k, Duration::from_secs(60), |a| a.len() == 2).await;
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    let seen = recv_until(&mut k, Duration::from_secs(30), |rs| rs.len() >= 10).await;
    assert!(seen.iter().all(|r| mine.contains(&r.partition_key())));

    let mut stdout = py.stdout.take().expect("stdout");
    let read = async move {
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.expect("read stdout");
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
        serde_json::from_str(out.lines().last().expect("report line")).expect("json report");
    let theirs: Vec<i32> = report["assigned"]
        .as_array()
        .expect("assigned")
        .iter()
        .map(|v| v.as_i64().expect("int") as i32)
        .collect();
    let mut all: Vec<i32> = theirs
        .iter()
        .copied()
        .chain(mine.iter().map(|tp| tp.partition))
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![0, 1, 2, 3],
        "split: ours {mine:?}, theirs {theirs:?}"
    );
    k.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_kinflux_rebalance_cooperatively_together() {
    librdkafka_and_kinflux_rebalance_cooperatively_together_on(require_or_skip!(
        "KINFLUX_KAFKA_BROKERS"
    ))
    .await;
}

/// [`librdkafka_and_kinflux_rebalance_cooperatively_together`] on tansu, the opt-in compatibility leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_kinflux_rebalance_cooperatively_together_on_tansu() {
    if let Some(brokers) = kinflux_testkit::tansu_brokers() {
        librdkafka_and_kinflux_rebalance_cooperatively_together_on(brokers).await;
    }
}

async fn librdkafka_and_kinflux_rebalance_cooperatively_together_on(brokers: String) {
    use kinflux_kafka::AssignmentStrategy;
    if !python_available() {
        return;
    }
    init_tracing();
    let topic = unique("xcoop");
    let group = unique("g-xcoop");
    create_topic(&brokers, &topic, 4).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.assignment_strategies = vec![AssignmentStrategy::CooperativeSticky];
    let mut k = Consumer::connect(cfg).await.unwrap();
    wait_assignment(&mut k, Duration::from_secs(30), |a| a.len() == 4).await;

    let mut py = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .args([
            "member",
            "--brokers",
            &brokers,
            "--group",
            &group,
            "--topic",
            &topic,
        ])
        .args([
            "--expect",
            "10",
            "--timeout",
            "60",
            "--strategy",
            "cooperative-sticky",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    // kinflux leads and hands over two partitions; it must not lose the other two.
    let mut revoked = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while k.assignment().len() != 2 {
        assert!(std::time::Instant::now() < deadline, "never split");
        match tokio::time::timeout(Duration::from_millis(200), k.recv()).await {
            Ok(Ok(Message::Revoked(r))) => revoked.extend(r.partitions().iter().cloned()),
            Ok(Ok(Message::Assigned(tps))) => panic!("unexpected assignment {tps:?}"),
            Ok(Err(e)) => panic!("{e}"),
            _ => {}
        }
    }
    assert_eq!(
        revoked.len(),
        2,
        "only the two moving partitions are revoked"
    );
    let mine = k.assignment();
    for p in 0..4 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    let seen = recv_until(&mut k, Duration::from_secs(30), |rs| rs.len() >= 10).await;
    assert!(seen.iter().all(|r| mine.contains(&r.partition_key())));

    let mut stdout = py.stdout.take().expect("stdout");
    let read = async move {
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.expect("read stdout");
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
        serde_json::from_str(out.lines().last().expect("report line")).expect("json report");
    let mut theirs: Vec<i32> = report["assigned"]
        .as_array()
        .expect("assigned")
        .iter()
        .map(|v| v.as_i64().expect("int") as i32)
        .collect();
    theirs.sort();
    let mut moved: Vec<i32> = revoked.iter().map(|tp| tp.partition).collect();
    moved.sort();
    assert_eq!(theirs, moved, "librdkafka got exactly what kinflux gave up");
    k.close().await.unwrap();
}
