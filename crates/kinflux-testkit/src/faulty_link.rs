//! A bad network link as a TCP proxy (this kernel has no netem): every chunk of bytes is
//! held for a latency (plus jitter) before it goes on, in order, and with a given
//! probability a chunk is lost, which on TCP means the connection breaks (both sides are
//! reset), as a lossy path ends in a timed-out or reset connection. The faults can be
//! changed while connections run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::names::random_u64;

/// What the link does to the bytes it carries.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// How long each chunk is held.
    pub latency: Duration,
    /// Up to this much more, at random, per chunk (order is kept).
    pub jitter: Duration,
    /// The probability (0 to 1) that a chunk is lost, breaking its connection.
    pub loss: f64,
}

/// What went through the link so far.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    broken: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A proxy with [`Faults`] in front of one upstream address, until dropped.
#[derive(Debug)]
pub struct FaultyLink {
    address: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl Drop for FaultyLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A random number in [0, 1).
fn unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultyLink {
    /// Listens on a free port of `ip` and carries every connection to `upstream`
    /// (`host:port`) with `faults`. Call from a tokio runtime.
    ///
    /// # Panics
    /// When no port of `ip` can be bound.
    pub async fn start(ip: &str, upstream: &str, faults: Faults) -> FaultyLink {
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("bind a faulty link on {ip}: {e}"));
        let address = listener.local_addr().expect("the link's address");
        let faults = Arc::new(Mutex::new(faults));
        let counters = Arc::new(Counters::default());
        let (f, c) = (Arc::clone(&faults), Arc::clone(&counters));
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                c.connections.fetch_add(1, Ordering::Relaxed);
                let (f, c, upstream) = (Arc::clone(&f), Arc::clone(&c), upstream.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        carry(client, server, f, c).await;
                    }
                });
            }
        });
        FaultyLink {
            address,
            faults,
            counters,
            task,
        }
    }

    /// The address clients connect to, `ip:port`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Changes the faults; connections already open follow from their next chunk on.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Connections broken by a lost chunk so far.
    pub fn broken(&self) -> u64 {
        self.counters.broken.load(Ordering::Relaxed)
    }

    /// Bytes carried client to server, and server to client.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counters.bytes_up.load(Ordering::Relaxed),
            self.counters.bytes_down.load(Ordering::Relaxed),
        )
    }
}

/// Carries both directions until either side closes or a chunk is lost; a loss resets
/// both connections (SO_LINGER 0).
async fn carry(
    client: TcpStream,
    server: TcpStream,
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
) {
    // A zero linger resets at once on drop, so it never blocks the thread (what the
    // deprecation warns about); it is how a loss shows on the wire.
    #[expect(deprecated, reason = "SO_LINGER 0 does not block on drop")]
    {
        let _ = client.set_linger(Some(Duration::ZERO));
        let _ = server.set_linger(Some(Duration::ZERO));
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = one_way(
        client_read,
        server_write,
        Arc::clone(&faults),
        Arc::clone(&counters),
        true,
    );
    let down = one_way(
        server_read,
        client_write,
        faults,
        Arc::clone(&counters),
        false,
    );
    // Either direction ending (a close, or a loss) ends the other: the halves drop.
    let lost = tokio::select! {
        lost = up => lost,
        lost = down => lost,
    };
    if lost {
        counters.broken.fetch_add(1, Ordering::Relaxed);
    }
}

/// One direction: a reader that stamps each chunk with the time it may leave, and a
/// writer that sends it then. `true` when a chunk was lost.
async fn one_way(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: Arc<Mutex<Faults>>,
    counters: Arc<Counters>,
    up: bool,
) -> bool {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            let n = chunk.len() as u64;
            if up {
                counters.bytes_up.fetch_add(n, Ordering::Relaxed);
            } else {
                counters.bytes_down.fetch_add(n, Ordering::Relaxed);
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let f = *faults.lock().expect("faults lock");
            if f.loss > 0.0 && unit() < f.loss {
                return true;
            }
            let delay = f.latency + f.jitter.mul_f64(unit());
            // Never before an earlier chunk: the order of a TCP stream is kept.
            last = last.max(Instant::now() + delay);
            if tx.send((last, buf[..n].to_vec())).is_err() {
                return false;
            }
        }
    };
    tokio::pin!(writer);
    tokio::select! {
        lost = reader => {
            if lost {
                return true;
            }
            // The reader closed cleanly: let what is queued go out first.
            writer.await;
            false
        }
        () = &mut writer => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo() -> String {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = echo.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn chunks_are_held_for_the_latency_and_kept_in_order() {
        let link = FaultyLink::start(
            "127.0.0.1",
            &echo().await,
            Faults {
                latency: Duration::from_millis(150),
                ..Faults::default()
            },
        )
        .await;
        let mut c = TcpStream::connect(link.address()).await.expect("connect");
        let started = std::time::Instant::now();
        c.write_all(b"one,").await.expect("write");
        c.write_all(b"two").await.expect("write");
        let mut got = [0u8; 7];
        c.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"one,two");
        // Held on the way there and on the way back.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(link.bytes(), (7, 7));
        assert_eq!(link.broken(), 0);
    }

    #[tokio::test]
    async fn a_lost_chunk_resets_the_connection() {
        let link = FaultyLink::start("127.0.0.1", &echo().await, Faults::default()).await;
        let mut c = TcpStream::connect(link.address()).await.expect("connect");
        c.write_all(b"fine").await.expect("write");
        let mut got = [0u8; 4];
        c.read_exact(&mut got).await.expect("read");
        link.set(Faults {
            loss: 1.0,
            ..Faults::default()
        });
        c.write_all(b"lost").await.expect("write");
        let read = c.read(&mut got).await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the connection survived: {read:?}"
        );
        assert_eq!(link.broken(), 1);
        assert_eq!(link.connections(), 1);
    }
}
