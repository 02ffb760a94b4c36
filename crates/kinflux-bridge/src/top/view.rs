//! One frame of `kinflux top`, as text: totals and rates, then one row per partition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::scrape::Samples;

/// The figures of a partition.
#[derive(Debug, Default, Clone, Copy)]
struct Row {
    lag: Option<f64>,
    committed_lag: Option<f64>,
    event_time_lag: Option<f64>,
}

/// The frame for `now`, with rates over `elapsed` since `before` (none on the first).
pub(super) fn frame(
    source: &str,
    now: &Samples,
    before: Option<(&Samples, Duration)>,
    width: usize,
) -> String {
    let mut out = String::new();
    let rate = |name: &str| {
        before.and_then(|(b, elapsed)| {
            let secs = elapsed.as_secs_f64();
            (secs > 0.0).then(|| ((now.sum(name) - b.sum(name)) / secs).max(0.0))
        })
    };
    let shown = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), count);
    let _ = writeln!(out, "kinflux top  {source}  (q quits)");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "records in    {:>12}   {:>8}/s",
        count(now.sum("kinflux_records_in_total")),
        shown(rate("kinflux_records_in_total"))
    );
    let _ = writeln!(
        out,
        "points        {:>12}   {:>8}/s written",
        count(now.sum("kinflux_points_written_total")),
        shown(rate("kinflux_points_written_total"))
    );
    let _ = writeln!(
        out,
        "retries       {:>12}   {}",
        count(now.sum("kinflux_write_retries_total")),
        labelled(&now.by_label("kinflux_write_retries_total", "cause"))
    );
    let _ = writeln!(
        out,
        "dead letters  {:>12}   {}",
        count(now.sum("kinflux_dead_letters_total")),
        labelled(&now.by_label("kinflux_dead_letters_total", "class"))
    );
    let _ = writeln!(
        out,
        "fetch errors  {:>12}   rebalances {}",
        count(now.sum("kinflux_fetch_errors_total")),
        count(now.sum("kinflux_rebalances_total"))
    );
    let _ = writeln!(out);
    let rows = rows(now);
    let name_width = rows
        .keys()
        .map(|(t, p)| t.len() + 1 + p.len())
        .max()
        .unwrap_or(0)
        .clamp(9, width.saturating_sub(44).max(9));
    let _ = writeln!(
        out,
        "{:<name_width$}  {:>12}  {:>13}  {:>14}",
        "partition", "lag", "committed lag", "event-time lag"
    );
    if rows.is_empty() {
        let _ = writeln!(out, "(no partition assigned)");
    }
    for ((topic, partition), row) in &rows {
        let mut name = format!("{topic}/{partition}");
        if name.len() > name_width {
            let keep = name_width.saturating_sub(1);
            name = format!("…{}", &name[name.len() - keep..]);
        }
        let _ = writeln!(
            out,
            "{name:<name_width$}  {:>12}  {:>13}  {:>14}",
            row.lag.map_or("-".into(), count),
            row.committed_lag.map_or("-".into(), count),
            row.event_time_lag.map_or("-".into(), seconds),
        );
    }
    let _ = writeln!(
        out,
        "{:<name_width$}  {:>12}  {:>13}",
        "total",
        count(rows.values().filter_map(|r| r.lag).sum()),
        count(rows.values().filter_map(|r| r.committed_lag).sum()),
    );
    out
}

/// One row per `topic/partition` of the lag gauges.
fn rows(s: &Samples) -> BTreeMap<(String, String), Row> {
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    type Slot = fn(&mut Row) -> &mut Option<f64>;
    let gauges: [(&str, Slot); 3] = [
        ("kinflux_lag_records", |r| &mut r.lag),
        ("kinflux_committed_lag_records", |r| &mut r.committed_lag),
        ("kinflux_event_time_lag_seconds", |r| &mut r.event_time_lag),
    ];
    for (name, slot) in gauges {
        for (labels, value) in s.all(name) {
            if let (Some(t), Some(p)) = (labels.get("topic"), labels.get("partition")) {
                *slot(rows.entry((t.clone(), p.clone())).or_default()) = Some(*value);
            }
        }
    }
    rows
}

/// `cause 3, other 1`, leaving out zeros.
fn labelled(values: &BTreeMap<String, f64>) -> String {
    let parts: Vec<String> = values
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| format!("{k} {}", count(*v)))
        .collect();
    parts.join(", ")
}

/// A whole number with thousands separators.
fn count(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Seconds as `850ms`, `12.3s`, `4m 05s`, `2h 10m`, `3d 04h`.
fn seconds(v: f64) -> String {
    if v < 1.0 {
        format!("{:.0}ms", (v * 1000.0).max(0.0))
    } else if v < 60.0 {
        format!("{v:.1}s")
    } else if v < 3600.0 {
        format!("{}m {:02}s", (v / 60.0) as u64, (v % 60.0) as u64)
    } else if v < 86_400.0 {
        format!(
            "{}h {:02}m",
            (v / 3600.0) as u64,
            ((v % 3600.0) / 60.0) as u64
        )
    } else {
        format!(
            "{}d {:02}h",
            (v / 86_400.0) as u64,
            ((v % 86_400.0) / 3600.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_shows_rates_lags_retries_and_dead_letters() {
        let before = Samples::parse("kinflux_points_written_total 1000\n");
        let now = Samples::parse(
            "kinflux_points_written_total 3000\nkinflux_records_in_total 1500\n\
             kinflux_write_retries_total{cause=\"connection\"} 4\n\
             kinflux_write_retries_total{cause=\"timeout\"} 0\n\
             kinflux_dead_letters_total{class=\"decode\"} 2\n\
             kinflux_lag_records{topic=\"garden\",partition=\"0\"} 1234567\n\
             kinflux_committed_lag_records{topic=\"garden\",partition=\"0\"} 1234600\n\
             kinflux_event_time_lag_seconds{topic=\"garden\",partition=\"0\"} 75.5\n\
             kinflux_lag_records{topic=\"garden\",partition=\"1\"} 3\n",
        );
        let text = frame(
            "http://h/metrics",
            &now,
            Some((&before, Duration::from_secs(2))),
            100,
        );
        assert!(text.contains("1,000/s written"), "{text}");
        assert!(text.contains("connection 4"), "{text}");
        assert!(!text.contains("timeout"), "{text}");
        assert!(text.contains("decode 2"), "{text}");
        assert!(text.contains("garden/0"), "{text}");
        assert!(text.contains("1,234,567"), "{text}");
        assert!(text.contains("1m 15s"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("total") && l.contains("1,234,570")),
            "{text}"
        );
        let first = frame("x", &now, None, 100);
        assert!(first.contains("-/s written"), "{first}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(1234.0), "1,234");
        assert_eq!(count(-1234567.0), "-1,234,567");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(3725.0), "1h 02m");
        assert_eq!(seconds(90_000.0), "1d 01h");
        assert_eq!(seconds(90_000.0), "1d 01h");
    }
}
