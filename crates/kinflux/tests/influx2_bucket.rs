//! The bridge against the real InfluxDB 2.7 (`KINFLUX_INFLUX2_URL`): `api = "v2"` with
//! `create_bucket = true` creates the missing bucket with `bucket_retention`, and the
//! records land in it.

mod common;

use common::*;
use kinflux_testkit::influx2::Influx2;
use kinflux_testkit::kafka::produce_values;

#[tokio::test]
async fn create_bucket_makes_the_bucket_with_its_retention_and_records_land() {
    let Some(brokers) = kinflux_testkit::require("KINFLUX_KAFKA_BROKERS") else {
        return;
    };
    let Some(server) = Influx2::from_env() else {
        return;
    };
    let topic = kinflux_testkit::unique("v2bucket");
    let bucket = kinflux_testkit::unique("kinflux_v2_bridge");
    kinflux_testkit::kafka::create_topic(&brokers, &topic, 1).await;
    let now_ms = recent_ms();
    let values = (0..3)
        .map(|i| format!("b2,n={i} v={i}i {}", (now_ms + i) * 1_000_000).into_bytes())
        .collect();
    produce_values(&brokers, &topic, 0, values, now_ms).await;
    let config = format!(
        r#"
[kafka]
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{topic}_group"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

[influx]
url = "{url}"
api = "v2"
org = "{org}"
bucket = "{bucket}"
token = "{token}"
create_bucket = true
bucket_retention = "30d"

[dead_letter]
topic = "{topic}_dlq"
"#,
        url = server.url,
        org = server.org,
        token = server.token,
    );
    let summary = run_until_caught_up(&config).await;
    assert_eq!(summary.points_written, 3, "{summary:?}");
    let created = server
        .bucket(&bucket)
        .expect("the bridge created the bucket");
    assert_eq!(
        created["retentionRules"][0]["everySeconds"],
        30 * 86_400,
        "{created}"
    );
    assert_eq!(server.count(&bucket, "b2", "v"), 3);
    server.delete_bucket(&bucket);
}
