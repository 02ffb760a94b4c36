//! TLS and SASL against the real Apache Kafka that `scripts/services` runs, on every
//! connection the crate makes: the group coordinator's, the fetches and the
//! dead-letter producer's. Listeners and credentials come from `scripts/services status`:
//! `KINFLUX_KAFKA_SSL_BROKERS`, `KINFLUX_KAFKA_MTLS_BROKERS`, `KINFLUX_KAFKA_CA_FILE`,
//! `KINFLUX_KAFKA_CLIENT_CERT`, `KINFLUX_KAFKA_CLIENT_KEY`,
//! `KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS`, `KINFLUX_KAFKA_SASL_SSL_BROKERS`,
//! `KINFLUX_KAFKA_SASL_USERNAME`, `KINFLUX_KAFKA_SASL_PASSWORD`, and for OAUTHBEARER
//! `KINFLUX_KAFKA_OAUTH_BROKERS`, `KINFLUX_OAUTH_TOKEN_URL`, `KINFLUX_OAUTH_CLIENT_ID`,
//! `KINFLUX_OAUTH_CLIENT_SECRET` (token refresh and re-authentication are in `oauth.rs`).

mod common;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::*;
use kinflux_kafka::{
    Consumer, DeadLetterConfig, DeadLetterProducer, DeadLetterReason, Error, OAuthConfig,
    PartitionKey, Record, SaslConfig, SaslMechanism, TlsConfig,
};
use kinflux_testkit::{
    forwarder::Forwarder,
    http::{Reply, ScriptedServer},
    kafka::bootstrap,
    require_or_skip, unique,
};

const MECHANISMS: [SaslMechanism; 3] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
];

/// The dead-letter producer creates a topic over `brokers` and writes four records there;
/// a consumer in a fresh group reads them back over the same listener and commits them.
/// Every connection of both speaks `tls` and `sasl`.
async fn round_trip(brokers: String, tls: Option<TlsConfig>, sasl: Option<SaslConfig>) {
    let brokers = brokers.as_str();
    let topic = unique("secure");
    let mut dl = DeadLetterConfig::new(bootstrap(brokers), &topic);
    dl.create_topic = true;
    dl.partitions = 2;
    dl.tls = tls.clone();
    dl.sasl = sasl.clone();
    let producer = DeadLetterProducer::connect(dl)
        .await
        .unwrap_or_else(|e| panic!("dead-letter producer over {brokers}: {e}"));
    for i in 0..4 {
        let record = Record {
            topic: "source".into(),
            partition: 0,
            offset: i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Vec::new(),
            timestamp_ms: 1_700_000_000_000 + i,
        };
        producer
            .send(&record, &DeadLetterReason::new("test", "secured"))
            .await
            .unwrap_or_else(|e| panic!("dead letter over {brokers}: {e}"));
    }

    let mut cfg = config(brokers, &unique("g_secure"), &[&topic]);
    cfg.tls = tls;
    cfg.sasl = sasl;
    let mut consumer = Consumer::connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("consumer over {brokers}: {e}"));
    let got = recv_until(&mut consumer, Duration::from_secs(30), |rs| rs.len() >= 4).await;
    let mut values: Vec<&[u8]> = got.iter().filter_map(|r| r.value.as_deref()).collect();
    values.sort_unstable();
    assert_eq!(values, [&b"v0"[..], b"v1", b"v2", b"v3"], "over {brokers}");
    let ends: Vec<(PartitionKey, i64)> = got
        .iter()
        .map(|r| (r.partition_key(), r.next_offset()))
        .collect();
    consumer.commit(ends.clone()).await.expect("commit");
    let partitions: Vec<PartitionKey> = (0..2).map(|p| PartitionKey::new(&*topic, p)).collect();
    let committed = consumer.committed(&partitions).await.expect("committed");
    for (tp, end) in ends {
        assert!(committed[&tp] >= Some(end), "{tp}: {committed:?}");
    }
    consumer.close().await.expect("close");
}

fn sasl(mechanism: SaslMechanism, user: &str, password: &str) -> SaslConfig {
    SaslConfig::password(mechanism, user, password).expect("a password mechanism")
}

