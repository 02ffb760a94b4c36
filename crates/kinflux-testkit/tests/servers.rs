//! The kit against real servers: the shared ones from the environment, and the processes
//! it starts itself, killed and started again on the same data.

use std::time::Duration;

use kinflux_testkit::process::{Influxd, KafkaBroker};
use kinflux_testkit::{influx, kafka, require_or_skip, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_produced_to_the_shared_broker_read_back_with_keys_headers_and_times() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    let topic = unique("testkit");
    kafka::create_topic(&brokers, &topic, 2).await;
    assert_eq!(kafka::partitions(&brokers, &topic).await, vec![0, 1]);
    let mut with_header = kafka::keyed("k", "v", 1_700_000_000_000);
    with_header.headers.insert("h".into(), b"x".to_vec());
    let offsets = kafka::produce(
        &brokers,
        &topic,
        1,
        vec![with_header, kafka::record("plain", 1_700_000_000_001)],
    )
    .await;
    assert_eq!(offsets, vec![0, 1]);
    // 3,000 values of 300 bytes: more than one request (2,000 records, 512 KiB).
    let values = (0..3_000)
        .map(|i| format!("{i:0300}").into_bytes())
        .collect();
    let offsets = kafka::produce_values(&brokers, &topic, 0, values, 1_600_000_000_000).await;
    assert_eq!(offsets, (0..3_000).collect::<Vec<i64>>());
    assert_eq!(kafka::watermarks(&brokers, &topic, 0).await, (0, 3_000));

    let all = kafka::read_all(&brokers, &topic, 0).await;
    assert_eq!(all.len(), 3_000);
    let last = &all[2_999].record;
    assert_eq!(last.key.as_deref(), Some(&b"k3000"[..]));
    assert_eq!(last.timestamp.timestamp_millis(), 1_600_000_003_000);
    let other = kafka::read_all(&brokers, &topic, 1).await;
    assert_eq!(other[0].record.headers["h"], b"x");
    assert_eq!(other[1].record.key, None);
    assert_eq!(other[1].record.value.as_deref(), Some(&b"plain"[..]));
}

#[test]
fn the_shared_influxdb_counts_what_was_written_and_drops_the_database() {
    let url = require_or_skip!("KINFLUX_INFLUX_URL");
    let db = unique("testkit");
    influx::create_database(&url, &db);
    let answer = influx::write(&url, &db, "s", b"m,t=a v=1i 1\nm,t=b v=2i 2\n");
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(influx::count(&url, &db, "m", "v"), 2);
    let rows = influx::rows(&influx::query(&url, &db, "SELECT v, t FROM m"));
    assert_eq!(rows[1][0], serde_json::json!(2_000_000_000));
    assert_eq!(rows[1][2], serde_json::json!("b"));
    influx::drop_database(&url, &db);
    assert_eq!(influx::count(&url, &db, "m", "v"), 0, "no such database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_kafka_broker_keeps_its_records_across_a_sigkill() {
    let Some(mut broker) = KafkaBroker::start() else {
        return;
    };
    let brokers = broker.brokers();
    let topic = unique("testkit_restart");
    kafka::create_topic(&brokers, &topic, 1).await;
    let values = (0..100).map(|i| format!("v{i}").into_bytes()).collect();
    kafka::produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;
    broker.kill();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", broker.port())).is_err(),
        "the broker still listens after SIGKILL"
    );
    broker.resume();
    assert_eq!(kafka::watermarks(&brokers, &topic, 0).await, (0, 100));
    let all = kafka::read_all(&brokers, &topic, 0).await;
    assert_eq!(all[99].record.value.as_deref(), Some(&b"v99"[..]));
    assert!(broker.log().contains("Kafka Server started"));
}

#[test]
fn an_own_influxd_keeps_its_points_across_a_sigkill() {
    let Some(mut server) = Influxd::start("max-body-size = 1000") else {
        return;
    };
    let url = server.url();
    influx::create_database(&url, "kept");
    let answer = influx::write(&url, "kept", "ns", b"m v=1 1\n");
    assert_eq!(answer.status, 204, "{}", answer.body);
    // The extra [http] setting applies: a body over 1,000 bytes is refused.
    let big = format!("m s=\"{}\" 2\n", "x".repeat(2_000));
    assert_eq!(
        influx::write(&url, "kept", "ns", big.as_bytes()).status,
        413
    );
    server.kill();
    assert!(kinflux_testkit::http::get(&format!("{url}/ping")).is_err());
    std::thread::sleep(Duration::from_millis(100));
    server.resume();
    assert_eq!(influx::count(&url, "kept", "m", "v"), 1);
}
