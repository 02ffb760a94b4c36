//! `/metrics` (Prometheus text) and `/health` over HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kinflux_influx::CancellationToken;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::Metrics;

/// Binds `addr` and serves the metrics until `stop` is cancelled. Returns once the socket
/// is bound, so a bad address fails at start-up.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "serving /metrics and /health");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, metrics.clone()));
                // A client may shut its side down right after the request (`nc -N`, some
                // health checkers); without half-close support hyper drops the connection
                // on that EOF before it answers (found by the metrics_http fuzz target).
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    }))
}

async fn answer(
    req: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render_prometheus(),
        ),
        "/health" => (
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Regression (metrics_http fuzz target): a client that shuts down its write side
    /// right after its request still gets the answer, every time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_half_closes_after_its_request_gets_an_answer() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        let stop = CancellationToken::new();
        let server = serve(addr, Arc::new(Metrics::new()), stop.clone())
            .await
            .expect("bind");
        for _ in 0..50 {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .expect("write");
            s.shutdown().await.expect("half-close");
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.expect("read");
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&answer)
            );
        }
        stop.cancel();
        server.await.expect("server task");
    }
}
