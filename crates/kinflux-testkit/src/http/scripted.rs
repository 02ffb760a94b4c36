//! An HTTP server that answers from a script and records every request: it stands in for
//! InfluxDB's v2 and v3 write APIs, which cannot be installed here. The answers are the
//! test's; each test cites the documentation page its answer bodies come from (the v2
//! API reference and troubleshooting pages, the v3 `write_lp` page).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request the scripted server received, its body gunzipped when it was gzip.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target, e.g. `/api/v2/write?org=o&bucket=b`.
    pub path_and_query: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The body, decompressed.
    pub body: Vec<u8>,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers; `content-type: application/json` unless replaced.
    pub headers: Vec<(&'static str, String)>,
    /// Body text.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `status` with a JSON `body`.
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// 204 and no body: a write InfluxDB accepted.
    pub fn no_content() -> Reply {
        Reply::new(204, "")
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Answers only after `delay`.
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A server on 127.0.0.1 that answers request N with reply N of its script (the last
/// reply repeats), records every request, and counts connections and the most requests
/// in flight at once. It stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<ScriptState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct ScriptState {
    replies: Mutex<VecDeque<Reply>>,
    recorded: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicUsize,
}

impl ScriptedServer {
    /// Starts a server on a free port that answers with `replies` in order.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(replies: Vec<Reply>) -> ScriptedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let state = Arc::new(ScriptState {
            replies: Mutex::new(replies.into()),
            recorded: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ScriptedServer { url, state, task }
    }

    /// Every request so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().expect("recorded lock").clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(state: &ScriptState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let raw = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let gzipped = parts
        .headers
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("a gzip body the writer compressed");
        out
    } else {
        raw.to_vec()
    };
    state
        .recorded
        .lock()
        .expect("recorded lock")
        .push(Recorded {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
            body,
        });
    let reply = {
        let mut replies = state.replies.lock().expect("replies lock");
        if replies.len() > 1 {
            replies.pop_front().expect("more than one reply")
        } else {
            replies.front().cloned().unwrap_or_else(Reply::no_content)
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a valid scripted reply")
}
