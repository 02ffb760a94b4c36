//! InfluxDB 2.x from the test's side (`KINFLUX_INFLUX2_URL`, `KINFLUX_INFLUX2_TOKEN`,
//! `KINFLUX_INFLUX2_ORG`): Flux queries read back as CSV rows, counts, and buckets to look
//! up and delete, over the blocking client of [`crate::http`]. Every call panics when
//! InfluxDB cannot be reached or answers with an error status.

use serde_json::Value;

use crate::http;

/// Where the server is and who the test is.
#[derive(Clone)]
pub struct Influx2 {
    /// Base URL, `http://127.0.0.1:8087`.
    pub url: String,
    /// An all-access token.
    pub token: String,
    /// The org name.
    pub org: String,
}

impl std::fmt::Debug for Influx2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Influx2")
            .field("url", &self.url)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

impl Influx2 {
    /// The server from `KINFLUX_INFLUX2_URL`, `_TOKEN` and `_ORG`, or `None` after the
    /// [`crate::require`] rule.
    ///
    /// # Panics
    /// Under `CI=true` when one of them is missing.
    pub fn from_env() -> Option<Influx2> {
        Some(Influx2 {
            url: crate::require("KINFLUX_INFLUX2_URL")?,
            token: crate::require("KINFLUX_INFLUX2_TOKEN")?,
            org: crate::require("KINFLUX_INFLUX2_ORG")?,
        })
    }

    fn call(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> http::Answer {
        let auth = format!("Token {}", self.token);
        let answer = http::request(
            method,
            &format!("{}{path}", self.url),
            &[("Authorization", &auth), ("Content-Type", content_type)],
            body,
        )
        .unwrap_or_else(|e| panic!("InfluxDB 2 at {} cannot be reached: {e}", self.url));
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        answer
    }

    /// Runs a Flux query; the annotated-CSV answer as rows of cells (header rows
    /// included, empty lines dropped).
    pub fn flux(&self, query: &str) -> Vec<Vec<String>> {
        let answer = self.call(
            "POST",
            &format!("/api/v2/query?org={}", self.org),
            "application/vnd.flux",
            query.as_bytes(),
        );
        answer
            .body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim_end().split(',').map(str::to_owned).collect())
            .collect()
    }

    /// `_time` and `_value` of `field` of `measurement` in `bucket`, in time order.
    pub fn values(&self, bucket: &str, measurement: &str, field: &str) -> Vec<(String, String)> {
        let rows = self.flux(&format!(
            r#"from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}") |> keep(columns: ["_time", "_value"]) |> sort(columns: ["_time"])"#
        ));
        let Some(header) = rows.first() else {
            return Vec::new();
        };
        let time = header
            .iter()
            .position(|c| c == "_time")
            .expect("a _time column");
        let value = header
            .iter()
            .position(|c| c == "_value")
            .expect("a _value column");
        rows[1..]
            .iter()
            .map(|r| (r[time].clone(), r[value].clone()))
            .collect()
    }

    /// How many values `field` of `measurement` holds in `bucket`.
    pub fn count(&self, bucket: &str, measurement: &str, field: &str) -> usize {
        self.values(bucket, measurement, field).len()
    }

    /// The bucket named `name` as `GET /api/v2/buckets?name=` returns it, if it exists.
    pub fn bucket(&self, name: &str) -> Option<Value> {
        let answer = self.call(
            "GET",
            &format!("/api/v2/buckets?name={name}"),
            "application/json",
            b"",
        );
        let value: Value = serde_json::from_str(&answer.body).expect("a JSON bucket list");
        value.pointer("/buckets/0").cloned()
    }

    /// Deletes the bucket named `name`, if it exists.
    pub fn delete_bucket(&self, name: &str) {
        if let Some(id) = self
            .bucket(name)
            .and_then(|b| b["id"].as_str().map(str::to_owned))
        {
            self.call(
                "DELETE",
                &format!("/api/v2/buckets/{id}"),
                "application/json",
                b"",
            );
        }
    }
}
