//! The v2 and v3 write APIs, retry behaviour, concurrency and TLS, against the test kit's
//! scripted HTTP server (no v2/v3 server can be installed here). Each answer body is
//! the documented one; the page is cited next to it.

use std::time::{Duration, Instant};

use kinflux_influx::{
    CancellationToken, LineBatch, RetryCause, Secret, WriteError, WriteOutcome, Writer,
    WriterConfig,
};
use kinflux_series::Precision;
use kinflux_testkit::http::{Reply, ScriptedServer};

fn three_lines() -> LineBatch {
    LineBatch::from_lines([
        "home,room=Sunroom temp=96 1735545600",
        "home,room=Sunroom temp=\"hi\" 1735549200",
        "home,room=Kitchen temp=70 1735549200",
    ])
}

fn fast_retries(config: &mut WriterConfig) {
    config.retry.initial_backoff = Duration::from_millis(5);
    config.retry.max_backoff = Duration::from_millis(20);
}

#[tokio::test]
async fn v2_request_has_path_query_token_and_gzip_body() {
    let server = ScriptedServer::start(vec![Reply::no_content()]).await;
    let mut config = WriterConfig::v2(
        &server.url,
        "my org",
        "my-bucket",
        Secret::new("s3cr3t-token"),
    );
    config.precision = Precision::Milliseconds;
    let writer = Writer::new(config).unwrap();
    let outcome = writer.write(three_lines()).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Written { lines: 3 });
    assert_eq!(outcome.written(), 3);

    let requests = server.recorded();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path_and_query,
        "/api/v2/write?org=my+org&bucket=my-bucket&precision=ms"
    );
    assert_eq!(r.headers["authorization"], "Token s3cr3t-token");
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.body, three_lines().body().as_ref());
    let stats = writer.stats().snapshot();
    assert_eq!(stats.bytes_uncompressed, three_lines().byte_len() as u64);
    assert_ne!(stats.bytes_sent, stats.bytes_uncompressed);
}

#[tokio::test]
async fn large_bodies_are_gzipped_once_and_resent_unchanged() {
    let server = ScriptedServer::start(vec![Reply::new(503, ""), Reply::no_content()]).await;
    let mut config = WriterConfig::v2(&server.url, "o", "b", "t");
    fast_retries(&mut config);
    let writer = Writer::new(config).unwrap();
    let lines: Vec<String> = (0..5000)
        .map(|i| format!("m,host=h{} v={i}i {i}", i % 10))
        .collect();
    let batch = LineBatch::from_lines(&lines);
    assert!(batch.byte_len() > 64 * 1024);
    writer.write(batch.clone()).await.unwrap();
    let requests = server.recorded();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.body, batch.body().as_ref());
    }
    let stats = writer.stats().snapshot();
    assert_eq!(stats.bytes_uncompressed, 2 * batch.byte_len() as u64);
    assert!(stats.bytes_sent * 4 < stats.bytes_uncompressed, "{stats:?}");
}

#[tokio::test]
async fn a_cut_answer_resends_the_lines_it_did_not_name() {
    // InfluxDB 1.x echoes every unparsable line; an answer past the writer's 16 MiB read
    // limit is cut, so lines it would have named later are sent again to learn about them.
    let filler = "x".repeat(17 * 1024 * 1024);
    let body = format!(
        r#"{{"error":"partial write: unable to parse 'a v=': missing field value\nunable to parse 'm {filler}': invalid field format dropped=0"}}"#
    );
    let server = ScriptedServer::start(vec![Reply::new(400, &body), Reply::no_content()]).await;
    let mut config = WriterConfig::v1(&server.url, "db");
    config.gzip_level = None;
    let writer = Writer::new(config).unwrap();
    let outcome = writer
        .write(LineBatch::from_lines(["ok v=1 1", "a v=", "ok v=2 2"]))
        .await
        .unwrap();
    assert_eq!(
        outcome
            .rejected()
            .iter()
            .map(|r| r.index)
            .collect::<Vec<_>>(),
        vec![1]
    );
    let requests = server.recorded();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].body, b"ok v=1 1\nok v=2 2\n");
}

