//! The retry log of an InfluxDB outage met by several writes at once, against a scripted
//! server. Alone in its test binary: `tracing` caches per call site whether anyone
//! listens, and tests on other threads that log through the same call sites without a
//! subscriber can make that cache drop the events this test captures.

use std::time::Duration;

use kinflux_influx::{LineBatch, Writer, WriterConfig};
use kinflux_testkit::http::{Reply, ScriptedServer};

fn three_lines() -> LineBatch {
    LineBatch::from_lines([
        "home,room=Sunroom temp=96 1735545600",
        "home,room=Sunroom temp=\"hi\" 1735549200",
        "home,room=Kitchen temp=70 1735549200",
    ])
}

#[tokio::test]
async fn an_outage_is_one_warn_for_all_writes_and_its_end_one_info() {
    // Four writes at once meet six 503s between them, then InfluxDB is back.
    let mut script = vec![Reply::new(503, ""); 6];
    script.push(Reply::no_content());
    let server = ScriptedServer::start(script).await;
    let mut config = WriterConfig::v1(&server.url, "db");
    config.retry.initial_backoff = Duration::from_millis(5);
    config.retry.max_backoff = Duration::from_millis(20);
    config.max_in_flight = 4;
    let writer = Writer::new(config).unwrap();
    let (_guard, logs) = kinflux_testkit::logs::capture();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(three_lines()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(writer.stats().snapshot().retries(), 6);
    let text = kinflux_testkit::logs::text(&logs);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains("InfluxDB write failed, retrying in")
            && lines[0].contains("server error (503)"),
        "{text}"
    );
    assert!(
        lines[1].contains("INFO") && lines[1].contains("InfluxDB write recovered after 6 retries"),
        "{text}"
    );
}
