//! `kinflux check-config --connect` against the real servers: one line per check, every
//! check passing for a good configuration, and the failing check named (and a non-zero
//! exit) for a wrong SASL password, a missing topic, a missing database, a wrong token and
//! an unreachable registry.

use std::path::Path;
use std::process::Command;

use kinflux_testkit::{free_port, kafka, require, unique};

/// Runs `check-config --connect` on `toml`: the exit status and the check lines.
fn connect(dir: &Path, toml: &str) -> (Option<i32>, Vec<String>, String) {
    let path = dir.join(format!("{}.toml", unique("c")));
    std::fs::write(&path, toml).expect("write the config");
    let out = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .env_remove("RUST_LOG")
        .args(["check-config", "--connect", "--config"])
        .arg(&path)
        .output()
        .expect("run kinflux");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks = stdout
        .lines()
        .filter(|l| l.starts_with("ok    ") || l.starts_with("FAIL  "))
        .map(str::to_owned)
        .collect();
    (
        out.status.code(),
        checks,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn failed(checks: &[String]) -> Vec<&str> {
    checks
        .iter()
        .filter(|l| l.starts_with("FAIL"))
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_server_is_checked_and_each_failure_named() {
    let vars = [
        "KINFLUX_KAFKA_BROKERS",
        "KINFLUX_KAFKA_SASL_PLAINTEXT_BROKERS",
        "KINFLUX_KAFKA_SASL_USERNAME",
        "KINFLUX_KAFKA_SASL_PASSWORD",
        "KINFLUX_INFLUX_URL",
        "KINFLUX_INFLUX2_URL",
        "KINFLUX_INFLUX2_TOKEN",
        "KINFLUX_INFLUX2_ORG",
        "KINFLUX_INFLUX2_BUCKET",
        "KINFLUX_REGISTRY_URL",
    ];
    let Some(v) = vars
        .iter()
        .map(|v| require(v))
        .collect::<Option<Vec<String>>>()
    else {
        return;
    };
    let [
        plain,
        sasl,
        user,
        password,
        influx1,
        influx2,
        token,
        org,
        bucket,
        registry,
    ] = <[String; 10]>::try_from(v).expect("ten variables");
    let topic = unique("connect");
    kafka::create_topic(&plain, &topic, 3).await;
    let database = topic.replace('-', "_");
    kinflux_testkit::influx::create_database(&influx1, &database);
    let dir = tempfile::tempdir().expect("temp dir");

    // Two brokers (plaintext and SASL over the same cluster), v2 with its token, a registry.
    let kafka = |brokers: &str, password: &str, topics: &str| {
        format!(
            "[kafka]\nbrokers = [{brokers}]\ntopics = [{topics}]\ngroup_id = \"g\"\n\
             sasl = {{ mechanism = \"SCRAM-SHA-256\", username = \"{user}\", password = \"{password}\" }}\n"
        )
    };
    let avro = format!(
        "[decode]\nformat = \"avro\"\nregistry_url = \"{registry}\"\n\
         mapping = {{ measurement = {{ constant = \"m\" }}, fields = [\"v\"] }}\n"
    );
    let v2 = |token: &str| {
        format!(
            "[influx]\nurl = \"{influx2}\"\napi = \"v2\"\norg = \"{org}\"\nbucket = \"{bucket}\"\ntoken = \"{token}\"\n"
        )
    };
    let good = format!(
        "{}{avro}{}[dead_letter]\ntopic = \"{topic}_dlq\"\n",
        kafka(&format!("\"{sasl}\""), &password, &format!("\"{topic}\"")),
        v2(&token)
    );
    let (code, checks, stderr) = connect(dir.path(), &good);
    assert_eq!(code, Some(0), "{checks:#?}\n{stderr}");
    for expected in [
        format!("ok    kafka broker {sasl}: connected (SASL SCRAM-SHA-256), metadata of "),
        format!("ok    kafka topic {topic}: exists, 3 partition(s)"),
        format!(
            "ok    kafka dead-letter topic {topic}_dlq: does not exist yet; create_topic creates it"
        ),
        format!("ok    influx v2 {influx2} org={org} bucket={bucket} ping: InfluxDB v2."),
        format!("ok    influx v2 {influx2} org={org} bucket={bucket} write access: "),
        format!("ok    schema registry {registry}: answered, "),
    ] {
        assert!(
            checks.iter().any(|l| l.starts_with(&expected)),
            "missing {expected:?} in {checks:#?}"
        );
    }
    assert_eq!(checks.len(), 6, "{checks:#?}");
    assert!(
        !checks.concat().contains(&token),
        "the token is printed: {checks:#?}"
    );

    // A wrong password; a SASL handshake on the plaintext listener.
    let bad_kafka = format!(
        "{}{}[dead_letter]\non_error = \"drop\"\n",
        kafka(
            &format!("\"{sasl}\", \"{plain}\""),
            "wrong-password",
            &format!("\"{topic}\"")
        ),
        v2(&token),
    );
    let (code, checks, stderr) = connect(dir.path(), &bad_kafka);
    assert_eq!(code, Some(1), "{checks:#?}\n{stderr}");
    assert!(
        stderr.contains("2 of 4 checks failed"),
        "{stderr}\n{checks:#?}"
    );
    let failures = failed(&checks);
    assert!(
        failures[0].starts_with(&format!(
            "FAIL  kafka broker {sasl}: SASL SCRAM-SHA-256 authentication"
        )),
        "{checks:#?}"
    );
    assert!(
        failures[1].starts_with(&format!("FAIL  kafka broker {plain}: ")),
        "{checks:#?}"
    );
    assert!(!checks.concat().contains("wrong-password"), "{checks:#?}");

    // A missing topic and dead-letter topic, a wrong token, a registry that is not there.
    let dead_registry = format!("http://127.0.0.1:{}", free_port());
    let bad = format!(
        "{}{}{}[dead_letter]\ntopic = \"{topic}_dlq\"\ncreate_topic = false\n",
        kafka(
            &format!("\"{sasl}\""),
            &password,
            &format!("\"{topic}\", \"{topic}-missing\"")
        ),
        avro.replace(&registry, &dead_registry),
        v2("wrong-token"),
    );
    let (code, checks, stderr) = connect(dir.path(), &bad);
    assert_eq!(code, Some(1), "{checks:#?}");
    assert!(
        stderr.contains("4 of 7 checks failed"),
        "{stderr}\n{checks:#?}"
    );
    assert_eq!(
        failed(&checks),
        [
            format!("FAIL  kafka topic {topic}-missing: does not exist"),
            format!(
                "FAIL  kafka dead-letter topic {topic}_dlq: does not exist, and create_topic is false"
            ),
            format!(
                "FAIL  influx v2 {influx2} org={org} bucket={bucket} write access: InfluxDB refused the credentials (401): unauthorized access"
            ),
            format!(
                "FAIL  schema registry {dead_registry}: schema registry: connection failed: client error (Connect): tcp connect error: Connection refused (os error 111)"
            ),
        ],
        "{checks:#?}"
    );

    // v1: a missing database fails, unless create_database makes it at start.
    let v1 = |db: &str, create: bool| {
        format!(
            "[kafka]\nbrokers = [\"{plain}\"]\ntopics = [\"{topic}\"]\ngroup_id = \"g\"\n\
             [influx]\nurl = \"{influx1}\"\ndatabase = \"{db}\"\ncreate_database = {create}\n\
             [dead_letter]\non_error = \"drop\"\n"
        )
    };
    let (code, checks, _) = connect(dir.path(), &v1(&database, false));
    assert_eq!(code, Some(0), "{checks:#?}");
    assert!(
        checks.iter().any(|l| l.starts_with(&format!(
            "ok    influx v1 {influx1} db={database} write access"
        ))),
        "{checks:#?}"
    );
    let (code, checks, _) = connect(dir.path(), &v1("kinflux_no_such_db", false));
    assert_eq!(code, Some(1), "{checks:#?}");
    assert_eq!(
        failed(&checks),
        [format!(
            "FAIL  influx v1 {influx1} db=kinflux_no_such_db write access: InfluxDB has no such database or bucket: database not found: \"kinflux_no_such_db\""
        )],
    );
    let (code, checks, _) = connect(dir.path(), &v1("kinflux_no_such_db", true));
    assert_eq!(code, Some(0), "{checks:#?}");

    // Several pipelines: the shared brokers are checked once, each pipeline's topics and
    // dead-letter topic under its name, each target once, named.
    let several = format!(
        "[kafka]\nbrokers = [\"{plain}\"]\ngroup_id = \"g\"\n\
         [influx.old]\nurl = \"{influx1}\"\ndatabase = \"{database}\"\n\
         [influx.new]\napi = \"v2\"\nurl = \"{influx2}\"\norg = \"{org}\"\nbucket = \"{bucket}\"\ntoken = \"{token}\"\n\
         [[pipeline]]\nname = \"a\"\ntargets = [\"old\", \"new\"]\nkafka = {{ topics = [\"{topic}\"] }}\n\
         dead_letter = {{ on_error = \"drop\" }}\n\
         [[pipeline]]\nname = \"b\"\ntargets = [\"new\"]\nkafka = {{ topics = [\"{topic}-gone\"] }}\n\
         dead_letter = {{ topic = \"{topic}_dlq\" }}\n"
    );
    let (code, checks, stderr) = connect(dir.path(), &several);
    assert_eq!(code, Some(1), "{checks:#?}\n{stderr}");
    let expected = [
        format!("ok    kafka broker {plain}: connected (plaintext), metadata of "),
        format!("ok    pipeline a: kafka topic {topic}: exists, 3 partition(s)"),
        format!("FAIL  pipeline b: kafka topic {topic}-gone: does not exist"),
        format!(
            "ok    pipeline b: kafka dead-letter topic {topic}_dlq: does not exist yet; create_topic creates it"
        ),
        format!("ok    old (influx v1 {influx1} db={database}) ping: "),
        format!("ok    old (influx v1 {influx1} db={database}) write access: "),
        format!("ok    new (influx v2 {influx2} org={org} bucket={bucket}) ping: "),
        format!("ok    new (influx v2 {influx2} org={org} bucket={bucket}) write access: "),
    ];
    assert_eq!(checks.len(), expected.len(), "{checks:#?}");
    for (line, expected) in checks.iter().zip(&expected) {
        assert!(
            line.starts_with(expected.as_str()),
            "{line:?} is not {expected:?}"
        );
    }
    kinflux_testkit::influx::drop_database(&influx1, &database);
}
