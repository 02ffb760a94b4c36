//! `kinflux top` in a real terminal (tmux: `send-keys`, `capture-pane`) against a bridge
//! that runs against the real Kafka and InfluxDB: the view shows every partition with its
//! lag and event-time lag, points per second, and a dead letter once one happens; `q`
//! ends it. And `--once` on a pipe prints one frame.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kinflux_testkit::bridge_config::BridgeConfig;
use kinflux_testkit::{env, free_port, influx, kafka, require, unique};

/// Kills the bridge and the tmux server when the test ends, however it ends.
struct Cleanup {
    bridge: Child,
    tmux_socket: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.bridge.kill();
        let _ = self.bridge.wait();
        let _ = tmux(&self.tmux_socket, &["kill-server"]);
    }
}

/// Runs tmux on its own server socket: the test never touches anyone else's sessions.
fn tmux(socket: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
}

fn pane(socket: &str) -> String {
    tmux(socket, &["capture-pane", "-p", "-t", "top"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Waits up to `within` for `check` to hold of the pane; the last pane either way.
fn wait_for_pane(socket: &str, within: Duration, check: impl Fn(&str) -> bool) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        let text = pane(socket);
        if check(&text) {
            return (true, text);
        }
        if Instant::now() > deadline {
            return (false, text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The figure after `label` at the start of a line of the view (`1,234` is 1234).
fn figure(view: &str, label: &str) -> Option<u64> {
    let line = view.lines().find(|l| l.starts_with(label))?;
    line[label.len()..]
        .split_whitespace()
        .next()?
        .replace(',', "")
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn top_shows_a_running_bridge_in_a_terminal_and_quits_on_q() {
    let (Some(brokers), Some(url)) = (
        require("KINFLUX_KAFKA_BROKERS"),
        require("KINFLUX_INFLUX_URL"),
    ) else {
        return;
    };
    let has_tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !env::available(has_tmux, "tmux is not installed") {
        return;
    }
    let topic = unique("top");
    let database = topic.replace('-', "_");
    kafka::create_topic(&brokers, &topic, 2).await;
    for partition in 0..2 {
        let values = (0..200)
            .map(|i| {
                format!(
                    "soil,zone=p{partition} moisture={i} {}",
                    1_700_000_000_000_000_000i64 + i * 1_000_000_000
                )
                .into_bytes()
            })
            .collect();
        kafka::produce_values(&brokers, &topic, partition, values, 1_700_000_000_000).await;
    }
    let metrics_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        BridgeConfig::new(&brokers, &url, &topic, &database)
            .section(&format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\""))
            .toml(),
    )
    .expect("write the config");
    let bridge = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .args(["run", "--no-progress", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kinflux");
    let socket = unique("kinflux-top");
    let _cleanup = Cleanup {
        bridge,
        tmux_socket: socket.clone(),
    };

    let command = format!(
        "{} top --metrics-url http://127.0.0.1:{metrics_port} --interval 300ms",
        env!("CARGO_BIN_EXE_kinflux")
    );
    let started = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "110",
            "-y",
            "30",
            &command,
        ],
    )
    .expect("run tmux");
    assert!(started.status.success(), "{started:?}");

    let (ok, text) = wait_for_pane(&socket, Duration::from_secs(30), |t| {
        t.contains(&format!("{topic}/0"))
            && t.contains(&format!("{topic}/1"))
            && figure(t, "records in") == Some(400)
    });
    assert!(
        ok,
        "the view never showed both partitions and 400 records:\n{text}"
    );
    for expected in [
        "kinflux top  http://127.0.0.1:",
        "/s written",
        "\ntotal ",
        "retries",
        "dead letters",
        "event-time lag",
        "committed lag",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // Caught up: the lag of each partition is 0, and its event-time lag is shown.
    let (ok, text) = wait_for_pane(&socket, Duration::from_secs(20), |t| {
        t.lines()
            .filter(|l| l.starts_with(&format!("{topic}/")))
            .all(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.get(1) == Some(&"0")
                    && cols.get(2) == Some(&"0")
                    && cols.get(3).is_some_and(|c| *c != "-")
            })
    });
    assert!(ok, "lags never reached 0 with an event-time lag:\n{text}");

    // A bad record: the dead letter shows up.
    kafka::produce_values(
        &brokers,
        &topic,
        1,
        vec![b"not line protocol".to_vec()],
        1_700_000_001_000,
    )
    .await;
    let (ok, text) = wait_for_pane(&socket, Duration::from_secs(20), |t| t.contains("decode 1"));
    assert!(ok, "the dead letter never showed:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("dead letters") && l.split_whitespace().nth(2) == Some("1")),
        "{text}"
    );

    // `q` quits: the session ends with its only window.
    tmux(&socket, &["send-keys", "-t", "top", "q"]).expect("send q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux(&socket, &["has-session", "-t", "top"]).is_ok_and(|o| o.status.success()) {
        assert!(
            Instant::now() < deadline,
            "top did not quit on q:\n{}",
            pane(&socket)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // On a pipe: one frame.
    let out = Command::new(env!("CARGO_BIN_EXE_kinflux"))
        .args(["top", "--once", "--interval", "200ms", "--config"])
        .arg(&config)
        .output()
        .expect("run top --once");
    let frame = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{frame}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(figure(&frame, "records in"), Some(401), "{frame}");
    assert!(frame.contains(&format!("{topic}/1")), "{frame}");
    assert!(
        !frame.contains('\u{1b}'),
        "escape codes on a pipe: {frame:?}"
    );
    influx::drop_database(&url, &database);
}
