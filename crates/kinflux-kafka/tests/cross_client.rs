//! Other clients and a kinflux consumer in one group, against the broker at
//! `KINFLUX_KAFKA_BROKERS`: librdkafka (Python confluent-kafka) alone with us (also against
//! tansu at `KINFLUX_TANSU_BROKERS` when that is set, the opt-in compatibility leg: those
//! cases have a `_on_tansu` twin), then librdkafka and Kafka's Java client
//! (`KINFLUX_KAFKA_HOME`) together with us under each assignor, each client leading once.

mod common;

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use common::{
    members::{Client, Member, Report, committed},
    *,
};
use kinflux_kafka::{AssignmentStrategy, Consumer, Message, PartitionKey};
use kinflux_testkit::kafka::create_topic;
use kinflux_testkit::{require_or_skip, unique};
use tokio::{io::AsyncReadExt, task::JoinHandle};

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
        if line.starts_with("owns [0, 1, 2, 3]") {
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
    // The assignment can change before the Revoked message is received: wait for both.
    while k.assignment().len() != 2 || revoked.len() < 2 {
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

/// A member of the three-client group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Kinflux,
    Other(Client),
}

/// Our member in the three-client group: records seen, commit after every batch, and
/// rebalance events released at once.
async fn serve(
    ours: &mut Option<Consumer>,
    seen: &mut Vec<kinflux_kafka::Record>,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(Option<&Consumer>, &[kinflux_kafka::Record]) -> bool,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !done(ours.as_ref(), seen) {
        assert!(std::time::Instant::now() < deadline, "{what}: timed out");
        let Some(c) = ours.as_mut() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
            Ok(Ok(Message::Records(rs))) => {
                let ends: BTreeMap<PartitionKey, i64> = rs
                    .iter()
                    .map(|r| (r.partition_key(), r.next_offset()))
                    .collect();
                c.commit(ends).await.expect("commit inside the generation");
                seen.extend(rs);
            }
            Ok(Ok(_)) => {} // Assigned; Revoked is released by dropping it
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => {}
        }
    }
}

/// Who owns which partitions now: `None` until every member has an assignment.
fn owners(
    ours: Option<&Consumer>,
    others: &[Member],
    order: &[Who],
) -> Option<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    let mut others = others.iter();
    for who in order {
        let owns = match who {
            Who::Kinflux => {
                let mut ps: Vec<i32> = ours?.assignment().iter().map(|tp| tp.partition).collect();
                ps.sort_unstable();
                ps
            }
            Who::Other(_) => others.next()?.owns()?,
        };
        out.insert(format!("{who:?}"), owns);
    }
    Some(out)
}

/// Whether `owners` split the six partitions evenly.
fn balanced(owners: &BTreeMap<String, Vec<i32>>) -> bool {
    let mut all: Vec<i32> = owners.values().flatten().copied().collect();
    all.sort_unstable();
    all == (0..6).collect::<Vec<_>>() && owners.values().all(|ps| ps.len() * owners.len() == 6)
}

