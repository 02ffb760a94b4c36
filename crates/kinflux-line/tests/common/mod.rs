//! Shared helpers for tests that need a real InfluxDB: finding it, and a minimal HTTP
//! client (HTTP/1.0 over `std::net`, so no client dependency is needed).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The InfluxDB base URL from `KINFLUX_INFLUX_URL`. Without it: panics when `CI=true`,
/// otherwise prints a loud SKIPPED line and returns `None`.
pub(crate) fn influx_url(test: &str) -> Option<String> {
    match std::env::var("KINFLUX_INFLUX_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_owned()),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "KINFLUX_INFLUX_URL is not set, and CI=true: start InfluxDB with scripts/services start"
            )
        }
        _ => {
            eprintln!("SKIPPED (no KINFLUX_INFLUX_URL): {test}");
            None
        }
    }
}

/// A database name no other test or run uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// Percent-encodes a query-string value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request and returns the status code and body.
pub(crate) fn request(
    base: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> (u16, String) {
    let authority = base
        .strip_prefix("http://")
        .expect("KINFLUX_INFLUX_URL must be http://HOST:PORT");
    let mut stream = TcpStream::connect(authority).expect("connect to InfluxDB");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path_and_query} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs an InfluxQL statement (POST, for statements that change things).
pub(crate) fn exec(base: &str, q: &str) {
    let (status, body) = request(base, "POST", &format!("/query?q={}", encode(q)), b"");
    assert_eq!(status, 200, "{q}: {body}");
}

/// Runs an InfluxQL query in `db` with nanosecond epochs and returns the JSON answer.
pub(crate) fn query(base: &str, db: &str, q: &str) -> serde_json::Value {
    let (status, body) = request(
        base,
        "GET",
        &format!("/query?db={}&epoch=ns&q={}", encode(db), encode(q)),
        b"",
    );
    assert_eq!(status, 200, "{q}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
