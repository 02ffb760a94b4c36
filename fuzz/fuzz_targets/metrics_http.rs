//! Arbitrary bytes sent to the `/metrics` and `/health` server over a real loopback
//! socket: the server must answer or close, never panic, and must keep serving a good
//! request afterwards.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use kinflux::Metrics;
use kinflux::influx::CancellationToken;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

struct Server {
    runtime: Runtime,
    addr: SocketAddr,
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = runtime.block_on(async {
        // Bind an ephemeral port first to learn a free one, then let `serve` bind it.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let handle =
            kinflux::metrics::serve(addr, Arc::new(Metrics::new()), CancellationToken::new())
                .await
                .expect("serve binds");
        std::mem::forget(handle);
        addr
    });
    Server { runtime, addr }
});

async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        panic!("metrics server stopped accepting");
    };
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    out
}

fuzz_target!(|data: &[u8]| {
    let server = &*SERVER;
    server.runtime.block_on(async {
        let _ = exchange(server.addr, data).await;
        let good = exchange(
            server.addr,
            b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(
            good.starts_with(b"HTTP/1.1 200"),
            "server no longer answers /health: {:?}",
            String::from_utf8_lossy(&good)
        );
    });
});
