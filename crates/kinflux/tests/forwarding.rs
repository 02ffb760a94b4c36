//! Line protocol is forwarded as written (field sections copied, canonical series keys
//! copied): InfluxDB ends up with the same points the encoder would have written, for
//! unsorted tags, escapes, repeated fields, merges, other spellings, and added tags.

mod common;

use std::collections::BTreeMap;

use common::*;
use kinflux_testkit::influx::{query, rows};
use kinflux_testkit::kafka::produce_values;
use serde_json::Value;

const LINES: &[&str] = &[
    "fwd,host=a,region=eu usage=1.50,n=3i,ok=t 1000",
    "fwd,region=eu,host=b usage=2 1000",
    "fwd,host=c\\ d usage=3,s=\"x, y=\\\"z\\\"\" 1000",
    "fwd,host=e usage=4,usage=5 1000",
    // Same series and time as the first line: merged, the later value of `n` wins.
    "fwd,host=a,region=eu n=7i 1000",
    "fwd,host=f usage=.5,n=-0i,ok=FALSE 1000",
];

/// The stored rows of `fwd`, by host, each as column name to value.
async fn stored(influx: &str, db: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let answer = query(influx, db, "SELECT * FROM \"fwd\"");
    let columns: Vec<String> = answer
        .pointer("/results/0/series/0/columns")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    rows(&answer)
        .into_iter()
        .map(|row| {
            let by_column: BTreeMap<String, Value> = columns
                .iter()
                .cloned()
                .zip(row)
                .filter(|(_, v)| !v.is_null())
                .collect();
            let host = by_column["host"].as_str().unwrap_or_default().to_owned();
            (host, by_column)
        })
        .collect()
}

async fn forward_and_check(extra: &str, site: Option<&str>) {
    let Some((brokers, influx, topic, db)) = case("fwd", 1).await else {
        return;
    };
    // Two records: the first five lines in one, the last alone.
    let values = vec![
        LINES[..5].join("\n").into_bytes(),
        format!("{}\n", LINES[5]).into_bytes(),
    ];
    produce_values(&brokers, &topic, 0, values, 1_700_000_000_000).await;

    let summary = run_until_caught_up(&config_toml(&brokers, &influx, &topic, &db, extra)).await;
    assert_eq!(summary.records_in, 2);
    assert_eq!(summary.dead_lettered, 0);

    let rows = stored(&influx, &db).await;
    let hosts: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(hosts, ["a", "b", "c d", "e", "f"]);
    let get = |host: &str, column: &str| rows[host].get(column).cloned();
    let float = |host: &str, column: &str| rows[host].get(column).and_then(Value::as_f64);
    assert_eq!(float("a", "usage"), Some(1.5));
    assert_eq!(get("a", "n"), Some(7.into()));
    assert_eq!(get("a", "ok"), Some(true.into()));
    assert_eq!(get("a", "region"), Some("eu".into()));
    assert_eq!(get("b", "region"), Some("eu".into()));
    assert_eq!(float("b", "usage"), Some(2.0));
    assert_eq!(get("c d", "s"), Some("x, y=\"z\"".into()));
    assert_eq!(float("e", "usage"), Some(5.0));
    assert_eq!(float("f", "usage"), Some(0.5));
    assert_eq!(get("f", "n"), Some(0.into()));
    assert_eq!(get("f", "ok"), Some(false.into()));
    for (host, row) in &rows {
        assert_eq!(row["time"], Value::from(1000), "{host}");
        assert_eq!(row.get("site").and_then(Value::as_str), site, "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_lines_store_what_encoding_would() {
    forward_and_check("", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_lines_get_the_configured_tags() {
    forward_and_check("[tags]\nsite = \"lab\"\n", Some("lab")).await;
}
