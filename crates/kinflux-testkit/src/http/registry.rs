//! A small schema registry serving the endpoints of Confluent's API reference
//! (<https://docs.confluent.io/platform/current/schema-registry/develop/api.html>) with its
//! documented error bodies: `GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions/latest`
//! and `POST /subjects/{subject}/versions`. It can fail, stall and demand credentials on
//! request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the registry holds and how it misbehaves; tests change it through
/// [`Registry::state`].
#[derive(Debug, Default)]
pub struct RegistryState {
    /// Schemas by id (id = index + 1).
    pub schemas: Vec<String>,
    /// Subject -> ids of its versions, oldest first.
    pub subjects: HashMap<String, Vec<u32>>,
    /// Answer this many next requests with 500 / 50001.
    pub fail_next: u32,
    /// Answer this many next requests with 429 / 42901 and `Retry-After: 1`.
    pub throttle_next: u32,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// The exact `Authorization` header required, if any.
    pub required_auth: Option<String>,
    /// Requests seen.
    pub requests: u32,
}

/// A running registry on 127.0.0.1; it stops when dropped.
#[derive(Debug)]
pub struct Registry {
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub url: String,
    /// What it holds and how it misbehaves.
    pub state: Arc<Mutex<RegistryState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Registry {
    /// Starts a registry on a free port, over plain HTTP.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Registry {
        Registry::start_with(None).await
    }

    /// Starts a registry on a free port; over HTTPS when given a TLS acceptor.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(Mutex::new(RegistryState::default()));
        let shared = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Registry {
            url: format!("{scheme}://{addr}"),
            state,
            task,
        }
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error(status: StatusCode, code: u32, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({"error_code": code, "message": message}),
    )
}

async fn handle(
    state: Arc<Mutex<RegistryState>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (delay, auth_ok, fail, throttle) = {
        let mut s = state.lock().expect("state lock");
        s.requests += 1;
        let auth_ok = match &s.required_auth {
            None => true,
            Some(want) => req
                .headers()
                .get("authorization")
                .is_some_and(|got| got.as_bytes() == want.as_bytes()),
        };
        let fail = s.fail_next > 0;
        if fail {
            s.fail_next -= 1;
        }
        let throttle = !fail && s.throttle_next > 0;
        if throttle {
            s.throttle_next -= 1;
        }
        (s.delay, auth_ok, fail, throttle)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if !auth_ok {
        return Ok(error(StatusCode::UNAUTHORIZED, 40101, "Unauthorized"));
    }
    if fail {
        return Ok(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            "Error in the backend data store",
        ));
    }
    if throttle {
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            42901,
            "Request rate limit exceeded",
        );
        answer
            .headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        return Ok(answer);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut s = state.lock().expect("state lock");
    let response = match (method.as_str(), parts.as_slice()) {
        ("GET", ["schemas", "ids", id]) => {
            match id
                .parse::<usize>()
                .ok()
                .and_then(|i| s.schemas.get(i.wrapping_sub(1)))
            {
                Some(schema) => json(StatusCode::OK, serde_json::json!({"schema": schema})),
                None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
            }
        }
        ("GET", ["subjects", subject, "versions", "latest"]) => {
            let subject = percent_decode(subject);
            match s.subjects.get(&subject) {
                Some(ids) => {
                    let id = *ids.last().expect("a subject has a version");
                    json(
                        StatusCode::OK,
                        serde_json::json!({
                            "subject": subject,
                            "id": id,
                            "version": ids.len(),
                            "schema": s.schemas[id as usize - 1],
                        }),
                    )
                }
                None => error(StatusCode::NOT_FOUND, 40401, "Subject not found"),
            }
        }
        ("POST", ["subjects", subject, "versions"]) => {
            let subject = percent_decode(subject);
            let schema = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("schema").and_then(|s| s.as_str()).map(str::to_owned));
            match schema {
                Some(text) if apache_avro::Schema::parse_str(&text).is_ok() => {
                    let id = match s.schemas.iter().position(|known| *known == text) {
                        Some(i) => i as u32 + 1,
                        None => {
                            s.schemas.push(text);
                            s.schemas.len() as u32
                        }
                    };
                    let versions = s.subjects.entry(subject).or_default();
                    if !versions.contains(&id) {
                        versions.push(id);
                    }
                    json(StatusCode::OK, serde_json::json!({"id": id}))
                }
                _ => error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found"),
    };
    Ok(response)
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
