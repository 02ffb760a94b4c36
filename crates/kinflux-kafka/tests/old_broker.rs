//! `group_protocol = "consumer"` against a broker without KIP-848: a proxy in front of the
//! real broker (`KINFLUX_KAFKA_BROKERS`) leaves ConsumerGroupHeartbeat out of its
//! ApiVersions answers (as Kafka before 4.0 does) and points FindCoordinator at itself.
//! `connect` fails with the Java client's message; `classic` still works through it.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use kinflux_kafka::{Consumer, GroupProtocol};
use kinflux_testkit::kafka::{bootstrap, create_topic};
use kinflux_testkit::{require_or_skip, unique};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const API_VERSIONS: i16 = 18;
const FIND_COORDINATOR: i16 = 10;
const CONSUMER_GROUP_HEARTBEAT: i16 = 68;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_protocol_on_a_broker_without_it_is_a_clear_error() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    init_tracing();
    let topic = unique("old-broker");
    let group = unique("g-old-broker");
    create_topic(&brokers, &topic, 1).await;
    produce_range(&brokers, &topic, 0, 0, 3).await;
    let proxy = start_proxy(bootstrap(&brokers)[0].clone()).await;

    let mut cfg = config(&proxy, &group, &[&topic]);
    cfg.group_protocol = GroupProtocol::Consumer;
    let err = Consumer::connect(cfg.clone()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("does not support the new CONSUMER group protocol"),
        "{err}"
    );

    // The same broker serves the classic protocol.
    cfg.group_protocol = GroupProtocol::Classic;
    let mut c = Consumer::connect(cfg).await.unwrap();
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    c.close().await.unwrap();
}

/// A TCP proxy to `upstream` that hides ConsumerGroupHeartbeat. Returns its address.
async fn start_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let _ = relay(client, &upstream, port).await;
            });
        }
    });
    format!("127.0.0.1:{port}")
}

async fn relay(client: TcpStream, upstream: &str, port: u16) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // Correlation id to the API of the requests whose answers are rewritten.
    let asked: Arc<Mutex<HashMap<[u8; 4], i16>>> = Arc::default();
    let answers = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok(frame) = read_frame(&mut from_server).await {
            let id = [frame[0], frame[1], frame[2], frame[3]];
            let frame = match answers.lock().unwrap().remove(&id) {
                Some(API_VERSIONS) => without_heartbeat(&frame),
                Some(FIND_COORDINATOR) => pointing_at(&frame, port),
                _ => frame,
            };
            if write_frame(&mut to_client, &frame).await.is_err() {
                return;
            }
        }
    });
    loop {
        let frame = read_frame(&mut from_client).await?;
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let id = [frame[4], frame[5], frame[6], frame[7]];
        // The versions our client sends: ApiVersions v0, FindCoordinator v3.
        if (api_key, version) == (API_VERSIONS, 0) || (api_key, version) == (FIND_COORDINATOR, 3) {
            asked.lock().unwrap().insert(id, api_key);
        }
        write_frame(&mut to_server, &frame).await?;
    }
}

/// ApiVersionsResponse v0 without ConsumerGroupHeartbeat.
fn without_heartbeat(frame: &[u8]) -> Vec<u8> {
    let mut out = frame[..6].to_vec(); // correlation id, error code
    let n = i32::from_be_bytes(frame[6..10].try_into().unwrap());
    let keys: Vec<&[u8]> = frame[10..10 + 6 * n as usize]
        .chunks(6)
        .filter(|k| i16::from_be_bytes([k[0], k[1]]) != CONSUMER_GROUP_HEARTBEAT)
        .collect();
    out.extend((keys.len() as i32).to_be_bytes());
    for k in keys {
        out.extend_from_slice(k);
    }
    out.extend_from_slice(&frame[10 + 6 * n as usize..]);
    out
}

/// FindCoordinatorResponse v3 naming this proxy as the coordinator.
fn pointing_at(frame: &[u8], port: u16) -> Vec<u8> {
    // correlation id, header tags, throttle, error code
    let mut at = 4 + 1 + 4 + 2;
    let message_len = frame[at] as usize; // compact nullable string, short
    at += 1 + message_len.saturating_sub(1);
    at += 4; // node id
    let host_len = frame[at] as usize - 1;
    let mut out = frame[..at].to_vec();
    at += 1 + host_len + 4; // host, port
    let host = b"127.0.0.1";
    out.push(host.len() as u8 + 1);
    out.extend_from_slice(host);
    out.extend(i32::from(port).to_be_bytes());
    out.extend_from_slice(&frame[at..]);
    out
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    let mut frame = vec![0; usize::try_from(len).unwrap_or(0)];
    r.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(w: &mut (impl AsyncWriteExt + Unpin), frame: &[u8]) -> std::io::Result<()> {
    w.write_all(&(frame.len() as i32).to_be_bytes()).await?;
    w.write_all(frame).await
}
