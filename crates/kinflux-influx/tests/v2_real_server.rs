//! Against the real InfluxDB OSS 2.7 from `KINFLUX_INFLUX2_URL` (`_TOKEN`, `_ORG`): the
//! v2 write API with a token, org and bucket, and what 2.7 answers (recorded in
//! docs/server-answers.md) read back into [`WriteOutcome`]s.

use std::time::Duration;

use kinflux_influx::{LineBatch, Secret, WriteError, WriteOutcome, Writer, WriterConfig};
use kinflux_series::Precision;
use kinflux_testkit::influx2::Influx2;
use kinflux_testkit::unique;

/// A writer to a new bucket `bucket` (created through `create_database`, which is what
/// `influx.create_bucket` turns on).
async fn writer_for(
    server: &Influx2,
    bucket: &str,
    tweak: impl FnOnce(&mut WriterConfig),
) -> Writer {
    let mut config = WriterConfig::v2(
        &server.url,
        &server.org,
        bucket,
        Secret::new(server.token.clone()),
    );
    config.retry.max_attempts = Some(3);
    config.create_database = true;
    tweak(&mut config);
    let writer = Writer::new(config).unwrap();
    writer.create_database().await.unwrap();
    writer
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[tokio::test]
async fn ping_reports_version_2() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let writer = Writer::new(WriterConfig::v2(
        &server.url,
        &server.org,
        "unused",
        Secret::new(server.token.clone()),
    ))
    .unwrap();
    let ping = writer.ping().await.unwrap();
    assert!(ping.version.is_some_and(|v| v.starts_with("v2.")));
}

#[tokio::test]
async fn every_precision_with_and_without_gzip_reads_back_to_the_nanosecond() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    for gzip in [Some(1), None] {
        for (precision, t, time) in [
            (
                Precision::Seconds,
                1_700_000_000_i64,
                "2023-11-14T22:13:20Z",
            ),
            (
                Precision::Milliseconds,
                1_700_000_000_123,
                "2023-11-14T22:13:20.123Z",
            ),
            (
                Precision::Microseconds,
                1_700_000_000_123_456,
                "2023-11-14T22:13:20.123456Z",
            ),
            (
                Precision::Nanoseconds,
                1_700_000_000_123_456_789,
                "2023-11-14T22:13:20.123456789Z",
            ),
        ] {
            let bucket = unique("kinflux_v2_types");
            let writer = writer_for(&server, &bucket, |c| {
                c.gzip_level = gzip;
                c.precision = precision;
            })
            .await;
            let batch = LineBatch::from_lines([
                format!(r#"m,host=a f=1.5,i=-7i,s="a \"q\", b",b=true {t}"#),
                format!("m,host=b f=2 {}", t + 1),
            ]);
            let outcome = writer.write(batch).await.unwrap();
            assert_eq!(outcome, WriteOutcome::Written { lines: 2 });
            let f = server.values(&bucket, "m", "f");
            assert_eq!(f.len(), 2, "{gzip:?} {precision:?}: {f:?}");
            assert_eq!(
                f[0],
                (time.to_owned(), "1.5".to_owned()),
                "{gzip:?} {precision:?}"
            );
            assert_eq!(
                server.values(&bucket, "m", "i"),
                [(time.to_owned(), "-7".to_owned())]
            );
            assert_eq!(
                server.values(&bucket, "m", "b"),
                [(time.to_owned(), "true".to_owned())]
            );
            server.delete_bucket(&bucket);
        }
    }
}

#[tokio::test]
async fn a_bad_line_refuses_the_body_and_the_writer_sends_the_rest_again() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let bucket = unique("kinflux_v2_bad");
    let writer = writer_for(&server, &bucket, |c| c.precision = Precision::Seconds).await;
    // 2.7: 400, nothing of the body stored; the writer names the bad lines and sends the
    // good ones again.
    let batch = LineBatch::from_lines([
        "gbg v=1 1700000001",
        "gbg v= 1700000002",
        "gbg v=3 1700000003",
        "gbg,t=x v=\"unterminated 1700000004",
    ]);
    let outcome = writer.write(batch).await.unwrap();
    let indexes: Vec<usize> = outcome.rejected().iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![1, 3], "{outcome:?}");
    assert_eq!(outcome.rejected()[0].reason, "missing field value");
    assert_eq!(outcome.written(), 2, "{outcome:?}");
    assert_eq!(server.count(&bucket, "gbg", "v"), 2);
    server.delete_bucket(&bucket);
}

#[tokio::test]
async fn a_type_conflict_is_a_422_that_stores_the_rest() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let bucket = unique("kinflux_v2_conflict");
    let writer = writer_for(&server, &bucket, |c| c.precision = Precision::Seconds).await;
    let first = writer
        .write(LineBatch::from_lines(["tc v=1i 1700000001"]))
        .await
        .unwrap();
    assert_eq!(first, WriteOutcome::Written { lines: 1 });
    let batch = LineBatch::from_lines([
        "tc v=2i 1700000003",
        r#"tc v="s" 1700000004"#,
        "tc v=5i 1700000005",
        "tc v=6.5 1700000006",
    ]);
    let outcome = writer.write(batch).await.unwrap();
    let indexes: Vec<usize> = outcome.rejected().iter().map(|r| r.index).collect();
    assert_eq!(indexes, vec![1, 3], "{outcome:?}");
    assert!(
        outcome.rejected()[0]
            .reason
            .starts_with("field type conflict"),
        "{outcome:?}"
    );
    assert_eq!(outcome.written(), 2, "{outcome:?}");
    assert_eq!(server.count(&bucket, "tc", "v"), 3);
    server.delete_bucket(&bucket);
}

