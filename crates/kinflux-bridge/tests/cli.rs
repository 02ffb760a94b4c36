//! The `kinflux` binary's command line, run as a process: subcommands, exit statuses,
//! and log lines on a pipe. No server is needed: the pipeline is pointed at ports where
//! nothing listens, so it stops at its first connection.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kinflux_testkit::free_port;

fn kinflux() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kinflux"));
    // The tests read what a user would see, without the variables that change it.
    c.env_remove("NO_COLOR").env_remove("RUST_LOG");
    c
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A valid configuration whose broker and InfluxDB refuse connections.
fn unreachable_config(dir: &Path) -> PathBuf {
    let path = dir.join("unreachable.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbrokers = [\"127.0.0.1:{}\"]\ntopics = [\"t\"]\ngroup_id = \"g\"\n\
             [influx]\nurl = \"http://127.0.0.1:{}\"\ndatabase = \"d\"\n\
             [dead_letter]\non_error = \"drop\"\n",
            free_port(),
            free_port()
        ),
    )
    .expect("write the config");
    path
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run kinflux")
}

#[test]
fn check_config_accepts_the_documented_examples() {
    for file in ["bridge.toml", "garden.toml"] {
        // garden.toml takes its servers and group from the environment, as the demo sets it.
        let out = output(
            kinflux()
                .env("KINFLUX_KAFKA_BROKERS", "127.0.0.1:9092")
                .env("KINFLUX_INFLUX_URL", "http://127.0.0.1:8086")
                .env("KINFLUX_DEMO_GROUP", "garden-demo")
                .args(["check-config", "--config"])
                .arg(examples().join(file)),
        );
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("is valid"), "{file}: {stdout}");
        assert!(stdout.contains("group_id"), "{file}: {stdout}");
    }
}

#[test]
fn check_config_shows_tls_and_sasl_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = std::fs::read_to_string(unreachable_config(dir.path())).expect("config");
    let cases = [
        (
            "tls = { ca_file = \"/etc/kafka/ca.pem\", cert_file = \"/etc/kafka/client.pem\", \
             key_file = \"/etc/kafka/client.key\" }\n\
             sasl = { mechanism = \"SCRAM-SHA-512\", username = \"bridge\", \
             password = \"scram-hunter2\" }",
            &[
                "ScramSha512",
                "bridge",
                "/etc/kafka/ca.pem",
                "/etc/kafka/client.key",
            ][..],
            "scram-hunter2",
        ),
        (
            "sasl = { mechanism = \"OAUTHBEARER\", token_url = \"https://idp.example/token\", \
             client_id = \"bridge\", client_secret = \"oauth-hunter2\", scope = \"kafka\", \
             extensions = { logicalCluster = \"lkc-1\" } }",
            &[
                "OAuthBearer",
                "https://idp.example/token",
                "lkc-1",
                "\"kafka\"",
            ],
            "oauth-hunter2",
        ),
    ];
    for (keys, shown, secret) in cases {
        let path = dir.path().join("secured.toml");
        std::fs::write(
            &path,
            base.replace("group_id = \"g\"\n", &format!("group_id = \"g\"\n{keys}\n")),
        )
        .expect("write");
        let out = output(kinflux().args(["check-config", "--config"]).arg(&path));
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        for s in shown {
            assert!(stdout.contains(s), "{s} not in {stdout}");
        }
        assert!(stdout.contains("<redacted>"), "{stdout}");
        assert!(!stdout.contains(secret), "{secret} shown: {stdout}");
    }
    // A key of another mechanism is named.
    let path = dir.path().join("mixed.toml");
    let mixed =
        "sasl = { mechanism = \"PLAIN\", username = \"u\", password = \"p\", scope = \"x\" }";
    std::fs::write(
        &path,
        base.replace(
            "group_id = \"g\"\n",
            &format!("group_id = \"g\"\n{mixed}\n"),
        ),
    )
    .expect("write");
    let out = output(kinflux().args(["check-config", "--config"]).arg(&path));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`scope` does not belong to SASL mechanism PLAIN"),
        "{stderr}"
    );
}