#[tokio::test]
async fn v2_400_naming_a_line_rejects_it_and_resends_the_rest() {
    // InfluxDB OSS v2, https://docs.influxdata.com/influxdb/v2/write-data/troubleshoot/ :
    // "400 Bad request: The response body contains the first malformed line in the data.
    // All request data was rejected and not written." The body follows the API reference's
    // LineProtocolError schema {code, message, op, err, line}
    // (https://docs.influxdata.com/influxdb/v2/api/#operation/PostWrite).
    let body = r#"{"code":"invalid","message":"unable to parse 'home,room=Sunroom temp=\"hi\" 1735549200': field type conflict","line":2}"#;
    let server = ScriptedServer::start(vec![Reply::new(400, body), Reply::no_content()]).await;
    let writer = Writer::new(WriterConfig::v2(&server.url, "o", "b", "t")).unwrap();
    let outcome = writer.write(three_lines()).await.unwrap();
    let WriteOutcome::Partial(partial) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(partial.rejected.len(), 1);
    assert_eq!(partial.rejected[0].index, 1);
    assert!(partial.rejected[0].reason.contains("field type conflict"));

    let requests = server.recorded();
    assert_eq!(requests.len(), 2, "the rest is sent again");
    assert_eq!(
        String::from_utf8(requests[1].body.clone()).unwrap(),
        "home,room=Sunroom temp=96 1735545600\nhome,room=Kitchen temp=70 1735549200\n"
    );
}

#[tokio::test]
async fn v2_cloud_400_listing_lines_rejects_each_and_resends_the_rest() {
    // InfluxDB Cloud Dedicated / Serverless (v2 write API),
    // https://docs.influxdata.com/influxdb3/cloud-dedicated/write-data/troubleshoot/ :
    // "a response body for a write request that contains two rejected points".
    let body = r#"{"code":"invalid","line":2,"message":"failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 (1-based): Invalid measurement was provided\nerror parsing line 4 (1-based): Unable to parse timestamp value '123461000000000000000000000000'"}"#;
    let server = ScriptedServer::start(vec![Reply::new(400, body), Reply::no_content()]).await;
    let writer = Writer::new(WriterConfig::v2(&server.url, "o", "b", "t")).unwrap();
    let batch = LineBatch::from_lines([
        "t,tag1=A val=42i 123456",
        ",tag1=B val=43i 123457",
        "t,tag1=C val=44i 123458",
        "t,tag1=D val=45i 123461000000000000000000000000",
    ]);
    let outcome = writer.write(batch).await.unwrap();
    let reasons: Vec<(usize, &str)> = outcome
        .rejected()
        .iter()
        .map(|r| (r.index, r.reason.as_str()))
        .collect();
    assert_eq!(reasons[0], (1, "Invalid measurement was provided"));
    assert_eq!(reasons[1].0, 3);
    let requests = server.recorded();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        String::from_utf8(requests[1].body.clone()).unwrap(),
        "t,tag1=A val=42i 123456\nt,tag1=C val=44i 123458\n"
    );
}

#[tokio::test]
async fn v2_422_partial_write_reports_unattributed_drops() {
    // InfluxDB OSS v2.5+, https://docs.influxdata.com/influxdb/v2.5/write-data/troubleshoot :
    // "422 Unprocessable Entity: Some or all of the data has been rejected. Data that has
    // not been rejected is ingested and queryable. The response body contains error
    // details about rejected points."
    let body = r#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=1"}"#;
    let server = ScriptedServer::start(vec![Reply::new(422, body)]).await;
    let writer = Writer::new(WriterConfig::v2(&server.url, "o", "b", "t")).unwrap();
    let outcome = writer.write(three_lines()).await.unwrap();
    let WriteOutcome::Partial(partial) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(partial.rejected.is_empty());
    assert_eq!(partial.written(), 2);
    let drop = partial.unattributed.unwrap();
    assert_eq!(drop.count, 1);
    assert_eq!(drop.reason, "points beyond retention policy");
    assert_eq!(server.recorded().len(), 1);
    assert_eq!(writer.stats().snapshot().lines_written, 2);
}

#[tokio::test]
async fn v2_401_and_404_are_permanent_and_not_retried() {
    // https://docs.influxdata.com/influxdb/v2/write-data/troubleshoot/ : 401 when the
    // token is missing or lacks permission; 404 when the org or bucket does not exist.
    for (status, body) in [
        (
            401,
            r#"{"code":"unauthorized","message":"unauthorized access"}"#,
        ),
        (
            404,
            r#"{"code":"not found","message":"bucket \"nope\" not found"}"#,
        ),
    ] {
        let server = ScriptedServer::start(vec![Reply::new(status, body)]).await;
        let writer = Writer::new(WriterConfig::v2(&server.url, "o", "nope", "bad-token")).unwrap();
        let err = writer.write(three_lines()).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        match (status, &err) {
            (401, WriteError::Unauthorized { message, .. }) => {
                assert_eq!(message, "unauthorized access")
            }
            (404, WriteError::NotFound { message }) => assert!(message.contains("bucket")),
            _ => panic!("{status}: {err:?}"),
        }
        assert!(!format!("{err:?} {err}").contains("bad-token"));
        assert_eq!(server.recorded().len(), 1);
    }
}

