//! OAUTHBEARER with the client-credentials flow against the real Apache Kafka of
//! `scripts/services` (its OAUTH listener checks tokens against the JWKS of
//! `scripts/oauth-server`), with tokens that live 8 seconds (the server's `ID-short`
//! client): tokens are refreshed before they expire, the consumer's connections (the group
//! coordinator's and the fetches') re-authenticate (KIP-368) before the broker ends their
//! session, and the dead-letter producer's rskafka connections, which do not, are closed by
//! the broker and come back with a fresh token.
//!
//! Alone in its binary: it asserts on log lines (see `kinflux_testkit::logs`).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kinflux_kafka::{
    Consumer, DeadLetterConfig, DeadLetterProducer, DeadLetterReason, OAuthConfig, Record,
    SaslConfig,
};
use kinflux_testkit::{http, kafka::bootstrap, logs, require_or_skip, unique};

/// Tokens the OAuth server gave `client` so far.
async fn issued(token_url: &str, client: &str) -> u64 {
    let stats = token_url.trim_end_matches("/token").to_owned() + "/stats";
    let answer = tokio::task::spawn_blocking(move || http::get(&stats))
        .await
        .expect("stats task")
        .expect("the OAuth server's /stats");
    let v: serde_json::Value = serde_json::from_str(&answer.body).expect("stats JSON");
    v["issued"][client].as_u64().unwrap_or(0)
}

fn dead_letter(i: i64) -> Record {
    Record {
        topic: "source".into(),
        partition: 0,
        offset: i,
        key: None,
        value: Some(Bytes::from(format!("v{i}"))),
        headers: Vec::new(),
        timestamp_ms: 1_700_000_000_000 + i,
    }
}

// One thread, so that the log capture (thread-local) sees the background tasks too.
#[tokio::test]
async fn tokens_are_refreshed_and_connections_reauthenticate_before_their_session_ends() {
    let (brokers, token_url, client_id, secret) = require_or_skip!(
        "KINFLUX_KAFKA_OAUTH_BROKERS",
        "KINFLUX_OAUTH_TOKEN_URL",
        "KINFLUX_OAUTH_CLIENT_ID",
        "KINFLUX_OAUTH_CLIENT_SECRET"
    );
    let (_guard, captured) = logs::capture_at(tracing::Level::DEBUG);
    let short = format!("{client_id}-short");
    let before = issued(&token_url, &short).await;
    let oauth = OAuthConfig::new(&token_url, &short, &secret).with_scope("kafka");
    let sasl = SaslConfig::OAuthBearer(oauth);

    let topic = unique("oauth");
    let mut dl = DeadLetterConfig::new(bootstrap(&brokers), &topic);
    dl.create_topic = true;
    dl.sasl = Some(sasl.clone());
    let producer = DeadLetterProducer::connect(dl).await.expect("producer");
    let reason = DeadLetterReason::new("test", "oauth");
    for i in 0..2 {
        producer.send(&dead_letter(i), &reason).await.expect("send");
    }
    let mut cfg = config(&brokers, &unique("g_oauth"), &[&topic]);
    cfg.sasl = Some(sasl);
    let mut consumer = Consumer::connect(cfg).await.expect("consumer");
    let first = recv_until(&mut consumer, Duration::from_secs(30), |rs| rs.len() >= 2).await;
    consumer
        .commit([(first[1].partition_key(), 2)])
        .await
        .expect("commit");

    // Past the first token's life: the group and fetch connections re-authenticated on the
    // way; the producer's (rskafka) were closed by the broker and opened again.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            r.expect("the consumer goes on");
        }
    }
    for i in 2..4 {
        producer.send(&dead_letter(i), &reason).await.expect("send");
    }
    let later = recv_until(&mut consumer, Duration::from_secs(30), |rs| rs.len() >= 2).await;
    let values: Vec<&[u8]> = later.iter().filter_map(|r| r.value.as_deref()).collect();
    assert_eq!(values, [&b"v2"[..], b"v3"]);
    consumer
        .commit([(later[1].partition_key(), 4)])
        .await
        .expect("commit after re-authentication");
    consumer.close().await.expect("close");

    let log = logs::text(&captured);
    let reauthenticated = log.matches("re-authenticated (KIP-368)").count();
    assert!(reauthenticated >= 2, "group and fetch connections:\n{log}");
    assert!(!log.contains(" WARN ") && !log.contains("ERROR"), "{log}");
    let tokens = issued(&token_url, &short).await - before;
    assert!(
        (2..=8).contains(&tokens),
        "{tokens} tokens: one at the start, a few refreshes, no storm"
    );
    assert!(!log.contains(&secret), "the client secret was logged");
    assert!(!log.contains("eyJ"), "a token was logged");
}
