//! The whole pipeline over SASL_SSL with SCRAM-SHA-512, configured as a user would in
//! `[kafka]`: the consumer's group and fetch connections and the dead-letter producer all
//! verify the broker against the CA from `scripts/services` and authenticate.

mod common;

use common::*;
use kinflux_testkit::influx::count;
use kinflux_testkit::kafka::{produce_values, read_all};
use kinflux_testkit::{kafka, require_or_skip, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_runs_over_sasl_ssl_with_scram_sha_512() {
    let (plain, secured, ca, user, password, influx) = require_or_skip!(
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_SASL_SSL_BROKERS",
        "KINFLUX_KAFKA_CA_FILE",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_SASL_PASSWORD",
        "KINFLUX_INFLUX_URL"
    );
    let topic = unique("sasl_ssl");
    let db = unique("sasl_ssl_db");
    kafka::create_topic(&plain, &topic, 2).await;
    for p in 0..2 {
        let values = (0..100)
            .map(|i| {
                if i == 50 {
                    b"not line protocol at all".to_vec()
                } else {
                    format!("secure,p={p} v={i}i {}\n", 1_600_000_000_000_000_000i64 + i)
                        .into_bytes()
                }
            })
            .collect();
        produce_values(&plain, &topic, p, values, 1_700_000_000_000).await;
    }
    let config = BridgeConfig::new(&secured, &influx, &topic, &db)
        .kafka(&format!(
            "tls = {{ ca_file = \"{ca}\" }}\n\
             sasl = {{ mechanism = \"SCRAM-SHA-512\", username = \"{user}\", password = \"{password}\" }}"
        ))
        .toml();
    let parsed = kinflux::Config::from_toml(&config).expect("valid configuration");
    let shown = format!("{parsed:?}");
    assert!(
        shown.contains("ScramSha512") && !shown.contains(&password),
        "{shown}"
    );

    let summary = run_until_caught_up(&config).await;
    assert_eq!(summary.records_in, 200);
    assert_eq!(summary.points_written, 198);
    assert_eq!(summary.dead_lettered, 2);
    assert_eq!(count(&influx, &db, "secure", "v"), 198);
    // The dead-letter producer wrote over SASL_SSL too; read back over PLAINTEXT.
    let dead = read_all(&plain, &format!("{topic}_dlq"), 0).await;
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|r| r.record.value.as_deref() == Some(&b"not line protocol at all"[..]))
    );
}
