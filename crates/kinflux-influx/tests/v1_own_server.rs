//! Against InfluxDB 1.6.7 servers each test starts itself: with authentication, with a
//! small body limit, and one that is stopped mid-write.

use std::time::Duration;

use kinflux_influx::{LineBatch, WriteError, WriteOutcome, Writer, WriterConfig};
use kinflux_testkit::influx::{count, exec, query, query_as, rows};
use kinflux_testkit::process::Influxd;
use kinflux_testkit::unique;

#[tokio::test]
async fn wrong_password_is_a_permanent_auth_error_and_the_right_one_writes() {
    let Some(server) = Influxd::start("auth-enabled = true") else {
        return;
    };
    let url = server.url();
    // Allowed without credentials while no user exists.
    exec(
        &url,
        "CREATE USER admin WITH PASSWORD 'right-pa55' WITH ALL PRIVILEGES",
    );

    let mut wrong = WriterConfig::v1(&url, "secured").with_credentials("admin", "wrong-pa55");
    wrong.create_database = true;
    let wrong = Writer::new(wrong).unwrap();
    let err = wrong
        .write(LineBatch::from_lines(["cpu v=1 1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WriteError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!err.to_string().contains("wrong-pa55"));
    assert_eq!(
        wrong.stats().snapshot().requests,
        1,
        "auth errors are not retried"
    );

    let mut right = WriterConfig::v1(&url, "secured").with_credentials("admin", "right-pa55");
    right.create_database = true;
    let right = Writer::new(right).unwrap();
    let outcome = right
        .write(LineBatch::from_lines(["cpu v=1 1", "cpu v=2 2"]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Written { lines: 2 });
    let answer = query_as(
        &url,
        "secured",
        "SELECT count(v) FROM cpu",
        "admin",
        "right-pa55",
    );
    assert_eq!(rows(&answer)[0][1].as_u64(), Some(2));
}

#[tokio::test]
async fn server_413_halves_the_batch_until_every_point_lands() {
    let Some(server) = Influxd::start("max-body-size = 2000") else {
        return;
    };
    let url = server.url();
    let db = unique("kinflux_413");
    let mut config = WriterConfig::v1(&url, &db);
    // Uncompressed, and no client-side limit: only the server's limit applies.
    config.gzip_level = None;
    config.max_body_bytes = usize::MAX;
    config.retry.max_attempts = Some(3);
    let writer = Writer::new(config).unwrap();
    writer.create_database().await.unwrap();
    let lines: Vec<String> = (0..600)
        .map(|i| format!("m,host=h{} v={i}i {}", i % 5, 1_000 + i))
        .collect();
    let batch = LineBatch::from_lines(&lines);
    assert!(batch.byte_len() > 4 * 2000);
    let outcome = writer.write(batch).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Written { lines: 600 });
    assert!(writer.stats().snapshot().requests > 4);
    assert_eq!(count(&url, &db, "m", "v"), 600);

    // A single line over the limit cannot be split: it is refused, the others land.
    let huge = format!("m,host=big s=\"{}\" 1", "x".repeat(3000));
    let outcome = writer
        .write(LineBatch::from_lines([
            "m v=1i 2",
            huge.as_str(),
            "m v=3i 3",
        ]))
        .await
        .unwrap();
    let indexes: Vec<usize> = outcome.rejected().iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![1]);
    assert!(
        outcome.rejected()[0]
            .reason
            .contains("larger than the server accepts")
    );
}

#[tokio::test]
async fn writes_survive_an_outage_without_loss_or_duplicates() {
    let Some(mut server) = Influxd::start("") else {
        return;
    };
    let url = server.url();
    let db = unique("kinflux_outage");
    let mut config = WriterConfig::v1(&url, &db);
    config.retry.initial_backoff = Duration::from_millis(20);
    config.retry.max_backoff = Duration::from_millis(200);
    config.request_timeout = Duration::from_secs(5);
    let writer = Writer::new(config).unwrap();
    writer.create_database().await.unwrap();

    let batches = 40;
    let per_batch = 250;
    let feeder = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for b in 0..batches {
                let lines: Vec<String> = (0..per_batch)
                    .map(|i| {
                        let n = b * per_batch + i;
                        format!("m,src=s{} v={n}i {n}", n % 3)
                    })
                    .collect();
                let outcome = writer.write(LineBatch::from_lines(&lines)).await;
                assert_eq!(outcome.unwrap(), WriteOutcome::Written { lines: per_batch });
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !feeder.is_finished(),
        "the writes should be waiting for the server"
    );
    server.resume();
    tokio::time::timeout(Duration::from_secs(60), feeder)
        .await
        .expect("writes finish once the server is back")
        .unwrap();

    let total = (batches * per_batch) as u64;
    assert_eq!(count(&url, &db, "m", "v"), total);
    let sum = query(&url, &db, "SELECT sum(v) FROM m");
    assert_eq!(rows(&sum)[0][1].as_u64(), Some(total * (total - 1) / 2));
    let stats = writer.stats().snapshot();
    assert!(stats.retries_connection > 0, "{stats:?}");
    assert_eq!(stats.lines_written, total);
}

#[tokio::test]
async fn create_database_waits_for_a_server_that_is_down_at_first() {
    let Some(mut server) = Influxd::start("") else {
        return;
    };
    let url = server.url();
    let db = unique("kinflux_late");
    server.kill();
    let mut config = WriterConfig::v1(&url, &db);
    config.retry.initial_backoff = Duration::from_millis(20);
    config.retry.max_backoff = Duration::from_millis(200);
    let writer = Writer::new(config).unwrap();
    let creating = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.create_database().await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!creating.is_finished(), "it should wait for the server");
    server.resume();
    tokio::time::timeout(Duration::from_secs(30), creating)
        .await
        .expect("created once the server is back")
        .unwrap()
        .unwrap();
    assert!(writer.stats().snapshot().retries_connection > 0);
    let answer = query(&url, &db, "SHOW DATABASES");
    let names: Vec<String> = rows(&answer)
        .iter()
        .filter_map(|r| r[0].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&db), "{names:?}");

    // A bounded policy still gives up.
    server.kill();
    let mut config = WriterConfig::v1(&url, &db);
    config.retry.initial_backoff = Duration::from_millis(10);
    config.retry.max_attempts = Some(3);
    let err = Writer::new(config)
        .unwrap()
        .create_database()
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::GaveUp { .. }), "{err:?}");
}
