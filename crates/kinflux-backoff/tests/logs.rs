//! The retry log of a long outage, as written by `tracing`. Alone in its test binary:
//! `tracing` caches per call site whether anyone listens, and a test on another thread
//! that logs through the same call sites without a subscriber can make that cache drop
//! the events this test captures.

use std::time::Duration;

use kinflux_backoff::{Backoff, BackoffConfig};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn an_outage_of_five_minutes_logs_a_handful_of_lines() {
    let (_guard, logs) = kinflux_testkit::logs::capture();
    let config = BackoffConfig::new(Duration::from_millis(500), Duration::from_secs(5));
    let mut b = Backoff::new(config, "InfluxDB write");
    let start = Instant::now();
    let mut retries = 0;
    while start.elapsed() < Duration::from_secs(300) {
        b.sleep("connection refused").await.unwrap();
        retries += 1;
    }
    b.succeeded();
    let text = kinflux_testkit::logs::text(&logs);
    let lines: Vec<&str> = text.lines().collect();
    let warns: Vec<&&str> = lines.iter().filter(|l| l.contains("WARN")).collect();
    assert!(retries > 100, "{retries} retries");
    assert!(
        warns[0].contains("InfluxDB write failed, retrying in")
            && warns[0].contains("connection refused"),
        "{text}"
    );
    // The first warn, then one a minute (each within a retry's wait of the minute).
    assert!((5..=6).contains(&warns.len()), "{text}");
    let counted: u64 = warns[1..]
        .iter()
        .map(|l| {
            let n = l.split("still failing: ").nth(1).unwrap();
            n.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    // Every retry after the first is counted once in some warn, or left for the end.
    assert!(counted < retries && counted > retries * 3 / 4, "{text}");
    let info = lines.last().unwrap();
    assert!(
        info.contains("INFO")
            && info.contains(&format!(
                "InfluxDB write recovered after {retries} retries in"
            )),
        "{text}"
    );
    assert_eq!(lines.len(), warns.len() + 1, "{text}");
}