#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(unreachable_config(dir.path())).expect("config");
    std::fs::write(
        &path,
        good.replace("database = \"d\"", "database = \"d\"\nbogus = 1"),
    )
    .expect("write");
    let out = output(kinflux().args(["check-config", "-c"]).arg(&path));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("influx.bogus"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_file_is_a_configuration_error() {
    for args in [
        &["check-config", "--config"][..],
        &["run", "--config"],
        &["--config"],
    ] {
        let out = output(kinflux().args(args).arg("/nonexistent/kinflux.toml"));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("/nonexistent/kinflux.toml"), "{stderr}");
    }
}

#[test]
fn without_a_subcommand_kinflux_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = unreachable_config(dir.path());
    for args in [&["--config"][..], &["run", "--config"]] {
        let out = output(kinflux().args(args).arg(&config).arg("--no-progress"));
        let stderr = text(&out.stderr);
        // It started the pipeline, which failed at its first connection to the broker.
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let starting = format!("kinflux {} starting: kafka ", env!("CARGO_PKG_VERSION"));
        assert!(stderr.contains(&starting), "{args:?}: {stderr}");
        assert!(stderr.contains("error: kafka:"), "{args:?}: {stderr}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["check-config"],
        &["run", "--until-caught-up"],
        &["nonsense"],
    ] {
        let out = output(kinflux().args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = output(kinflux().arg("--help"));
    let help = text(&out.stdout);
    assert!(
        help.contains("run") && help.contains("check-config"),
        "{help}"
    );
}

#[test]
fn log_lines_carry_no_ansi_codes_when_stderr_is_a_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = output(
        kinflux()
            .args(["run", "--no-progress", "--config"])
            .arg(unreachable_config(dir.path())),
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("INFO"), "no log line to look at: {stderr}");
    assert!(
        !out.stderr.contains(&0x1b),
        "ESC in log lines written to a pipe: {stderr:?}"
    );
}

#[test]
fn skipping_tls_verification_is_warned_about_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = unreachable_config(dir.path());
    let insecure = dir.path().join("insecure.toml");
    let text_of = std::fs::read_to_string(&plain).expect("config");
    std::fs::write(
        &insecure,
        format!("{text_of}[kafka.tls]\ninsecure_skip_verify = true\n"),
    )
    .expect("write");
    for args in [
        &["check-config", "--config"][..],
        &["run", "--no-progress", "--config"],
    ] {
        let warned = text(&output(kinflux().args(args).arg(&insecure)).stderr);
        assert!(
            warned.contains("insecure_skip_verify = true"),
            "{args:?}: {warned}"
        );
        let quiet = text(&output(kinflux().args(args).arg(&plain)).stderr);
        assert!(!quiet.contains("insecure_skip_verify"), "{args:?}: {quiet}");
    }
}

#[test]
fn from_telegraf_writes_a_config_that_check_config_accepts_and_names_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let telegraf = dir.path().join("telegraf.conf");
    std::fs::write(
        &telegraf,
        "[agent]\n  omit_hostname = true\n\
         [[inputs.kafka_consumer]]\n  brokers = [\"127.0.0.1:9092\"]\n  topics = [\"t\"]\n  \
         max_undelivered_messages = 10\n  data_format = \"influx\"\n\
         [[outputs.influxdb]]\n  urls = [\"http://127.0.0.1:8086\"]\n  database = \"d\"\n",
    )
    .unwrap();
    let out_file = dir.path().join("kinflux.toml");
    let out = output(
        kinflux()
            .arg("from-telegraf")
            .arg(&telegraf)
            .arg("--output")
            .arg(&out_file),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("max_undelivered_messages"),
        "{}",
        text(&out.stderr)
    );
    let out = output(kinflux().args(["check-config", "--config"]).arg(&out_file));
    assert!(out.status.success(), "{}", text(&out.stderr));

    std::fs::write(&telegraf, "[[inputs.cpu]]\n").unwrap();
    let out = output(kinflux().arg("from-telegraf").arg(&telegraf));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no kafka_consumer input"),
        "{}",
        text(&out.stderr)
    );
}
