//! The fetch path against a real broker: every codec as Java's producer and librdkafka
//! write it, and transactions under both isolation levels.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use kinflux_kafka::fetch::{
    Compression, FetchClient, FetchParams, FetchPosition, FetchedPartition, FetchedRecord,
    IsolationLevel, OffsetSpec,
};
use kinflux_kafka::{AutoOffsetReset, Consumer, ConsumerConfig, Message, PartitionKey};
use kinflux_testkit::{kafka, require_or_skip, unique};

/// What a producer script wrote.
#[derive(Debug, serde::Deserialize)]
struct Produced {
    committed: Vec<String>,
    aborted: Vec<String>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn python_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    kinflux_testkit::env::available(
        found,
        "no python3 with confluent-kafka (pip install confluent-kafka)",
    )
}

fn parse(out: std::process::Output, who: &str) -> Produced {
    assert!(
        out.status.success(),
        "{who} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{who} printed no report: {stdout}"));
    serde_json::from_str(line).expect("producer report")
}

fn rdkafka(mode: &str, brokers: &str, topic: &str, codec: &str, count: usize) -> Produced {
    let out = Command::new("python3")
        .arg(dir().join("python/rdkafka_produce.py"))
        .args([
            mode,
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--codec",
            codec,
        ])
        .args(["--count", &count.to_string()])
        .output()
        .expect("python3");
    parse(out, "librdkafka producer")
}