#[tokio::test]
async fn v3_request_has_path_query_and_bearer_token() {
    let server = ScriptedServer::start(vec![Reply::no_content()]).await;
    let mut config = WriterConfig::v3(&server.url, "sensors", Some(Secret::new("apiv3_tok")));
    config.gzip_level = None;
    config.precision = Precision::Seconds;
    let writer = Writer::new(config).unwrap();
    writer.write(three_lines()).await.unwrap();
    let r = &server.recorded()[0];
    assert_eq!(
        r.path_and_query,
        "/api/v3/write_lp?db=sensors&precision=second&accept_partial=true"
    );
    assert_eq!(r.headers["authorization"], "Bearer apiv3_tok");
    assert!(r.headers.get("content-encoding").is_none());
    assert_eq!(r.body, three_lines().body().as_ref());
}

#[tokio::test]
async fn v3_partial_write_body_names_the_rejected_lines() {
    // https://docs.influxdata.com/influxdb3/core/write-data/http-api/v3-write-lp/ ,
    // "Accept partial writes": 400 with this body (line_number is 1-based).
    let body = r#"{
      "error": "partial write of line protocol occurred",
      "data": [
        {
          "original_line": "home,room=Sunroom temp=hi 1735549200",
          "line_number": 2,
          "error_message": "invalid column type for column 'temp', expected iox::column_type::field::float, got iox::column_type::field::string"
        }
      ]
    }"#;
    let server = ScriptedServer::start(vec![Reply::new(400, body)]).await;
    let writer = Writer::new(WriterConfig::v3(&server.url, "db", None)).unwrap();
    let outcome = writer.write(three_lines()).await.unwrap();
    let rejected = outcome.rejected();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].index, 1);
    assert!(
        rejected[0]
            .reason
            .starts_with("invalid column type for column 'temp'")
    );
    assert_eq!(
        server.recorded().len(),
        1,
        "accepted lines are not sent again"
    );
}

#[tokio::test]
async fn v3_refused_body_without_partial_writes_resends_the_good_lines() {
    // Same page, "Do not accept partial writes": accept_partial=false rejects all points
    // and answers 400 with `data` as one object.
    let body = r#"{
      "error": "parsing failed for write_lp endpoint",
      "data": {
        "original_line": "home,room=Sunroom temp=hi 1735549200",
        "line_number": 2,
        "error_message": "invalid column type for column 'temp', expected iox::column_type::field::float, got iox::column_type::field::string"
      }
    }"#;
    let server = ScriptedServer::start(vec![Reply::new(400, body), Reply::no_content()]).await;
    let config = WriterConfig::v3(&server.url, "db", None).with_accept_partial(false);
    let writer = Writer::new(config).unwrap();
    let outcome = writer.write(three_lines()).await.unwrap();
    assert_eq!(
        outcome
            .rejected()
            .iter()
            .map(|r| r.index)
            .collect::<Vec<_>>(),
        vec![1]
    );
    let requests = server.recorded();
    assert!(requests[0].path_and_query.ends_with("accept_partial=false"));
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1]
            .body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
}