#[tokio::test]
async fn points_beyond_the_bucket_retention_are_counted_not_written() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let bucket = unique("kinflux_v2_retention");
    let writer = writer_for(&server, &bucket, |c| {
        c.bucket_retention = Some(Duration::from_secs(3600));
    })
    .await;
    let rules = &server.bucket(&bucket).expect("the bucket was created")["retentionRules"];
    assert_eq!(rules[0]["everySeconds"], 3600, "{rules}");
    let now = now_ns();
    let batch = LineBatch::from_lines([
        format!("old v=1 {now}"),
        "old v=2 1000000000".to_owned(),
        format!("old v=3 {}", now - 1),
    ]);
    let outcome = writer.write(batch).await.unwrap();
    let WriteOutcome::Partial(partial) = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(partial.rejected.is_empty(), "{outcome:?}");
    let drop = partial.unattributed.as_ref().unwrap();
    assert_eq!(drop.count, 1);
    assert!(
        drop.reason
            .starts_with("dropped 1 points outside retention policy of duration 1h0m0s"),
        "{}",
        drop.reason
    );
    assert!(!drop.reason.contains(" for database: "), "{}", drop.reason);
    assert_eq!(outcome.written(), 2);
    assert_eq!(server.count(&bucket, "old", "v"), 2);
    server.delete_bucket(&bucket);
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_401() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let writer = Writer::new(WriterConfig::v2(
        &server.url,
        &server.org,
        "kinflux",
        Secret::new("wrong"),
    ))
    .unwrap();
    let err = writer
        .write(LineBatch::from_lines(["m v=1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WriteError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(!format!("{err:?} {err}").contains(&server.token));
}

#[tokio::test]
async fn a_missing_bucket_or_org_is_a_permanent_404() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let token = || Secret::new(server.token.clone());
    let missing = unique("kinflux_v2_missing");
    let writer = Writer::new(WriterConfig::v2(
        &server.url,
        &server.org,
        &missing,
        token(),
    ))
    .unwrap();
    let err = writer
        .write(LineBatch::from_lines(["m v=1"]))
        .await
        .unwrap_err();
    let WriteError::NotFound { message } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(message, &format!("bucket \"{missing}\" not found"));
    assert!(err.is_permanent());
    assert!(
        server.bucket(&missing).is_none(),
        "not created without create_bucket"
    );

    // Creating a bucket in an org that does not exist: the same permanent 404.
    let mut config = WriterConfig::v2(&server.url, "kinflux_no_such_org", &missing, token());
    config.create_database = true;
    let err = Writer::new(config)
        .unwrap()
        .write(LineBatch::from_lines(["m v=1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::NotFound { .. }), "{err:?}");
    assert!(server.bucket(&missing).is_none());
}

#[tokio::test]
async fn a_missing_bucket_is_created_on_the_first_write_with_its_retention() {
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let bucket = unique("kinflux_v2_create");
    let mut config = WriterConfig::v2(
        &server.url,
        &server.org,
        &bucket,
        Secret::new(server.token.clone()),
    );
    config.create_database = true;
    config.bucket_retention = Some(Duration::from_secs(30 * 86_400));
    let writer = Writer::new(config).unwrap();
    let now = now_ns();
    let outcome = writer
        .write(LineBatch::from_lines([format!("m v=1 {now}")]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Written { lines: 1 });
    let created = server.bucket(&bucket).expect("created by the write");
    assert_eq!(
        created["retentionRules"][0]["everySeconds"],
        30 * 86_400,
        "{created}"
    );
    assert_eq!(server.count(&bucket, "m", "v"), 1);
    // Idempotent: an existing bucket is kept as it is.
    writer.create_database().await.unwrap();
    assert_eq!(server.count(&bucket, "m", "v"), 1);
    // The org may be given by id, as the write API allows.
    let org_id = created["orgID"].as_str().unwrap().to_owned();
    let other = unique("kinflux_v2_by_id");
    let mut config = WriterConfig::v2(
        &server.url,
        &org_id,
        &other,
        Secret::new(server.token.clone()),
    );
    config.create_database = true;
    Writer::new(config)
        .unwrap()
        .create_database()
        .await
        .unwrap();
    let by_id = server
        .bucket(&other)
        .expect("created in the org given by id");
    // No retention asked: 2.7 stores an `expire` rule of 0 seconds, forever.
    assert_eq!(by_id["retentionRules"][0]["everySeconds"], 0, "{by_id}");
    server.delete_bucket(&bucket);
    server.delete_bucket(&other);
}