fn java(home: &str, mode: &str, brokers: &str, topic: &str, codec: &str, count: usize) -> Produced {
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{home}/libs/*"))
        .arg(dir().join("java/KinfluxProducer.java"))
        .args([mode, brokers, topic, codec, &count.to_string()])
        .output()
        .expect("java");
    parse(out, "Java producer")
}

fn params(level: IsolationLevel, partition_max_bytes: i32) -> FetchParams {
    let mut p = FetchParams::default();
    p.decode.isolation_level = level;
    p.max_wait = Duration::from_millis(100);
    p.partition_max_bytes = partition_max_bytes;
    p
}

/// Fetches partition 0 of `topic` from `from` until the end for `level`. Returns the
/// records and the last answer.
async fn fetch_to_end(
    client: &FetchClient,
    topic: &str,
    from: i64,
    params: &FetchParams,
) -> (Vec<FetchedRecord>, FetchedPartition, [u32; 5]) {
    let level = params.decode.isolation_level;
    let topic: Arc<str> = Arc::from(topic);
    let mut records = Vec::new();
    let mut codecs = [0; 5];
    let mut offset = from;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end in sight at offset {offset}"
        );
        let wanted = [FetchPosition {
            topic: Arc::clone(&topic),
            partition: 0,
            offset,
        }];
        let mut answer = client.fetch(&wanted, params).await.expect("fetch");
        assert_eq!(answer.len(), 1);
        let p = answer.remove(0);
        if p.error_code != 0 {
            // A fresh topic's leader may still be on its way.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if let Some(e) = &p.decoded.error {
            panic!("decode error at {offset}: {e}");
        }
        for (n, m) in codecs.iter_mut().zip(p.decoded.batches_by_codec) {
            *n += m;
        }
        records.extend(p.decoded.records.iter().cloned());
        assert!(p.decoded.next_offset >= offset);
        offset = p.decoded.next_offset;
        if offset >= p.end_offset(level) {
            return (records, p, codecs);
        }
    }
}

fn values(records: &[FetchedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

async fn client(brokers: &str) -> FetchClient {
    FetchClient::connect(&kafka::bootstrap(brokers), "kinflux-fetch-test", None, None)
        .await
        .expect("connect")
}

#[tokio::test]
async fn every_codec_from_java_and_librdkafka_reads_back_as_produced() {
    let (brokers, home) = require_or_skip!("KINFLUX_KAFKA_BROKERS", "KINFLUX_KAFKA_HOME");
    if !python_available() {
        return;
    }
    let client = client(&brokers).await;
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique(&format!("fetch-{codec}"));
        kafka::create_topic(&brokers, &topic, 1).await;
        let from_rdkafka = rdkafka("plain", &brokers, &topic, codec.name(), 400);
        let from_java = java(&home, "plain", &brokers, &topic, codec.name(), 400);
        let expected: Vec<String> = from_rdkafka
            .committed
            .iter()
            .chain(&from_java.committed)
            .cloned()
            .collect();

        for max_bytes in [50 << 20, 8 << 10] {
            let params = params(IsolationLevel::ReadCommitted, max_bytes);
            let (records, last, codecs) = fetch_to_end(&client, &topic, 0, &params).await;
            assert_eq!(values(&records), expected, "{codec}, max bytes {max_bytes}");
            assert_eq!(last.decoded.next_offset, 800);
            assert_eq!(last.high_watermark, 800);
            let compressed = codecs[usize::try_from(codec.id()).unwrap()];
            assert!(
                compressed > 0,
                "{codec}: no batch used the codec: {codecs:?}"
            );
            if codec != Compression::None {
                assert_eq!(codecs[0], 0, "{codec}: uncompressed batches: {codecs:?}");
            }
            for (n, r) in records.iter().enumerate() {
                assert_eq!(r.offset, i64::try_from(n).unwrap());
                let i = n % 400;
                assert_eq!(
                    r.key.as_deref(),
                    Some(format!("k{i}").as_bytes()),
                    "{codec}"
                );
                assert_eq!(r.headers.len(), 1, "{codec}");
                assert_eq!(&r.headers[0].key[..], b"i");
                assert_eq!(
                    r.headers[0].value.as_deref(),
                    Some(i.to_string().as_bytes())
                );
                assert!(r.timestamp_ms > 1_600_000_000_000);
            }
        }
        eprintln!("{codec}: 800 records from librdkafka and Java read back");
    }
}

/// Transactions from `produce` read back under both isolation levels.
async fn check_transactions(brokers: &str, topic: &str, produced: &Produced) {
    let client = client(brokers).await;
    let committed_params = params(IsolationLevel::ReadCommitted, 50 << 20);
    let (records, last, _) = fetch_to_end(&client, topic, 0, &committed_params).await;
    assert_eq!(values(&records), produced.committed);
    // The log ends in a commit marker: the position is past it, and there is no lag.
    assert_eq!(last.decoded.next_offset, last.high_watermark);
    assert_eq!(last.last_stable_offset, last.high_watermark);
    let topic_arc: Arc<str> = Arc::from(topic);
    let lso = client
        .list_offset(
            &topic_arc,
            0,
            OffsetSpec::Latest,
            IsolationLevel::ReadCommitted,
        )
        .await
        .expect("ListOffsets");
    assert_eq!(lso, Some(last.decoded.next_offset));

    let (records, last, _) = fetch_to_end(
        &client,
        topic,
        0,
        &params(IsolationLevel::ReadUncommitted, 50 << 20),
    )
    .await;
    let mut all = values(&records);
    let mut expected: Vec<String> = produced
        .committed
        .iter()
        .chain(&produced.aborted)
        .cloned()
        .collect();
    all.sort();
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(last.decoded.next_offset, last.high_watermark);

    // From every offset, read_committed hands out the committed records at or after it.
    let (everything, ..) = fetch_to_end(&client, topic, 0, &committed_params).await;
    for from in (0..last.high_watermark).step_by(7) {
        let (tail, end, _) = fetch_to_end(&client, topic, from, &committed_params).await;
        let want: Vec<_> = everything
            .iter()
            .filter(|r| r.offset >= from)
            .cloned()
            .collect();
        assert_eq!(tail, want, "from {from}");
        assert_eq!(end.decoded.next_offset, last.high_watermark);
    }
}

#[tokio::test]
async fn read_committed_skips_librdkafka_aborted_transactions_and_reaches_the_end() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    if !python_available() {
        return;
    }
    let topic = unique("fetch-txn-rdkafka");
    kafka::create_topic(&brokers, &topic, 1).await;
    let produced = rdkafka("transactions", &brokers, &topic, "lz4", 6);
    assert!(!produced.aborted.is_empty());
    check_transactions(&brokers, &topic, &produced).await;
}

#[tokio::test]
async fn read_committed_skips_java_aborted_transactions_and_reaches_the_end() {
    let (brokers, home) = require_or_skip!("KINFLUX_KAFKA_BROKERS", "KINFLUX_KAFKA_HOME");
    let topic = unique("fetch-txn-java");
    kafka::create_topic(&brokers, &topic, 1).await;
    let produced = java(&home, "transactions", &brokers, &topic, "zstd", 6);
    check_transactions(&brokers, &topic, &produced).await;
}

#[tokio::test]
async fn an_open_transaction_holds_read_committed_at_the_last_stable_offset() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    if !python_available() {
        return;
    }
    let topic = unique("fetch-open-txn");
    kafka::create_topic(&brokers, &topic, 1).await;
    let before = rdkafka("plain", &brokers, &topic, "none", 10);
    let mut open = Command::new("python3")
        .arg(dir().join("python/rdkafka_produce.py"))
        .args([
            "open",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--count",
            "5",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(open.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("open transaction report");
    let pending: Produced = serde_json::from_str(&line).expect("report");

    let client = client(&brokers).await;
    let committed = params(IsolationLevel::ReadCommitted, 50 << 20);
    let (records, last, _) = fetch_to_end(&client, &topic, 0, &committed).await;
    assert_eq!(values(&records), before.committed);
    assert_eq!(
        last.last_stable_offset, 10,
        "the open transaction starts at 10"
    );
    assert_eq!(last.decoded.next_offset, 10);
    assert_eq!(last.high_watermark, 15);
    let (records, ..) = fetch_to_end(
        &client,
        &topic,
        0,
        &params(IsolationLevel::ReadUncommitted, 50 << 20),
    )
    .await;
    let mut expected = before.committed.clone();
    expected.extend(pending.aborted);
    assert_eq!(values(&records), expected);

    // Abort: the marker at 15 resolves everything; read_committed moves past it all.
    writeln!(open.stdin.as_mut().expect("stdin")).expect("signal abort");
    assert!(open.wait().expect("python3").success());
    let (records, last, _) = fetch_to_end(&client, &topic, 10, &committed).await;
    assert!(
        records.is_empty(),
        "aborted records came through: {records:?}"
    );
    assert_eq!(last.high_watermark, 16);
    assert_eq!(last.decoded.next_offset, 16);
}

#[tokio::test]
async fn offsets_out_of_range_unknown_topics_and_list_offsets() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    let topic = unique("fetch-ends");
    kafka::create_topic(&brokers, &topic, 2).await;
    let records = (0..5)
        .map(|i| kafka::record(format!("{topic}-1-{i}"), 1_700_000_000_000 + i))
        .collect();
    let produced = kafka::produce(&brokers, &topic, 1, records).await;
    assert_eq!(produced, [0, 1, 2, 3, 4]);
    let client = client(&brokers).await;
    let t: Arc<str> = Arc::from(topic.as_str());
    let level = IsolationLevel::ReadCommitted;
    assert_eq!(
        client
            .list_offset(&t, 1, OffsetSpec::Earliest, level)
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        client
            .list_offset(&t, 1, OffsetSpec::Latest, level)
            .await
            .unwrap(),
        Some(5)
    );
    // Record i is stamped 1_700_000_000_000 + i.
    assert_eq!(
        client
            .list_offset(&t, 1, OffsetSpec::Timestamp(1_700_000_000_003), level)
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(
        client
            .list_offset(&t, 1, OffsetSpec::Timestamp(1_900_000_000_000), level)
            .await
            .unwrap(),
        None
    );

    let at = |topic: &Arc<str>, partition, offset| FetchPosition {
        topic: Arc::clone(topic),
        partition,
        offset,
    };
    let p = params(level, 1 << 20);
    // UNKNOWN_LEADER_EPOCH (75) right after the topic is made: the broker has not yet
    // applied the metadata the client's leader epoch came from. Retriable, as the consumer
    // treats it; CI hit it once.
    let mut answers = Vec::new();
    for attempt in 0..50 {
        answers = client
            .fetch(&[at(&t, 0, 0), at(&t, 1, 2)], &p)
            .await
            .unwrap();
        if answers.iter().all(|a| a.error_code != 75) || attempt == 49 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    answers.extend(client.fetch(&[at(&t, 1, 99)], &p).await.unwrap());
    assert_eq!(answers.len(), 3);
    let find = |partition, offset| {
        answers
            .iter()
            .find(|a| a.partition == partition && a.fetch_offset == offset)
            .expect("answered")
    };
    let empty = find(0, 0);
    assert_eq!((empty.error_code, empty.high_watermark), (0, 0));
    assert!(empty.decoded.records.is_empty());
    let some = find(1, 2);
    assert_eq!(some.error_code, 0);
    assert_eq!(
        some.decoded
            .records
            .iter()
            .map(|r| r.offset)
            .collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(
        some.decoded.records[0].value.as_deref(),
        Some(format!("{topic}-1-2").as_bytes())
    );
    assert_eq!(find(1, 99).error_code, 1, "OFFSET_OUT_OF_RANGE");

    let missing: Arc<str> = Arc::from(unique("fetch-missing").as_str());
    let answers = client.fetch(&[at(&missing, 0, 0)], &p).await.unwrap();
    assert_eq!(answers[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

/// The group consumer under both isolation levels on interleaved transactions: what it
/// hands out, and that its lag reaches 0 on a log that ends in a commit marker.
#[tokio::test]
async fn the_consumer_reads_committed_transactions_and_ends_with_no_lag() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    if !python_available() {
        return;
    }
    let topic = unique("fetch-consumer-txn");
    kafka::create_topic(&brokers, &topic, 1).await;
    let produced = rdkafka("transactions", &brokers, &topic, "zstd", 4);
    for level in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::ReadUncommitted,
    ] {
        let mut config = ConsumerConfig::new(
            kafka::bootstrap(&brokers),
            unique("fetch-consumer-group"),
            [topic.as_str()],
        );
        config.auto_offset_reset = AutoOffsetReset::Earliest;
        config.fetch_max_wait = Duration::from_millis(100);
        config.isolation_level = level;
        let mut consumer = Consumer::connect(config).await.expect("connect");
        let mut got = Vec::new();
        let mut advanced = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        let partition = PartitionKey::new(topic.as_str(), 0);
        loop {
            let lag = consumer.lag();
            // Done when nothing is left and the final commit marker was announced.
            let done = lag.first().is_some_and(|l| {
                l.lag == Some(0) && l.position > Some(0) && advanced == l.high_watermark
            });
            if done {
                let l = &lag[0];
                assert_eq!(l.position, l.high_watermark, "{level:?}: {l:?}");
                assert_eq!(l.last_stable_offset, l.high_watermark);
                break;
            }
            assert!(Instant::now() < deadline, "{level:?}: lag stays {lag:?}");
            let left = deadline - Instant::now();
            match tokio::time::timeout(left.min(Duration::from_secs(1)), consumer.recv()).await {
                Ok(Ok(Message::Records(rs))) => got.extend(rs),
                Ok(Ok(Message::Advanced {
                    partition: p,
                    next_offset,
                })) => {
                    assert_eq!(p, partition);
                    advanced = Some(next_offset);
                }
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => panic!("recv: {e}"),
            }
        }
        let values: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        let end = consumer.lag()[0].high_watermark;
        // The last commit marker is passed over, and said so.
        assert_eq!(advanced, end, "{level:?}");
        match level {
            IsolationLevel::ReadCommitted => assert_eq!(values, produced.committed),
            _ => {
                let mut all = values.clone();
                let mut expected: Vec<String> = produced
                    .committed
                    .iter()
                    .chain(&produced.aborted)
                    .cloned()
                    .collect();
                all.sort();
                expected.sort();
                assert_eq!(all, expected);
            }
        }
        // The end the caller waits for (until_caught_up) is the last stable offset.
        let (_, reachable) = consumer.watermarks(&partition).await.expect("ListOffsets");
        assert_eq!(Some(reachable), end);
        consumer.close().await.expect("close");
    }
}
