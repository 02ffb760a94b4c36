//! Against the real InfluxDB 1.x servers: Debian's 1.6.7 from `KINFLUX_INFLUX_URL` and the
//! current 1.13.2 from `KINFLUX_INFLUX1X_URL`; every test runs on each configured one
//! ([`kinflux_testkit::influx::v1_servers`]).

use std::time::Duration;

use kinflux_influx::{LineBatch, WriteError, WriteOutcome, Writer, WriterConfig};
use kinflux_series::Precision;
use kinflux_testkit::influx::{count, drop_database, exec, query, rows, v1_servers};
use kinflux_testkit::unique;

async fn writer_for(url: &str, db: &str, tweak: impl FnOnce(&mut WriterConfig)) -> Writer {
    let mut config = WriterConfig::v1(url, db);
    config.retry.max_attempts = Some(5);
    tweak(&mut config);
    let writer = Writer::new(config).unwrap();
    writer.create_database().await.unwrap();
    writer
}

#[tokio::test]
async fn ping_reports_the_server_version() {
    for url in v1_servers() {
        let writer = Writer::new(WriterConfig::v1(&url, "unused")).unwrap();
        let ping = writer.ping().await.unwrap();
        assert!(ping.version.is_some_and(|v| v.starts_with("1.")));
    }
}

