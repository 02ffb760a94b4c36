//! InfluxDB 1.x from the test's side, over its v1 HTTP API (`/query`, `/write`) with the
//! blocking client of [`crate::http`]: queries, rows, counts, and databases to create and
//! drop. Every call panics when InfluxDB cannot be reached or answers with an error status.

use base64::Engine as _;
use serde_json::Value;

use crate::http::{self, Answer};

/// The InfluxDB 1.x servers a v1 test runs on, each in turn: `KINFLUX_INFLUX_URL`
/// (Debian's 1.6.7, under the [`crate::require`] rule) and `KINFLUX_INFLUX1X_URL` (the
/// current 1.x), which is required as well when `KINFLUX_INFLUX1X=1` and used when set.
/// Empty after a `SKIPPED` line when nothing is configured.
///
/// # Panics
/// Under `CI=true` when a required variable is missing.
pub fn v1_servers() -> Vec<String> {
    let mut servers: Vec<String> = crate::require("KINFLUX_INFLUX_URL").into_iter().collect();
    let current = if std::env::var("KINFLUX_INFLUX1X").is_ok_and(|v| v == "1") {
        crate::require("KINFLUX_INFLUX1X_URL")
    } else {
        std::env::var("KINFLUX_INFLUX1X_URL")
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    servers.extend(current);
    servers
}

/// The version InfluxDB at `url` reports in `X-Influxdb-Version` on `GET /ping`
/// (`1.6.7~rc0`, `1.13.2`, `v2.7.12`).
///
/// # Panics
/// When InfluxDB cannot be reached or sends no version.
pub fn version(url: &str) -> String {
    let answer = http::get(&format!("{url}/ping")).expect("InfluxDB answers /ping");
    answer
        .header("x-influxdb-version")
        .expect("InfluxDB names its version on /ping")
        .to_owned()
}

/// `POST /query` of `q` in `db` (empty for none), with integer times (`epoch=ns`): the
/// JSON answer. Statement errors (an unknown database, say) are in the answer, under
/// `/results/N/error`.
///
/// # Panics
/// When InfluxDB cannot be reached or the status is not 200.
pub fn query(url: &str, db: &str, q: &str) -> Value {
    send_query(url, db, q, None)
}

/// [`query`] as `user` with `password` (HTTP basic authentication).
///
/// # Panics
/// When InfluxDB cannot be reached or the status is not 200 (a wrong password, say).
pub fn query_as(url: &str, db: &str, q: &str, user: &str, password: &str) -> Value {
    send_query(url, db, q, Some((user, password)))
}

fn send_query(url: &str, db: &str, q: &str, auth: Option<(&str, &str)>) -> Value {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("db", db)
        .append_pair("epoch", "ns")
        .append_pair("q", q)
        .finish();
    let authorization = auth.map(|(user, password)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    });
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    let answer = http::request("POST", &format!("{url}/query"), &headers, form.as_bytes())
        .unwrap_or_else(|e| panic!("query InfluxDB at {url}: {e}"));
    assert_eq!(answer.status, 200, "{q}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{q}: {e}: {}", answer.body))
}

/// Runs a statement that changes something (`CREATE ...`, `DROP ...`) and checks that
/// InfluxDB reports no error.
///
/// # Panics
/// When the statement fails.
pub fn exec(url: &str, statement: &str) {
    let answer = query(url, "", statement);
    assert!(
        answer.pointer("/results/0/error").is_none(),
        "{statement}: {answer}"
    );
}

/// `CREATE DATABASE "db"` (a no-op when it exists).
///
/// # Panics
/// When InfluxDB refuses.
pub fn create_database(url: &str, db: &str) {
    exec(url, &format!("CREATE DATABASE \"{db}\""));
}

/// `DROP DATABASE "db"`. Tests call it once their checks passed, so a failing test leaves
/// its data to look at.
///
/// # Panics
/// When InfluxDB refuses.
pub fn drop_database(url: &str, db: &str) {
    exec(url, &format!("DROP DATABASE \"{db}\""));
}

/// The rows of the first series of an answer (empty when there is none).
pub fn rows(answer: &Value) -> Vec<Vec<Value>> {
    answer
        .pointer("/results/0/series/0/values")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| row.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// `SELECT count("field") FROM "measurement"` in `db`: 0 when there is no data, or no
/// such database yet.
///
/// # Panics
/// When InfluxDB cannot be reached.
pub fn count(url: &str, db: &str, measurement: &str, field: &str) -> u64 {
    let answer = query(
        url,
        db,
        &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
    );
    rows(&answer)
        .first()
        .and_then(|row| row.get(1))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// `POST /write` of a line-protocol `body` into `db` with `precision` (`n`, `u`, `ms`,
/// `s`): the answer as it is, for tests about what InfluxDB accepts.
///
/// # Panics
/// When InfluxDB cannot be reached.
pub fn write(url: &str, db: &str, precision: &str, body: &[u8]) -> Answer {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("db", db)
        .append_pair("precision", precision)
        .finish();
    http::request("POST", &format!("{url}/write?{query}"), &[], body)
        .unwrap_or_else(|e| panic!("write to InfluxDB at {url}: {e}"))
}
