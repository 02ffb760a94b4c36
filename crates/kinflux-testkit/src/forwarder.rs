//! A TCP forwarder in front of a real server: it counts the connections a client opens
//! (to show that a refused client does not try again and again), and it can listen on
//! another loopback address than the server's (to connect by a host name or address that
//! the server's certificate does not name).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards every connection to one upstream address, byte for byte, until dropped.
#[derive(Debug)]
pub struct Forwarder {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forwarder {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(upstream: &str) -> Forwarder {
        Forwarder::start_on(IpAddr::from([127, 0, 0, 1]), upstream).await
    }

    /// Listens on a free port of `ip` (any loopback address, 127.0.0.2 say, on Linux) and
    /// forwards to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no port of `ip` can be bound.
    pub async fn start_on(ip: IpAddr, upstream: &str) -> Forwarder {
        let listener = TcpListener::bind((ip, 0))
            .await
            .unwrap_or_else(|e| panic!("bind a forwarder on {ip}: {e}"));
        let address = listener.local_addr().expect("the forwarder's address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Forwarder {
            address,
            accepted,
            task,
        }
    }

    /// The address clients connect to, `ip:port`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bytes_go_both_ways_and_connections_are_counted() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = echo.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let forwarder = Forwarder::start(&upstream).await;
        for n in 1..=2 {
            let mut c = TcpStream::connect(forwarder.address())
                .await
                .expect("connect");
            c.write_all(b"ping").await.expect("write");
            let mut got = [0u8; 4];
            c.read_exact(&mut got).await.expect("read");
            assert_eq!(&got, b"ping");
            assert_eq!(forwarder.connections(), n);
        }
    }
}
