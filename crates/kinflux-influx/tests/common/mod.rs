//! Helpers shared by the integration tests: where the real InfluxDB is, a private
//! influxd for tests that need special settings, queries, and a scripted HTTP server for
//! the v2/v3 APIs (which cannot be installed here).
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The shared InfluxDB from `KINFLUX_INFLUX_URL`. Unset: panics under `CI=true`, else
/// prints a loud SKIPPED line and returns `None`.
pub fn influx_url(test: &str) -> Option<String> {
    match std::env::var("KINFLUX_INFLUX_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("KINFLUX_INFLUX_URL must be set in CI (run scripts/services start)");
            }
            eprintln!("SKIPPED (no KINFLUX_INFLUX_URL): {test}");
            None
        }
    }
}

/// The influxd binary for tests that start their own. Unset or missing: same rule as
/// [`influx_url`].
pub fn influxd_binary(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("KINFLUX_INFLUXD").unwrap_or_else(|_| "/usr/bin/influxd".to_owned()),
    );
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "influxd not found at {} (install the influxdb package)",
            path.display()
        );
    }
    eprintln!("SKIPPED (no influxd at {}): {test}", path.display());
    None
}

/// A name unique to this test run, for databases.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST /query` (form-encoded) and the JSON answer. `epoch=ns` so times are integers.
pub async fn query(url: &str, db: &str, q: &str, auth: Option<(&str, &str)>) -> serde_json::Value {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("db", db)
        .append_pair("q", q)
        .append_pair("epoch", "ns")
        .finish();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(format!("{url}/query"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((user, password)) = auth {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header("authorization", format!("Basic {token}"));
    }
    let response = client
        .request(request.body(Full::new(Bytes::from(form))).unwrap())
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Drops a test database (tests call it once their checks passed, so a failing test
/// leaves its data to look at).
pub async fn drop_database(url: &str, db: &str) {
    let answer = query(url, db, &format!("DROP DATABASE \"{db}\""), None).await;
    assert!(answer.pointer("/results/0/error").is_none(), "{answer}");
}

/// The rows of the first series of a query answer (empty when there is none).
pub fn rows(answer: &serde_json::Value) -> Vec<Vec<serde_json::Value>> {
    answer
        .pointer("/results/0/series/0/values")
        .and_then(|v| v.as_array())
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// `SELECT count(FIELD)` as a number (0 when there is no data).
pub async fn count(url: &str, db: &str, measurement: &str, field: &str) -> u64 {
    let answer = query(
        url,
        db,
        &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
        None,
    )
    .await;
    rows(&answer)
        .first()
        .and_then(|r| r.get(1))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// An influxd of the test's own, on free ports with its own temporary folders; killed on
/// drop. Can be stopped and started again on the same port and data.
pub struct OwnInflux {
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl OwnInflux {
    /// Starts influxd with extra `[http]` settings (e.g. `auth-enabled = true`).
    pub async fn start(binary: PathBuf, http_extra: &str) -> OwnInflux {
        let dir = std::env::temp_dir().join(unique_name("kinflux-influxd"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let rpc = free_port();
        let d = dir.display();
        let config = dir.join("influxd.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n{http_extra}\n\
                 [monitor]\n  store-enabled = false\n"
            ),
        )
        .unwrap();
        let mut own = OwnInflux {
            binary,
            dir,
            config,
            port,
            child: None,
        };
        own.resume().await;
        own
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the (stopped) server again and waits until it answers.
    pub async fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.join("influxd.log")).unwrap();
        let child = Command::new(&self.binary)
            .arg("-config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut log = String::new();
        std::fs::File::open(self.dir.join("influxd.log"))
            .unwrap()
            .read_to_string(&mut log)
            .unwrap();
        panic!("influxd did not start on port {}:\n{log}", self.port);
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnInflux {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request the scripted server received, body gunzipped when it was gzip.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
    pub fn no_content() -> Reply {
        Reply::new(204, "")
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A small HTTP server that answers from a script (the last reply repeats) and records
/// every request; it also tracks how many requests were in flight at most.
pub struct ScriptedServer {
    pub url: String,
    state: Arc<ScriptState>,
    task: tokio::task::JoinHandle<()>,
}

struct ScriptState {
    replies: Mutex<VecDeque<Reply>>,
    recorded: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicUsize,
}

impl ScriptedServer {
    pub async fn start(replies: Vec<Reply>) -> ScriptedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
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

    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.recorded.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

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
            .unwrap();
        out
    } else {
        raw.to_vec()
    };
    state.recorded.lock().unwrap().push(Recorded {
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
        let mut replies = state.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front().unwrap()
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
    response.body(Full::new(Bytes::from(reply.body))).unwrap()
}
