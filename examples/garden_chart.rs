//! Queries the garden readings back from InfluxDB 1.x and draws them: soil moisture per
//! zone over time (the mean per time bucket), each zone's point count in the legend, as
//! one self-contained SVG file. The SVG is written by hand: no plotting crate, no font
//! files (text names the generic `sans-serif`, which every viewer has).
//!
//! ```text
//! cargo run --example garden_chart -- --influx-url http://127.0.0.1:8086 --out garden.svg
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

/// Soil moisture per zone over time, from InfluxDB 1.x to an SVG chart.
#[derive(Debug, Parser)]
struct Args {
    /// InfluxDB's base URL (http only).
    #[arg(
        long,
        env = "KINFLUX_INFLUX_URL",
        default_value = "http://127.0.0.1:8086"
    )]
    influx_url: String,
    /// The database.
    #[arg(long, default_value = "garden")]
    database: String,
    /// The measurement.
    #[arg(long, default_value = "garden")]
    measurement: String,
    /// The field drawn.
    #[arg(long, default_value = "soil_moisture")]
    field: String,
    /// The tag that makes one line each.
    #[arg(long, default_value = "zone")]
    tag: String,
    /// Where the SVG goes.
    #[arg(long, default_value = "target/garden.svg")]
    out: PathBuf,
}

/// One line of the chart: a zone, its points, and its means over time.
#[derive(Debug, Default)]
struct Series {
    count: u64,
    /// (ms since the epoch, mean)
    means: Vec<(i64, f64)>,
}

/// A GET of `path` from an `http://` base URL; HTTP/1.0, so the answer is never chunked.
fn get(base: &str, path: &str) -> Result<String, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base}: only http:// URLs are supported"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).map_err(|e| format!("{authority}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("{authority}: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{authority}: not an HTTP answer"))?;
    if !head.lines().next().is_some_and(|l| l.contains(" 200")) {
        return Err(format!(
            "{authority}{path}: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    Ok(body.to_owned())
}

/// The series of an InfluxQL query's first result.
fn query(args: &Args, q: &str) -> Result<Vec<Value>, String> {
    let query: String = [("db", args.database.as_str()), ("epoch", "ms"), ("q", q)]
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let body = get(&args.influx_url, &format!("/query?{query}"))?;
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let result = &answer["results"][0];
    if let Some(error) = result["error"].as_str() {
        return Err(format!("{q}: {error}"));
    }
    Ok(result["series"].as_array().cloned().unwrap_or_default())
}

/// Percent-encodes a query-string value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of `column` in `row` of a series.
fn cell<'a>(series: &'a Value, row: &'a Value, column: &str) -> Option<&'a Value> {
    let columns = series["columns"].as_array()?;
    let i = columns.iter().position(|c| c == column)?;
    row.get(i)
}

/// Each zone's count and means over `bucket_ms` buckets.
fn load(args: &Args) -> Result<BTreeMap<String, Series>, String> {
    let (m, f, tag) = (&args.measurement, &args.field, &args.tag);
    let mut zones: BTreeMap<String, Series> = BTreeMap::new();
    let counts = query(
        args,
        &format!("SELECT count(\"{f}\") FROM \"{m}\" GROUP BY \"{tag}\""),
    )?;
    for s in &counts {
        let zone = s["tags"][tag].as_str().unwrap_or("(none)").to_owned();
        let count = s["values"][0][1].as_u64().unwrap_or(0);
        zones.entry(zone).or_default().count = count;
    }
    let range = |what: &str| -> Result<Option<i64>, String> {
        let series = query(args, &format!("SELECT {what}(\"{f}\") FROM \"{m}\""))?;
        Ok(series.first().and_then(|s| s["values"][0][0].as_i64()))
    };
    let (Some(first), Some(last)) = (range("first")?, range("last")?) else {
        return Ok(zones);
    };
    let bucket_ms = bucket(last - first);
    let means = query(
        args,
        &format!(
            "SELECT mean(\"{f}\") FROM \"{m}\" WHERE time >= {first}ms AND time <= {last}ms \
             GROUP BY time({bucket_ms}ms), \"{tag}\" fill(none)"
        ),
    )?;
    for s in &means {
        let zone = s["tags"][tag].as_str().unwrap_or("(none)").to_owned();
        let series = zones.entry(zone).or_default();
        for row in s["values"].as_array().into_iter().flatten() {
            if let (Some(t), Some(v)) = (
                cell(s, row, "time").and_then(Value::as_i64),
                cell(s, row, "mean").and_then(Value::as_f64),
            ) {
                series.means.push((t, v));
            }
        }
    }
    Ok(zones)
}

/// A round bucket that gives about 100 means over `span_ms`.
fn bucket(span_ms: i64) -> i64 {
    const STEPS: [i64; 14] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 86_400_000,
    ];
    let wanted = span_ms / 100;
    STEPS
        .iter()
        .copied()
        .find(|&s| s >= wanted)
        .unwrap_or(86_400_000)
}

/// A round step (1, 2 or 5 times a power of ten) at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Colours that stay apart for the colour-blind (Okabe and Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
];