#[tokio::test]
async fn throttling_honours_retry_after_in_seconds_then_writes() {
    let server = ScriptedServer::start(vec![
        Reply::new(429, r#"{"code":"too many requests"}"#).header("retry-after", "1"),
        Reply::no_content(),
    ])
    .await;
    let mut config = WriterConfig::v2(&server.url, "o", "b", "t");
    fast_retries(&mut config);
    let writer = Writer::new(config).unwrap();
    let started = Instant::now();
    writer.write(three_lines()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    let stats = writer.stats().snapshot();
    assert_eq!((stats.requests, stats.retries_throttled), (2, 1));
}

#[tokio::test]
async fn unavailable_honours_retry_after_as_http_date() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let server = ScriptedServer::start(vec![
        Reply::new(503, "").header("retry-after", at),
        Reply::no_content(),
    ])
    .await;
    let writer = Writer::new(WriterConfig::v1(&server.url, "db")).unwrap();
    let started = Instant::now();
    writer.write(three_lines()).await.unwrap();
    // The date has one-second resolution: the wait is between 1 and 2 s.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(writer.stats().snapshot().retries_server_error, 1);
}

#[tokio::test]
async fn server_errors_retry_until_max_attempts_then_give_up() {
    let server = ScriptedServer::start(vec![Reply::new(500, r#"{"error":"timeout"}"#)]).await;
    let mut config = WriterConfig::v1(&server.url, "db");
    fast_retries(&mut config);
    config.retry.max_attempts = Some(3);
    let writer = Writer::new(config).unwrap();
    let err = writer.write(three_lines()).await.unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::GaveUp {
                attempts: 3,
                last: RetryCause::ServerError(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert_eq!(server.recorded().len(), 3);
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    for status in [429, 500, 502, 503, 504] {
        let server = ScriptedServer::start(vec![Reply::new(status, ""), Reply::no_content()]).await;
        let mut config = WriterConfig::v1(&server.url, "db");
        fast_retries(&mut config);
        let writer = Writer::new(config).unwrap();
        writer.write(three_lines()).await.unwrap();
        assert_eq!(server.recorded().len(), 2, "status {status}");
    }
}

#[tokio::test]
async fn slow_answers_time_out_and_count_as_retryable() {
    let server =
        ScriptedServer::start(vec![Reply::no_content().delay(Duration::from_secs(2))]).await;
    let mut config = WriterConfig::v1(&server.url, "db");
    fast_retries(&mut config);
    config.request_timeout = Duration::from_millis(200);
    config.retry.max_attempts = Some(2);
    let writer = Writer::new(config).unwrap();
    let err = writer.write(three_lines()).await.unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::GaveUp {
                last: RetryCause::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(writer.stats().snapshot().retries_timeout, 1);
}

#[tokio::test]
async fn max_elapsed_bounds_retries_on_refused_connections() {
    let port = kinflux_testkit::free_port();
    let mut config = WriterConfig::v1(format!("http://127.0.0.1:{port}"), "db");
    fast_retries(&mut config);
    config.retry.max_elapsed = Some(Duration::from_millis(300));
    let writer = Writer::new(config).unwrap();
    let started = Instant::now();
    let err = writer.write(three_lines()).await.unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::GaveUp {
                last: RetryCause::Connection,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(writer.stats().snapshot().retries_connection >= 2);
}

#[tokio::test]
async fn shutdown_cancels_a_backoff_wait_at_once() {
    let server = ScriptedServer::start(vec![Reply::new(503, "").header("retry-after", "60")]).await;
    let shutdown = CancellationToken::new();
    let writer =
        Writer::with_shutdown(WriterConfig::v1(&server.url, "db"), shutdown.clone()).unwrap();
    let task = tokio::spawn({
        let writer = writer.clone();
        async move { writer.write(three_lines()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    shutdown.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, WriteError::Cancelled), "{err:?}");
    // "At once": well under the 60 s the server asked for, with slack for a loaded CI.
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_limit() {
    let server =
        ScriptedServer::start(vec![Reply::no_content().delay(Duration::from_millis(100))]).await;
    let mut config = WriterConfig::v1(&server.url, "db");
    config.max_in_flight = 2;
    let writer = Writer::new(config).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(three_lines()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.recorded().len(), 8);
    assert_eq!(server.max_in_flight(), 2);
}

#[tokio::test]
async fn sequential_writes_reuse_one_keep_alive_connection() {
    let server = ScriptedServer::start(vec![Reply::no_content()]).await;
    let writer = Writer::new(WriterConfig::v1(&server.url, "db")).unwrap();
    for _ in 0..5 {
        writer.write(three_lines()).await.unwrap();
    }
    assert_eq!(server.recorded().len(), 5);
    assert_eq!(server.connections(), 1);
    let stats = writer.stats().snapshot();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.latency.iter().sum::<u64>(), 5);
}

#[cfg(feature = "tls")]
mod tls {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    /// An HTTPS server with a fresh self-signed certificate that answers 204 to
    /// everything; returns its URL and the certificate PEM.
    async fn https_server() -> (String, String, tokio::task::JoinHandle<()>) {
        let key = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let cert_der = key.cert.der().clone();
        let key_der =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(204)
                                .header("x-influxdb-version", "tls-test")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (url, key.cert.pem(), task)
    }

    #[tokio::test]
    async fn https_round_trip_with_a_custom_ca_file() {
        let (url, pem, server) = https_server().await;
        let dir = std::env::temp_dir().join(kinflux_testkit::unique("kinflux_tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, pem).unwrap();

        let mut config = WriterConfig::v1(&url, "db");
        config.ca_file = Some(ca);
        let writer = Writer::new(config).unwrap();
        let ping = writer.ping().await.unwrap();
        assert_eq!(ping.version.as_deref(), Some("tls-test"));
        let outcome = writer.write(three_lines()).await.unwrap();
        assert_eq!(outcome, WriteOutcome::Written { lines: 3 });

        // Without the CA the self-signed certificate is not trusted.
        let mut untrusted = WriterConfig::v1(&url, "db");
        untrusted.retry.max_attempts = Some(1);
        let err = Writer::new(untrusted)
            .unwrap()
            .write(three_lines())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                WriteError::GaveUp {
                    last: RetryCause::Connection,
                    ..
                }
            ),
            "{err:?}"
        );
        server.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
