//! A TCP proxy that keeps a copy of what a client sends (a bridge's writes to InfluxDB),
//! to tell which partitions' points it wrote and when.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to one upstream and records the client-to-server bytes, until dropped.
pub(crate) struct Tap {
    address: String,
    sent: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tap {
    /// Listens on a free port of 127.0.0.1 in front of `upstream` (`host:port`).
    pub(crate) async fn start(upstream: &str) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a tap");
        let address = listener
            .local_addr()
            .expect("the tap's address")
            .to_string();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&sent);
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (record, upstream) = (Arc::clone(&record), upstream.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            record.lock().expect("tap").extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Tap {
            address,
            sent,
            task,
        }
    }

    /// `http://ip:port`, an InfluxDB URL for the bridge.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many bytes the client has sent so far.
    pub(crate) fn len(&self) -> usize {
        self.sent.lock().expect("tap").len()
    }

    /// The partitions (the `partition` tag) of the points the client sent after its first
    /// `from` bytes, with how many points each.
    pub(crate) fn partitions_since(&self, from: usize) -> std::collections::BTreeMap<i32, usize> {
        let sent = self.sent.lock().expect("tap");
        let text = String::from_utf8_lossy(sent.get(from..).unwrap_or_default());
        let mut out = std::collections::BTreeMap::new();
        for line in text.lines() {
            if let Some((_, rest)) = line.split_once(",partition=") {
                if let Some(p) = rest.split([',', ' ']).next().and_then(|p| p.parse().ok()) {
                    *out.entry(p).or_default() += 1;
                }
            }
        }
        out
    }
}