/// Escapes text for SVG.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A whole number with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of `ms` since the epoch.
fn utc(ms: i64) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return String::new();
    };
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    // `2026-12-02T10:00:00Z`
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// An axis label: the time of day, or the date too over more than a day.
fn time_label(ms: i64, span_ms: i64) -> String {
    let full = utc(ms);
    if span_ms <= 86_400_000 {
        full.get(11..).unwrap_or_default().to_owned()
    } else {
        full.get(5..16).unwrap_or_default().to_owned()
    }
}

/// The chart as SVG.
fn svg(args: &Args, zones: &BTreeMap<String, Series>) -> String {
    const W: f64 = 980.0;
    const H: f64 = 520.0;
    let (left, right, top, bottom) = (70.0, 720.0, 70.0, 460.0);
    let points = zones.values().flat_map(|s| s.means.iter());
    let (mut t0, mut t1, mut v0, mut v1) = (i64::MAX, i64::MIN, f64::MAX, f64::MIN);
    for &(t, v) in points {
        (t0, t1, v0, v1) = (t0.min(t), t1.max(t), v0.min(v), v1.max(v));
    }
    let empty = t0 > t1;
    if empty {
        (t0, t1, v0, v1) = (0, 1, 0.0, 1.0);
    }
    // The value axis from one round tick below the lowest mean to one above the highest.
    let step = nice_step((v1 - v0).max(1e-9) / 5.0);
    let (v0, v1) = ((v0 / step).floor() * step, (v1 / step).ceil() * step);
    let ticks = ((v1 - v0) / step).round() as i32;
    let span = (t1 - t0).max(1);
    let x = |t: i64| left + (t - t0) as f64 / span as f64 * (right - left);
    let y = |v: f64| bottom - (v - v0) / (v1 - v0) * (bottom - top);
    let total: u64 = zones.values().map(|s| s.count).sum();

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(out, r##"<rect width="{W}" height="{H}" fill="#ffffff"/>"##);
    let title = format!(
        "{} per {} over time: {} points",
        args.field,
        args.tag,
        thousands(total),
    );
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="30" font-size="18" font-weight="bold">{}</text>"#,
        xml(&title)
    );
    let subtitle = if empty {
        "no data".to_owned()
    } else {
        let per = Duration::from_millis(u64::try_from(bucket(t1 - t0)).unwrap_or(0));
        format!(
            "measurement {}, mean per {}, {} to {} UTC",
            args.measurement,
            humantime::format_duration(per),
            utc(t0),
            utc(t1),
        )
    };
    let _ = writeln!(
        out,
        r##"<text x="{left}" y="52" fill="#555555">{}</text>"##,
        xml(&subtitle)
    );
    // Grid and value labels.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    for i in 0..=ticks {
        let v = v0 + step * f64::from(i);
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{right}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555555">{v:.decimals$}</text>"##,
            left - 8.0,
            yy + 4.0
        );
    }
    // Time labels.
    for i in 0..=5 {
        let t = t0 + span * i / 5;
        let xx = x(t);
        let _ = writeln!(
            out,
            r##"<line x1="{xx:.1}" y1="{bottom}" x2="{xx:.1}" y2="{:.1}" stroke="#999999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#555555">{}</text>"##,
            bottom + 5.0,
            bottom + 20.0,
            time_label(t, span)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{:.1}" height="{:.1}" fill="none" stroke="#999999"/>"##,
        right - left,
        bottom - top
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="{:.1}" transform="rotate(-90 20 {:.1})" text-anchor="middle" fill="#555555">{}</text>"##,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        xml(&args.field)
    );
    // One line per zone, and the legend with its point count.
    for (i, (zone, series)) in zones.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut path = String::new();
        for &(t, v) in &series.means {
            let _ = write!(path, "{:.1},{:.1} ", x(t), y(v));
        }
        let _ = writeln!(
            out,
            r#"<polyline data-zone="{}" points="{}" fill="none" stroke="{colour}" stroke-width="1.8"/>"#,
            xml(zone),
            path.trim_end()
        );
        let ly = top + 10.0 + 24.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{} ({} points)</text>"#,
            right + 20.0,
            right + 44.0,
            right + 52.0,
            ly + 4.0,
            xml(zone),
            thousands(series.count)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let zones = match load(&args) {
        Ok(z) => z,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: {}: {e}", dir.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    if let Err(e) = std::fs::write(&args.out, svg(&args, &zones)) {
        eprintln!("error: {}: {e}", args.out.display());
        return std::process::ExitCode::FAILURE;
    }
    let total: u64 = zones.values().map(|s| s.count).sum();
    println!(
        "chart: {} ({} zones, {} points)",
        args.out.display(),
        zones.len(),
        thousands(total)
    );
    std::process::ExitCode::SUCCESS
}