/// Three members on three clients share a six-partition group under `strategy`, joining in
/// `order` (the first leads, so its assignor runs over the others' subscriptions). Each
/// reads exactly its share and commits it; every client then reads the commits of the other
/// two; and we, alone at last, resume every partition right after the others' commits.
async fn three_clients_share_a_group(strategy: AssignmentStrategy, order: [Who; 3]) {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    if !Client::Librdkafka.available() || !Client::Java.available() {
        return;
    }
    init_tracing();
    let name = strategy.protocol_name();
    let topic = unique("three");
    let group = unique("g_three");
    create_topic(&brokers, &topic, 6).await;
    let mut cfg = config(&brokers, &group, &[&topic]);
    cfg.assignment_strategies = vec![strategy];

    let mut ours: Option<Consumer> = None;
    let mut others: Vec<Member> = Vec::new();
    let mut seen = Vec::new();
    let mut before_last: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut now = BTreeMap::new();
    for (joined, who) in order.iter().enumerate() {
        match who {
            Who::Kinflux => ours = Some(Consumer::connect(cfg.clone()).await.expect("connect")),
            Who::Other(client) => {
                others.push(Member::start(*client, &brokers, &group, &topic, name, 10));
            }
        }
        let members = &order[..=joined];
        before_last = std::mem::take(&mut now);
        let what = format!("{name}: {members:?} splitting the partitions");
        serve(
            &mut ours,
            &mut seen,
            Duration::from_secs(90),
            &what,
            |o, _| match owners(o, &others, members) {
                Some(owned) if balanced(&owned) => {
                    now = owned;
                    true
                }
                _ => false,
            },
        )
        .await;
    }
    match strategy {
        // Two consecutive partitions each.
        AssignmentStrategy::Range => {
            assert!(
                now.values().all(|ps| ps[1] == ps[0] + 1 && ps[0] % 2 == 0),
                "{now:?}"
            )
        }
        // Dealt out one by one: p and p + 3.
        AssignmentStrategy::RoundRobin => {
            assert!(now.values().all(|ps| ps[1] == ps[0] + 3), "{now:?}")
        }
        // Sticky: the two earlier members kept their partitions and gave one each.
        _ => {
            for (who, earlier) in &before_last {
                assert!(
                    now[who].iter().all(|p| earlier.contains(p)),
                    "{before_last:?} -> {now:?}"
                );
            }
        }
    }

    // Each reads exactly its share: five records of each of its two partitions.
    for p in 0..6 {
        produce_range(&brokers, &topic, p, 0, 5).await;
    }
    // Nobody leaves before everyone has read and committed: a member leaving rebalances
    // the group, and eager assignors then hand out partitions that are still being read.
    let what = format!("{name}: reading the shares");
    serve(
        &mut ours,
        &mut seen,
        Duration::from_secs(90),
        &what,
        |_, seen| seen.len() >= 10 && others.iter().all(Member::has_committed),
    )
    .await;
    let leaving: Vec<(Client, JoinHandle<Report>)> = others
        .drain(..)
        .map(|m| (m.client, tokio::spawn(m.finish())))
        .collect();
    let what = format!("{name}: the others leaving");
    serve(
        &mut ours,
        &mut seen,
        Duration::from_secs(60),
        &what,
        |_, _| leaving.iter().all(|(_, h)| h.is_finished()),
    )
    .await;
    let mut read: BTreeMap<String, BTreeMap<i32, Vec<i64>>> = BTreeMap::new();
    for r in &seen {
        let by = read.entry(format!("{:?}", Who::Kinflux)).or_default();
        by.entry(r.partition).or_default().push(r.offset);
    }
    for (client, handle) in leaving {
        let report = handle.await.expect("member task");
        read.insert(format!("{:?}", Who::Other(client)), report.consumed);
    }
    for (who, by_partition) in &read {
        let partitions: Vec<i32> = by_partition.keys().copied().collect();
        assert_eq!(partitions, now[who], "{name}: {who} read {read:?}");
        assert!(
            by_partition.values().all(|o| *o == vec![0, 1, 2, 3, 4]),
            "{name}: {who} read {by_partition:?}"
        );
    }

    // Every client reads the commits of the other two.
    let all: Vec<PartitionKey> = (0..6).map(|p| PartitionKey::new(&*topic, p)).collect();
    let ours_view = ours
        .as_ref()
        .expect("our member")
        .committed(&all)
        .await
        .expect("committed");
    assert!(
        ours_view.values().all(|c| *c == Some(5)),
        "{name}: kinflux read {ours_view:?}"
    );
    let (rd, java) = tokio::join!(
        committed(Client::Librdkafka, &brokers, &group, &topic, 6),
        committed(Client::Java, &brokers, &group, &topic, 6)
    );
    for (client, view) in [("librdkafka", rd), ("Java", java)] {
        assert!(
            view.values().all(|c| *c == 5),
            "{name}: {client} read {view:?}"
        );
        assert_eq!(view.len(), 6, "{name}: {client} read {view:?}");
    }

    // Alone now, we resume the others' partitions right after their commits.
    for p in 0..6 {
        produce_range(&brokers, &topic, p, 5, 1).await;
    }
    seen.clear();
    let what = format!("{name}: taking over");
    serve(
        &mut ours,
        &mut seen,
        Duration::from_secs(60),
        &what,
        |o, seen| o.is_some_and(|c| c.assignment().len() == 6) && seen.len() >= 6,
    )
    .await;
    let mut resumed: Vec<(i32, i64)> = seen.iter().map(|r| (r.partition, r.offset)).collect();
    resumed.sort_unstable();
    assert_eq!(
        resumed,
        (0..6).map(|p| (p, 5)).collect::<Vec<_>>(),
        "{name}"
    );
    ours.take()
        .expect("our member")
        .close()
        .await
        .expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_leads_librdkafka_and_kinflux_under_range() {
    let order = [
        Who::Other(Client::Java),
        Who::Other(Client::Librdkafka),
        Who::Kinflux,
    ];
    three_clients_share_a_group(AssignmentStrategy::Range, order).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_leads_java_and_kinflux_under_roundrobin() {
    let order = [
        Who::Other(Client::Librdkafka),
        Who::Kinflux,
        Who::Other(Client::Java),
    ];
    three_clients_share_a_group(AssignmentStrategy::RoundRobin, order).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinflux_leads_java_and_librdkafka_under_cooperative_sticky() {
    let order = [
        Who::Kinflux,
        Who::Other(Client::Java),
        Who::Other(Client::Librdkafka),
    ];
    three_clients_share_a_group(AssignmentStrategy::CooperativeSticky, order).await;
}