/// What `connect` returns when it fails, and how long that took.
async fn refusal<T>(connect: impl Future<Output = kinflux_kafka::Result<T>>) -> (Error, Duration) {
    let start = Instant::now();
    match connect.await {
        Ok(_) => panic!("connected where it must be refused"),
        Err(e) => (e, start.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_brokers_certificate_against_the_ca_and_the_host_name() {
    let (ssl, ca) = require_or_skip!("KINFLUX_KAFKA_SSL_BROKERS", "KINFLUX_KAFKA_CA_FILE");
    init_tracing();
    round_trip(ssl.clone(), Some(TlsConfig::with_ca_file(&ca)), None).await;

    // The certificate names 127.0.0.1 and localhost: localhost is as good a bootstrap.
    let port = bootstrap(&ssl)[0]
        .rsplit_once(':')
        .expect("host:port")
        .1
        .to_owned();
    let mut cfg = config(&format!("localhost:{port}"), &unique("g_tls"), &["any"]);
    cfg.tls = Some(TlsConfig::with_ca_file(&ca));
    Consumer::connect(cfg)
        .await
        .expect("localhost is in the certificate");

    // A CA that did not sign the broker's certificate.
    let dir = tempfile::tempdir().expect("temp dir");
    let other_ca = dir.path().join("other-ca.pem");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key");
    std::fs::write(&other_ca, params.self_signed(&key).expect("CA").pem()).expect("write CA");
    let mut cfg = config(&ssl, &unique("g_tls"), &["any"]);
    cfg.tls = Some(TlsConfig::with_ca_file(&other_ca));
    let (e, took) = refusal(Consumer::connect(cfg)).await;
    assert!(matches!(e, Error::Tls { .. }) && !e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let mut dl = DeadLetterConfig::new(bootstrap(&ssl), unique("dlq"));
    dl.tls = Some(TlsConfig::with_ca_file(&other_ca));
    let (e, took) = refusal(DeadLetterProducer::connect(dl)).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // The same broker reached as 127.0.0.2, a name its certificate does not have.
    let other_name = Forwarder::start_on(IpAddr::from([127, 0, 0, 2]), &bootstrap(&ssl)[0]).await;
    let mut cfg = config(&other_name.address(), &unique("g_tls"), &["any"]);
    cfg.tls = Some(TlsConfig::with_ca_file(&ca));
    let (e, _) = refusal(Consumer::connect(cfg)).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    assert_eq!(other_name.connections(), 1, "refused once, not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate() {
    let (mtls, ca, cert, key) = require_or_skip!(
        "KINFLUX_KAFKA_MTLS_BROKERS",
        "KINFLUX_KAFKA_CA_FILE",
        "KINFLUX_KAFKA_CLIENT_CERT",
        "KINFLUX_KAFKA_CLIENT_KEY"
    );
    init_tracing();
    let tls = TlsConfig::with_ca_file(&ca).with_client_cert(&cert, &key);
    round_trip(mtls.clone(), Some(tls), None).await;

    // Without one, the broker ends the handshake (TLS 1.3: at the first request).
    let mut cfg = config(&mtls, &unique("g_mtls"), &["any"]);
    cfg.tls = Some(TlsConfig::with_ca_file(&ca));
    let (e, took) = refusal(Consumer::connect(cfg)).await;
    assert!(matches!(e, Error::Tls { .. }) && !e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains(&bootstrap(&mtls)[0]), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram_over_sasl_plaintext_and_sasl_ssl() {
    let (plaintext, ssl, ca, user, password) = require_or_skip!(
        "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS",
        "KINFLUX_KAFKA_SASL_SSL_BROKERS",
        "KINFLUX_KAFKA_CA_FILE",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_SASL_PASSWORD"
    );
    init_tracing();
    let mut cases = Vec::new();
    for mechanism in MECHANISMS {
        let creds = sasl(mechanism, &user, &password);
        cases.push(round_trip(plaintext.clone(), None, Some(creds.clone())));
        cases.push(round_trip(
            ssl.clone(),
            Some(TlsConfig::with_ca_file(&ca)),
            Some(creds),
        ));
    }
    // Six listener and mechanism pairs at once: each joins its own group.
    let mut set = tokio::task::JoinSet::new();
    for case in cases {
        set.spawn(case);
    }
    while let Some(done) = set.join_next().await {
        done.expect("a SASL round trip");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_once_with_the_mechanism_and_the_broker() {
    let (plaintext, user, password, oauth_brokers, token_url, client_id, secret) = require_or_skip!(
        "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_SASL_PASSWORD",
        "KINFLUX_KAFKA_OAUTH_BROKERS",
        "KINFLUX_OAUTH_TOKEN_URL",
        "KINFLUX_OAUTH_CLIENT_ID",
        "KINFLUX_OAUTH_CLIENT_SECRET"
    );
    init_tracing();
    let wrong_password = |m| sasl(m, &user, &format!("{password}-wrong"));
    let mut cases: Vec<(SaslConfig, String, &str)> = MECHANISMS
        .into_iter()
        .map(|m| {
            (
                wrong_password(m),
                plaintext.clone(),
                "Authentication failed",
            )
        })
        .collect();
    cases.push((
        SaslConfig::OAuthBearer(OAuthConfig::new(&token_url, &client_id, "wrong-secret")),
        oauth_brokers.clone(),
        "invalid_client",
    ));
    // A token the endpoint gives, signed by the right key, but for another audience.
    cases.push((
        SaslConfig::OAuthBearer(OAuthConfig::new(
            &token_url,
            format!("{client_id}-foreign"),
            &secret,
        )),
        oauth_brokers,
        "invalid_token",
    ));
    for (sasl, brokers, says) in cases {
        let mechanism = sasl.mechanism().name();
        let broker = Forwarder::start(&bootstrap(&brokers)[0]).await;
        let mut cfg = config(&broker.address(), &unique("g_wrong"), &["any"]);
        cfg.sasl = Some(sasl.clone());
        let (e, took) = refusal(Consumer::connect(cfg)).await;
        let text = e.to_string();
        assert!(
            matches!(e, Error::Authentication { .. }),
            "{mechanism}: {e:?}"
        );
        assert!(!e.is_retryable(), "{mechanism}: {e}");
        assert!(
            text.contains(mechanism) && text.contains(&broker.address()),
            "{text}"
        );
        assert!(text.contains(says), "{mechanism}: {text}");
        assert!(
            !text.contains("-wrong") && !text.contains(&secret),
            "a secret leaked: {text}"
        );
        assert!(took < Duration::from_secs(5), "{mechanism}: {took:?}");

        let mut dl = DeadLetterConfig::new([broker.address()], unique("dlq"));
        dl.sasl = Some(sasl);
        let (e, took) = refusal(DeadLetterProducer::connect(dl)).await;
        assert!(
            matches!(e, Error::Authentication { .. }),
            "{mechanism}: {e:?}"
        );
        assert!(took < Duration::from_secs(5), "{mechanism}: {took:?}");
        // Nothing tries again behind the caller's back.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // One connection each for the consumer and the producer; none for a token the
        // endpoint refused (it is asked for before connecting).
        let expected = if says == "invalid_client" { 0 } else { 2 };
        assert_eq!(broker.connections(), expected, "{mechanism}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_endpoint_is_retryable_and_a_refusing_one_is_not() {
    // No broker is reached: the token comes first. Answers as RFC 6749 5.2 describes them.
    let endpoint = ScriptedServer::start(vec![
        Reply::new(503, r#"{"error":"temporarily_unavailable"}"#),
        Reply::new(
            400,
            r#"{"error":"invalid_scope","error_description":"unknown scope kafka:write"}"#,
        ),
    ])
    .await;
    let nowhere = Forwarder::start("127.0.0.1:9").await;
    let oauth = OAuthConfig::new(format!("{}/token", endpoint.url), "bridge", "s3cr3t-value")
        .with_scope("kafka:write");
    let mut cfg = config(&nowhere.address(), "g", &["any"]);
    cfg.sasl = Some(SaslConfig::OAuthBearer(oauth));
    let (e, _) = refusal(Consumer::connect(cfg.clone())).await;
    assert!(
        matches!(e, Error::TokenEndpoint { .. }) && e.is_retryable(),
        "{e:?}"
    );
    assert!(e.to_string().contains("503"), "{e}");
    let (e, _) = refusal(Consumer::connect(cfg)).await;
    assert!(
        matches!(e, Error::Authentication { .. }) && !e.is_retryable(),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("invalid_scope (unknown scope kafka:write)"),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cr3t-value"), "{e}");
    assert_eq!(nowhere.connections(), 0);

    let asked = endpoint.recorded();
    assert_eq!(asked.len(), 2);
    let form = String::from_utf8_lossy(&asked[0].body).into_owned();
    assert_eq!(form, "grant_type=client_credentials&scope=kafka%3Awrite");
    let basic = asked[0].headers["authorization"].to_str().expect("ASCII");
    // HTTP Basic of "bridge:s3cr3t-value" (RFC 6749 2.3.1).
    assert_eq!(basic, "Basic YnJpZGdlOnMzY3IzdC12YWx1ZQ==");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_at_renewal_stops_the_consumer_at_once() {
    let (plain, brokers, token_url, client_id, secret) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_OAUTH_BROKERS",
        "KINFLUX_OAUTH_TOKEN_URL",
        "KINFLUX_OAUTH_CLIENT_ID",
        "KINFLUX_OAUTH_CLIENT_SECRET"
    );
    init_tracing();
    // A real 8-second token, then refusals, as after the client's secret was revoked.
    let form =
        format!("grant_type=client_credentials&client_id={client_id}-short&client_secret={secret}");
    let answer = tokio::task::spawn_blocking(move || {
        kinflux_testkit::http::request(
            "POST",
            &token_url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    })
    .await
    .expect("token task")
    .expect("a token from the OAuth server");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let endpoint = ScriptedServer::start(vec![
        Reply::new(200, &answer.body),
        Reply::new(
            401,
            r#"{"error":"invalid_client","error_description":"client revoked"}"#,
        ),
    ])
    .await;
    let topic = unique("revoked");
    kinflux_testkit::kafka::create_topic(&plain, &topic, 1).await;
    let oauth = OAuthConfig::new(format!("{}/token", endpoint.url), "bridge", "s3cr3t-value");
    let mut cfg = config(&brokers, &unique("g_revoked"), &[&topic]);
    cfg.sasl = Some(SaslConfig::OAuthBearer(oauth));
    let start = Instant::now();
    let mut consumer = Consumer::connect(cfg)
        .await
        .expect("the first token is good");
    let e = loop {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => break e,
            Err(_) => panic!("the consumer went on without a token"),
        }
    };
    let took = start.elapsed();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(
        e.to_string().contains("invalid_client (client revoked)"),
        "{e}"
    );
    // The session of the 8-second token ended the renewal, not a retry loop.
    assert!(took < Duration::from_secs(15), "{took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = endpoint.recorded().len();
    assert!((2..=3).contains(&asked), "{asked} token requests");
}