#[tokio::test]
async fn written_values_and_types_read_back_in_every_precision_with_and_without_gzip() {
    for url in v1_servers() {
        for gzip in [Some(1), Some(9), None] {
            for (precision, unit) in [
                (Precision::Nanoseconds, 1_i64),
                (Precision::Microseconds, 1_000),
                (Precision::Milliseconds, 1_000_000),
                (Precision::Seconds, 1_000_000_000),
            ] {
                let db = unique("kinflux_types");
                let writer = writer_for(&url, &db, |c| {
                    c.gzip_level = gzip;
                    c.precision = precision;
                })
                .await;
                let t = 1_700_000_000_i64 * (1_000_000_000 / unit);
                let batch = LineBatch::from_lines([
                    format!(r#"m,host=a f=1.5,i=-7i,s="a \"q\", b",b=true {t}"#),
                    format!("m,host=b f=2,i=9223372036854775807i,s=\"\",b=F {}", t + 1),
                ]);
                let outcome = writer.write(batch).await.unwrap();
                assert_eq!(outcome, WriteOutcome::Written { lines: 2 });

                let answer = query(&url, &db, "SELECT b, f, host, i, s FROM m");
                let got = rows(&answer);
                assert_eq!(got.len(), 2, "{answer} (gzip {gzip:?}, {precision:?})");
                let t_ns = t * unit;
                assert_eq!(got[0][0].as_i64(), Some(t_ns));
                assert_eq!(got[0][1], serde_json::json!(true));
                assert_eq!(got[0][2].as_f64(), Some(1.5));
                assert_eq!(got[0][3], serde_json::json!("a"));
                assert_eq!(got[0][4].as_i64(), Some(-7));
                assert_eq!(got[0][5], serde_json::json!("a \"q\", b"));
                assert_eq!(got[1][0].as_i64(), Some(t_ns + unit));
                assert_eq!(got[1][1], serde_json::json!(false));
                assert_eq!(got[1][4].as_i64(), Some(i64::MAX));
                assert_eq!(got[1][5], serde_json::json!(""));

                let types = query(&url, &db, "SHOW FIELD KEYS FROM m");
                let kinds: Vec<(String, String)> = rows(&types)
                    .into_iter()
                    .map(|r| {
                        (
                            r[0].as_str().unwrap().to_owned(),
                            r[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                assert_eq!(
                    kinds,
                    [
                        ("b", "boolean"),
                        ("f", "float"),
                        ("i", "integer"),
                        ("s", "string")
                    ]
                    .map(|(k, t)| (k.to_owned(), t.to_owned()))
                );
                drop_database(&url, &db);
            }
        }
    }
}

#[tokio::test]
async fn mixed_good_and_bad_lines_store_the_good_and_name_the_bad() {
    for url in v1_servers() {
        let db = unique("kinflux_partial");
        let writer = writer_for(&url, &db, |_| {}).await;
        let batch = LineBatch::from_lines([
            "cpu value=1 1",
            "cpu value= 2",
            "cpu value=3 3",
            "cpu,host=a value=4 4",
            "bad line here",
            "cpu value=6 6",
        ]);
        let outcome = writer.write(batch).await.unwrap();
        let WriteOutcome::Partial(partial) = outcome else {
            panic!("{outcome:?}")
        };
        let named: Vec<(usize, &str)> = partial
            .rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            named,
            vec![(1, "missing field value"), (4, "invalid field format")]
        );
        assert_eq!(partial.unattributed, None);
        assert_eq!(partial.written(), 4);
        assert_eq!(count(&url, &db, "cpu", "value"), 4);
        let stats = writer.stats().snapshot();
        assert_eq!((stats.lines_written, stats.lines_rejected), (4, 2));
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn a_body_of_only_bad_lines_names_each_of_them() {
    for url in v1_servers() {
        let db = unique("kinflux_allbad");
        let writer = writer_for(&url, &db, |_| {}).await;
        let outcome = writer
            .write(LineBatch::from_lines(["garbage", "more garbage"]))
            .await
            .unwrap();
        let indexes: Vec<usize> = outcome.rejected().iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![0, 1]);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn field_type_conflicts_name_each_conflicting_line_and_hidden_parse_errors() {
    for url in v1_servers() {
        let db = unique("kinflux_conflict");
        let writer = writer_for(&url, &db, |_| {}).await;
        writer
            .write(LineBatch::from_lines(["cpu value=1 1", "mem used=1i 1"]))
            .await
            .unwrap();
        // InfluxDB 1.6.7 answers the first write of this batch with only
        // `partial write: field type conflict: input field "value" on measurement "cpu" is
        // type integer, already exists as type float dropped=3`: it names neither the lines
        // nor the `mem` conflict, and says nothing of the unparsable line.
        let batch = LineBatch::from_lines([
            "cpu value=2i 2",
            "cpu value=3 3",
            "this is not line protocol",
            r#"cpu,host=x value="s" 4"#,
            "mem used=2.5 2",
            "mem used=3i 3",
        ]);
        let outcome = writer.write(batch).await.unwrap();
        let WriteOutcome::Partial(partial) = outcome else {
            panic!("{outcome:?}")
        };
        let indexes: Vec<usize> = partial.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![0, 2, 3, 4], "{partial:#?}");
        assert!(partial.rejected[0].reason.contains("field type conflict"));
        assert!(
            partial.rejected[0]
                .reason
                .contains("already exists as type float")
        );
        assert!(
            partial.rejected[1].reason.contains("invalid field format"),
            "{partial:#?}"
        );
        assert!(
            partial.rejected[3]
                .reason
                .contains("on measurement \"mem\"")
        );
        assert_eq!(partial.unattributed, None);
        assert_eq!(count(&url, &db, "cpu", "value"), 2);
        assert_eq!(count(&url, &db, "mem", "used"), 2);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn unknown_database_is_a_permanent_not_found() {
    for url in v1_servers() {
        let mut config = WriterConfig::v1(&url, unique("kinflux_missing"));
        config.retry.max_elapsed = Some(Duration::from_secs(5));
        let writer = Writer::new(config).unwrap();
        let err = writer
            .write(LineBatch::from_lines(["cpu v=1 1"]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WriteError::NotFound { ref message } if message.contains("database not found")),
            "{err:?}"
        );
        assert!(err.is_permanent());
        assert_eq!(
            writer.stats().snapshot().requests,
            1,
            "a permanent error is not retried"
        );
    }
}

#[tokio::test]
async fn missing_database_is_created_when_enabled_and_creation_is_idempotent() {
    for url in v1_servers() {
        let db = unique("kinflux_create");
        let mut config = WriterConfig::v1(&url, &db);
        config.create_database = true;
        let writer = Writer::new(config).unwrap();
        let outcome = writer
            .write(LineBatch::from_lines(["cpu v=1 1", "cpu v=2 2"]))
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Written { lines: 2 });
        assert_eq!(count(&url, &db, "cpu", "v"), 2);
        writer.create_database().await.unwrap();
        writer.create_database().await.unwrap();
        assert_eq!(count(&url, &db, "cpu", "v"), 2);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn batches_over_the_body_limit_are_split_and_every_point_lands() {
    for url in v1_servers() {
        let db = unique("kinflux_split");
        let writer = writer_for(&url, &db, |c| c.max_body_bytes = 4096).await;
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("m,host=h{} v={i}i {i}", i % 7))
            .collect();
        let outcome = writer.write(LineBatch::from_lines(&lines)).await.unwrap();
        assert_eq!(outcome, WriteOutcome::Written { lines: 1000 });
        let stats = writer.stats().snapshot();
        assert!(stats.requests >= 5, "{stats:?}");
        assert!(stats.bytes_sent < stats.bytes_uncompressed);
        assert_eq!(count(&url, &db, "m", "v"), 1000);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn concurrent_writes_from_clones_store_every_point() {
    for url in v1_servers() {
        let db = unique("kinflux_concurrent");
        let writer = writer_for(&url, &db, |c| c.max_in_flight = 2).await;
        let mut tasks = Vec::new();
        for task in 0..8 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let lines: Vec<String> = (0..500)
                    .map(|i| format!("m,task={task} v={i}i {i}"))
                    .collect();
                writer.write(LineBatch::from_lines(&lines)).await
            }));
        }
        for task in tasks {
            assert!(matches!(
                task.await.unwrap().unwrap(),
                WriteOutcome::Written { lines: 500 }
            ));
        }
        assert_eq!(count(&url, &db, "m", "v"), 4000);
        assert_eq!(writer.stats().snapshot().lines_written, 4000);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn an_open_quote_refuses_every_line_influxdb_read_as_one() {
    for url in v1_servers() {
        let db = unique("kinflux_quote");
        let writer = writer_for(&url, &db, |_| {}).await;
        // InfluxDB reads the open quote of line 1 across the newlines to the end of the body,
        // so lines 1-3 are one unparsable "line" to it; only line 0 is stored.
        let batch = LineBatch::from_lines([
            "m v=0 1",
            r#"m v="unterminated 2"#,
            r"m,t=a\ b v=1 3 4",
            "m v=3 5",
        ]);
        let outcome = writer.write(batch).await.unwrap();
        let indexes: Vec<usize> = outcome.rejected().iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![1, 2, 3], "{outcome:?}");
        assert_eq!(outcome.rejected()[0].reason, "unbalanced quotes");
        assert_eq!(count(&url, &db, "m", "v"), 1);
        drop_database(&url, &db);
    }
}

#[tokio::test]
async fn points_beyond_the_retention_policy_are_counted_as_unattributed_drops() {
    for url in v1_servers() {
        let db = unique("kinflux_rp");
        writer_for(&url, &db, |_| {}).await;
        exec(
            &url,
            &format!("CREATE RETENTION POLICY \"short\" ON \"{db}\" DURATION 1h REPLICATION 1"),
        );
        let mut config = WriterConfig::v1(&url, &db).with_retention_policy("short");
        config.retry.max_attempts = Some(3);
        let writer_rp = Writer::new(config).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let batch = LineBatch::from_lines([
            format!("m v=1 {now}"),
            "m v=2 1000000000".to_owned(),
            format!("m v=3 {}", now - 1),
        ]);
        let outcome = writer_rp.write(batch).await.unwrap();
        let WriteOutcome::Partial(partial) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(partial.rejected.is_empty());
        let drop = partial.unattributed.unwrap();
        assert_eq!(drop.count, 1);
        // 1.6.7 says it in four words; 1.13.2 names the policy's duration and the points.
        let version = writer_rp.ping().await.unwrap().version.unwrap();
        if version.starts_with("1.6.") {
            assert_eq!(drop.reason, "points beyond retention policy");
        } else {
            assert!(
                drop.reason
                    .starts_with("dropped 1 points outside retention policy of duration 1h0m0s - oldest point m at 1970-01-01T00:00:01Z"),
                "{version}: {}",
                drop.reason
            );
        }
        let stored = query(&url, &db, "SELECT count(v) FROM \"short\".m");
        assert_eq!(rows(&stored)[0][1].as_u64(), Some(2));
        drop_database(&url, &db);
    }
}

#[cfg(feature = "points")]
#[tokio::test]
async fn write_points_encodes_and_reports_refusals_by_point_index() {
    use kinflux_series::{Point, Timestamp};

    for url in v1_servers() {
        let db = unique("kinflux_points");
        let writer = writer_for(&url, &db, |c| c.precision = Precision::Milliseconds).await;
        writer
            // In the same shard (1.x keeps field types per shard) as the points below.
            .write(LineBatch::from_lines(["m,host=a used=1i 1700000000000"]))
            .await
            .unwrap();
        let t = Timestamp::from_nanos(1_700_000_000_123_000_000);
        let points = vec![
            Point::builder("m")
                .tag("host", "a b")
                .field("v", 1.5)
                .field("s", "x \"y\"")
                .timestamp(t)
                .build()
                .unwrap(),
            // Line protocol cannot carry a newline in a tag value.
            Point::builder("m")
                .tag("host", "two\nlines")
                .field("v", 2.0)
                .timestamp(t)
                .build()
                .unwrap(),
            // Field type conflict: `used` is an integer in InfluxDB.
            Point::builder("m")
                .field("used", 2.5)
                .timestamp(t)
                .build()
                .unwrap(),
            Point::builder("m")
                .tag("host", "c")
                .field("v", 3.0)
                .timestamp(t)
                .build()
                .unwrap(),
        ];
        let outcome = writer.write_points(&points).await.unwrap();
        let WriteOutcome::Partial(partial) = outcome else {
            panic!("{outcome:?}")
        };
        let indexes: Vec<usize> = partial.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![1, 2], "{partial:#?}");
        assert!(partial.rejected[0].reason.starts_with("cannot encode"));
        assert!(partial.rejected[1].reason.contains("field type conflict"));
        assert_eq!(partial.written(), 2);

        let answer = query(&url, &db, "SELECT host, s, v FROM m WHERE v > 0");
        let got = rows(&answer);
        assert_eq!(got.len(), 2, "{answer}");
        assert_eq!(got[0][0].as_i64(), Some(1_700_000_000_123_000_000));
        assert_eq!(got[0][1], serde_json::json!("a b"));
        assert_eq!(got[0][2], serde_json::json!("x \"y\""));
        assert_eq!(got[0][3].as_f64(), Some(1.5));
        assert_eq!(got[1][1], serde_json::json!("c"));
        assert_eq!(got[1][2], serde_json::Value::Null);
        assert_eq!(got[1][3].as_f64(), Some(3.0));
        drop_database(&url, &db);
    }
}
