//! `Consumer::connect` against a cluster whose group coordinator is not ready yet. A new
//! cluster answers FindCoordinator with COORDINATOR_NOT_AVAILABLE while it creates
//! `__consumer_offsets`; a proxy in front of the real broker (`KINFLUX_KAFKA_BROKERS`)
//! gives that answer to the first FindCoordinator requests and passes everything else
//! through.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::*;
use kinflux_kafka::Consumer;
use kinflux_testkit::kafka::{bootstrap, create_topic};
use kinflux_testkit::{require_or_skip, unique};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedWriteHalf},
    sync::Mutex,
};

const FIND_COORDINATOR: i16 = 10;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_waits_for_a_coordinator_that_is_not_ready_yet() {
    let brokers = require_or_skip!("KINFLUX_KAFKA_BROKERS");
    let topic = unique("coordinator-wait");
    let group = unique("g-coordinator-wait");
    create_topic(&brokers, &topic, 1).await;
    produce_range(&brokers, &topic, 0, 0, 3).await;
    let refuse = Arc::new(AtomicUsize::new(3));
    let proxy = start_proxy(bootstrap(&brokers)[0].clone(), Arc::clone(&refuse)).await;

    let mut c = Consumer::connect(config(&proxy, &group, &[&topic]))
        .await
        .expect("connect waits until the coordinator is there");
    assert_eq!(refuse.load(Ordering::SeqCst), 0, "every refusal was seen");
    let seen = recv_until(&mut c, Duration::from_secs(30), |rs| rs.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    c.close().await.unwrap();
}

/// A TCP proxy to `upstream` that answers the first `refuse` FindCoordinator (v3)
/// requests itself, with COORDINATOR_NOT_AVAILABLE. Returns its address.
async fn start_proxy(upstream: String, refuse: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let refuse = Arc::clone(&refuse);
            tokio::spawn(async move {
                let _ = relay(client, &upstream, &refuse).await;
            });
        }
    });
    addr
}

async fn relay(client: TcpStream, upstream: &str, refuse: &AtomicUsize) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (mut from_client, to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let to_client = Arc::new(Mutex::new(to_client));
    let answers = Arc::clone(&to_client);
    tokio::spawn(async move {
        while let Ok(frame) = read_frame(&mut from_server).await {
            if write_frame(&answers, &frame).await.is_err() {
                return;
            }
        }
    });
    loop {
        let frame = read_frame(&mut from_client).await?;
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = [frame[4], frame[5], frame[6], frame[7]];
        let refused = api_key == FIND_COORDINATOR
            && version == 3
            && refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if refused {
            write_frame(&to_client, &not_available_v3(correlation_id)).await?;
        } else {
            to_server
                .write_all(&(frame.len() as i32).to_be_bytes())
                .await?;
            to_server.write_all(&frame).await?;
        }
    }
}

/// FindCoordinatorResponse v3 (flexible: response header v1) with COORDINATOR_NOT_AVAILABLE.
fn not_available_v3(correlation_id: [u8; 4]) -> Vec<u8> {
    let mut body = correlation_id.to_vec();
    body.push(0); // header tagged fields
    body.extend(0i32.to_be_bytes()); // throttle_time_ms
    body.extend(COORDINATOR_NOT_AVAILABLE.to_be_bytes());
    body.push(0); // error_message: null
    body.extend((-1i32).to_be_bytes()); // node_id
    body.push(1); // host: ""
    body.extend((-1i32).to_be_bytes()); // port
    body.push(0); // tagged fields
    body
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    let mut frame = vec![0; usize::try_from(len).unwrap_or(0)];
    r.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(w: &Mutex<OwnedWriteHalf>, frame: &[u8]) -> std::io::Result<()> {
    let mut w = w.lock().await;
    w.write_all(&(frame.len() as i32).to_be_bytes()).await?;
    w.write_all(frame).await
}
