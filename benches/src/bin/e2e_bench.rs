//! End-to-end speed of the `kinflux` binary (the bridge), measured against InfluxDB's own ceiling, in
//! one run:
//!
//! 1. the ceiling: the same points, pre-encoded and sorted per batch as the bridge
//!    sorts them, posted straight to InfluxDB by the writer (the `influx_load` code path)
//!    for every `--batch` x `--concurrency`; the best is kept;
//! 2. line protocol: N points produced to a fresh topic, then the release `kinflux` run as
//!    a process with `--until-caught-up` and the best batch size and concurrency;
//! 3. JSON: the same N points as JSON documents, one a record, then the bridge again;
//! 4. Avro: N readings produced by `garden_producer` (Confluent framing, a schema dir),
//!    then the bridge again.
//!
//! For each bridge run it reports the sustained points/s (from the bridge's `/metrics`:
//! from the first record in to the last point written), the CPU seconds the process used
//! (utime + stime from `/proc/<pid>/stat`, read when it has exited and is not yet reaped),
//! and its peak RSS (`VmHWM`).
//!
//! `--target v2` measures the same against InfluxDB 2.x (`/api/v2/write`, a bucket per run
//! created and deleted through its API, counts by Flux) from `KINFLUX_INFLUX2_URL`,
//! `_TOKEN` and `_ORG`; run it once per target to set 2.7's ceiling beside 1.x's.
//!
//! ```text
//! cargo build --release -p kinflux-bridge -p kinflux-examples --bin kinflux --example garden_producer
//! cargo build --release -p kinflux-benches --bin e2e_bench
//! target/release/e2e_bench --brokers 127.0.0.1:9092 --influx-url http://127.0.0.1:8086 --points 1000000
//! target/release/e2e_bench --target v2 --points 1000000   # InfluxDB 2.7 from KINFLUX_INFLUX2_*
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use kinflux_influx::{LineBatch, Secret, WriteOutcome, Writer, WriterConfig};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;

#[derive(Parser, Debug)]
#[command(about = "Kafka-to-InfluxDB speed of the bridge binary against InfluxDB's ceiling")]
struct Args {
    /// Kafka bootstrap brokers, comma separated.
    #[arg(long, env = "KINFLUX_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// InfluxDB base URL (plain http://).
    #[arg(
        long,
        env = "KINFLUX_INFLUX_URL",
        default_value = "http://127.0.0.1:8086"
    )]
    influx_url: String,
    /// Which InfluxDB to write to: `v1` (`--influx-url`, a database per run) or `v2`
    /// (`--influx2-url`, a bucket per run).
    #[arg(long, default_value = "v1", value_parser = ["v1", "v2"])]
    target: String,
    /// InfluxDB 2.x base URL, for `--target v2`.
    #[arg(
        long,
        env = "KINFLUX_INFLUX2_URL",
        default_value = "http://127.0.0.1:8087"
    )]
    influx2_url: String,
    /// InfluxDB 2.x all-access token, for `--target v2`.
    #[arg(
        long,
        env = "KINFLUX_INFLUX2_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    influx2_token: String,
    /// InfluxDB 2.x org, for `--target v2`.
    #[arg(long, env = "KINFLUX_INFLUX2_ORG", default_value = "kinflux")]
    influx2_org: String,
    /// Points per run.
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Line-protocol lines per Kafka record (Telegraf's Kafka output sends one).
    #[arg(long, default_value_t = 1)]
    lines_per_record: usize,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Distinct series (host tag values, Avro sensors).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Ceiling: batch sizes (lines per request) to try.
    #[arg(long, value_delimiter = ',', default_value = "5000,10000")]
    batch: Vec<usize>,
    /// Ceiling: concurrent requests to try.
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    concurrency: Vec<usize>,
    /// The bridge's `tasks` (default: the bridge's own, the number of cores).
    #[arg(long)]
    tasks: Option<usize>,
    /// gzip level of every write (ceiling and bridge), 0 for none. Absent: the bridge's
    /// default (`gzip = "auto"`: none to a server on loopback, level 1 otherwise), and
    /// the ceiling the same.
    #[arg(long)]
    gzip: Option<u32>,
    /// The release `kinflux` binary (`cargo build --release -p kinflux-bridge`).
    #[arg(long, default_value = "target/release/kinflux")]
    bridge: PathBuf,
    /// The release `garden_producer` example (`cargo build --release --example garden_producer`).
    #[arg(long, default_value = "target/release/examples/garden_producer")]
    producer: PathBuf,
    /// Line protocol: how many times to take the ceiling (best batch and concurrency) and
    /// the bridge in turns; the table gives the medians. The machine's load changes from
    /// second to second, so only pairs taken together compare.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// What to run: any of ceiling, line, json, avro.
    #[arg(long, value_delimiter = ',', default_value = "ceiling,line,json,avro")]
    run: Vec<String>,
    /// Keep the databases written (by default each is dropped after its run).
    #[arg(long)]
    keep: bool,
    /// Keep the bridge configurations and logs in this directory (default: a temporary
    /// one, removed at the end).
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// `points` lines of a `load` measurement, one distinct timestamp each (as `influx_load`).
fn generate(points: usize, series: usize) -> Vec<Vec<u8>> {
    (0..points)
        .map(|i| kinflux_benches::load_line(i, series).into_bytes())
        .collect()
}

/// The gzip level of the ceiling's writes to `url`: `--gzip`, or what the bridge's
/// `gzip = "auto"` does (none on loopback, level 1 elsewhere).
fn gzip_level(args: &Args, url: &str) -> Option<u32> {
    match args.gzip {
        Some(0) => None,
        Some(level) => Some(level),
        None => {
            let loopback = ["://127.", "://localhost", "://[::1]"]
                .iter()
                .any(|l| url.contains(l));
            (!loopback).then_some(1)
        }
    }
}

/// The same points as [`generate`], as JSON documents, one a record.
fn generate_json(points: usize, series: usize) -> Vec<Vec<u8>> {
    (0..points)
        .map(|i| kinflux_benches::load_json(i, series).into_bytes())
        .collect()
}

/// A plain HTTP/1.0 request; returns the status line's code and the body.
fn http(
    url: &str,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    http_with(
        url,
        method,
        path_and_query,
        "Content-Type: application/x-www-form-urlencoded\r\n",
        body,
    )
}

/// [`http`] with `headers` (each ending in `\r\n`).
fn http_with(
    url: &str,
    method: &str,
    path_and_query: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs are supported"))?
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path_and_query} HTTP/1.0\r\nHost: {authority}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

fn query(url: &str, q: &str) -> std::io::Result<String> {
    let form: String = form_encode(q);
    let (code, body) = http(url, "POST", "/query", &format!("q={form}"))?;
    if code == 200 {
        Ok(body)
    } else {
        Err(std::io::Error::other(format!("{code}: {body}")))
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The points stored under `measurement` in the database or bucket `db` of the target.
fn stored(args: &Args, db: &str, measurement: &str, field: &str) -> std::io::Result<u64> {
    if args.target == "v1" {
        return stored_points(&args.influx_url, db, measurement, field);
    }
    let flux = format!(
        r#"from(bucket: "{db}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}") |> group() |> count()"#
    );
    let (code, csv) = http_with(
        &args.influx2_url,
        "POST",
        &format!("/api/v2/query?org={}", form_encode(&args.influx2_org)),
        &format!(
            "Authorization: Token {}\r\nContent-Type: application/vnd.flux\r\n",
            args.influx2_token
        ),
        &flux,
    )?;
    if code != 200 {
        return Err(std::io::Error::other(format!("{code}: {csv}")));
    }
    // Annotated CSV: a header row naming `_value`, then the count.
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = rows
        .next()
        .unwrap_or_default()
        .trim_end()
        .split(',')
        .collect();
    let at = header.iter().position(|c| *c == "_value");
    let value = rows
        .next()
        .and_then(|r| r.trim_end().split(',').nth(at?)?.parse().ok());
    Ok(value.unwrap_or(0))
}

/// Drops the database (v1) or deletes the bucket (v2) `db` of the target.
fn drop_target(args: &Args, db: &str) {
    if args.target == "v1" {
        return drop_database(&args.influx_url, db);
    }
    let auth = format!("Authorization: Token {}\r\n", args.influx2_token);
    let id = http_with(
        &args.influx2_url,
        "GET",
        &format!("/api/v2/buckets?name={}", form_encode(db)),
        &auth,
        "",
    )
    .ok()
    .and_then(|(_, body)| {
        let at = body.find("\"id\"")?;
        let rest = body[at + 4..].split('"').nth(1)?;
        Some(rest.to_owned())
    });
    match id {
        Some(id) => {
            if let Err(e) = http_with(
                &args.influx2_url,
                "DELETE",
                &format!("/api/v2/buckets/{id}"),
                &auth,
                "",
            ) {
                eprintln!("could not delete bucket {db}: {e}");
            }
        }
        None => eprintln!("could not find bucket {db} to delete it"),
    }
}

/// The points stored under `measurement` in `db`, by `count(field)`.
fn stored_points(url: &str, db: &str, measurement: &str, field: &str) -> std::io::Result<u64> {
    let answer = query(
        url,
        &format!("SELECT count(\"{field}\") FROM \"{db}\".\"autogen\".\"{measurement}\""),
    )?;
    // {"results":[{"statement_id":0,"series":[{"name":..,"columns":["time","count"],"values":[["1970-..",N]]}]}]}
    let n = answer
        .rsplit_once(',')
        .map(|(_, tail)| tail.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok(n)
}

fn drop_database(url: &str, db: &str) {
    if let Err(e) = query(url, &format!("DROP DATABASE \"{db}\"")) {
        eprintln!("could not drop {db}: {e}");
    }
}

/// The best of the write sweep: (points/s, batch, concurrency).
async fn ceiling(
    args: &Args,
    lines: &[Vec<u8>],
    stamp: &str,
) -> Result<(f64, usize, usize), Box<dyn std::error::Error>> {
    println!(
        "\n### Ceiling: pre-encoded points posted straight to InfluxDB ({})\n",
        args.target
    );
    println!("| batch | concurrency | points/s |");
    println!("|---:|---:|---:|");
    let mut best = (0.0, 0, 0);
    for &batch_size in &args.batch {
        let work = batches_of(lines, batch_size);
        for &concurrency in &args.concurrency {
            let db = format!("e2e_ceiling_{stamp}_b{batch_size}_c{concurrency}");
            let (rate, errors) = write_once(args, &work, concurrency, &db).await?;
            if !errors.is_empty() {
                eprintln!("ceiling b{batch_size} c{concurrency}: {errors:?}");
            }
            println!("| {batch_size} | {concurrency} | {rate:.0} |");
            if rate > best.0 && errors.is_empty() {
                best = (rate, batch_size, concurrency);
            }
        }
    }
    Ok(best)
}

/// Cuts the lines into batches of `size` (before timing, so only writing is timed), each
/// sorted by series key, then time, as the bridge writes them: InfluxDB ingests sorted
/// batches faster (`influx_load --sorted`), so the ceiling gets that too. The generated
/// lines have no escapes: the key is what comes before the first space.
fn batches_of(lines: &[Vec<u8>], size: usize) -> Vec<LineBatch> {
    let key_and_time = |l: &[u8]| {
        let key_end = l.iter().position(|&c| c == b' ').unwrap_or(l.len());
        let time_start = l.iter().rposition(|&c| c == b' ').unwrap_or(l.len());
        (
            l[..key_end].to_vec(),
            l.len() - time_start,
            l[time_start..].to_vec(),
        )
    };
    lines
        .chunks(size.max(1))
        .map(|c| {
            let mut sorted: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            sorted.sort_by_cached_key(|l| key_and_time(l));
            LineBatch::from_lines(sorted)
        })
        .collect()
}

/// Writes `work` to a fresh database `db` with `concurrency` writers: points/s and the
/// answers that were not plain successes.
async fn write_once(
    args: &Args,
    work: &[LineBatch],
    concurrency: usize,
    db: &str,
) -> Result<(f64, BTreeMap<String, usize>), Box<dyn std::error::Error>> {
    let points: usize = work.iter().map(LineBatch::len).sum();
    let mut config = if args.target == "v1" {
        WriterConfig::v1(&args.influx_url, db)
    } else {
        let mut config = WriterConfig::v2(
            &args.influx2_url,
            &args.influx2_org,
            db,
            Secret::new(args.influx2_token.clone()),
        );
        config.create_database = true;
        config
    };
    config.max_in_flight = concurrency.max(1);
    let url = if args.target == "v1" {
        &args.influx_url
    } else {
        &args.influx2_url
    };
    config.gzip_level = gzip_level(args, url);
    config.retry.max_attempts = Some(20);
    let writer = Writer::new(config)?;
    writer.create_database().await?;
    let queue = Arc::new(Mutex::new(work.to_vec()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (writer, queue, errors) = (writer.clone(), queue.clone(), errors.clone());
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().expect("queue lock").pop();
                    let Some(batch) = next else { break };
                    let problem = match writer.write(batch).await {
                        Ok(WriteOutcome::Written { .. }) => continue,
                        Ok(WriteOutcome::Partial(p)) => {
                            format!("partial ({} rejected)", p.rejected.len())
                        }
                        Err(e) => format!("error: {e}"),
                    };
                    *errors
                        .lock()
                        .expect("errors lock")
                        .entry(problem)
                        .or_default() += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let rate = points as f64 / started.elapsed().as_secs_f64();
    let errors = errors.lock().expect("errors lock").clone();
    if !args.keep {
        drop_target(args, db);
    }
    Ok((rate, errors))
}

/// Produces `lines` to a new topic, `lines_per_record` lines a record, round robin over
/// the partitions.
async fn produce_lines(
    args: &Args,
    topic: &str,
    lines: &[Vec<u8>],
    lines_per_record: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let brokers = args.brokers.split(',').map(str::to_owned).collect();
    let client = ClientBuilder::new(brokers).build().await?;
    client
        .controller_client()?
        .create_topic(topic, args.partitions, 1, 5_000)
        .await?;
    let mut partitions = Vec::new();
    for p in 0..args.partitions {
        partitions.push(Arc::new(
            client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await?,
        ));
    }
    let started = Instant::now();
    let time = Utc
        .timestamp_millis_opt(1_700_000_000_000)
        .single()
        .ok_or("time out of range")?;
    let records: Vec<Record> = lines
        .chunks(lines_per_record.max(1))
        .map(|chunk| Record {
            key: None,
            value: Some(chunk.join(&b'\n')),
            headers: Default::default(),
            timestamp: time,
        })
        .collect();
    let mut per_partition: Vec<Vec<Record>> = vec![Vec::new(); partitions.len()];
    for (i, r) in records.into_iter().enumerate() {
        per_partition[i % partitions.len()].push(r);
    }
    let tasks: Vec<_> = partitions
        .iter()
        .zip(per_partition)
        .map(|(client, records)| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut records = records.into_iter().peekable();
                while records.peek().is_some() {
                    // Apache Kafka refuses batches over `message.max.bytes` (1 MiB).
                    let mut chunk: Vec<Record> = Vec::new();
                    let mut bytes = 0;
                    while let Some(r) = records.next_if(|r| {
                        chunk.len() < 2000
                            && (chunk.is_empty()
                                || bytes + r.value.as_ref().map_or(0, Vec::len) < 900_000)
                    }) {
                        bytes += r.value.as_ref().map_or(0, Vec::len);
                        chunk.push(r);
                    }
                    client.produce(chunk, Compression::NoCompression).await?;
                }
                Ok::<(), rskafka::client::error::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    eprintln!(
        "produced {} lines to {topic} in {:.1}s",
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How fast the topic's records can be read, straight from the broker with one fetch loop
/// per partition (50 MiB fetches, the consumer's default): the Kafka side's ceiling, in
/// records/s.
async fn kafka_read_ceiling(args: &Args, topic: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let brokers = args.brokers.split(',').map(str::to_owned).collect();
    let client = ClientBuilder::new(brokers).build().await?;
    let mut tasks = Vec::new();
    let started = Instant::now();
    for p in 0..args.partitions {
        let partition = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await?;
        tasks.push(tokio::spawn(async move {
            let (mut offset, mut records) = (0i64, 0u64);
            loop {
                let (batch, high) = partition.fetch_records(offset, 1..52_428_800, 100).await?;
                if let Some(last) = batch.last() {
                    offset = last.offset + 1;
                }
                records += batch.len() as u64;
                if offset >= high {
                    return Ok::<u64, rskafka::client::error::Error>(records);
                }
            }
        }));
    }
    let mut records = 0;
    for task in tasks {
        records += task.await??;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// What one bridge run measured.
struct BridgeRun {
    written: u64,
    /// Points/s while the middle 80% of the points were written (steady state).
    sustained: f64,
    /// Points/s from the bridge's start (its /metrics answers) to the last point written.
    end_to_end: f64,
    wall: f64,
    cpu_seconds: f64,
    peak_rss_kib: u64,
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A counter from the Prometheus text of `/metrics`.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// (process state, utime + stime in ticks) from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after it are plain.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs the bridge on `config` until it has caught up, sampling `/metrics` and `/proc`.
async fn run_bridge(
    args: &Args,
    dir: &Path,
    name: &str,
    config: &str,
    metrics_port: u16,
    expected: u64,
) -> Result<BridgeRun, Box<dyn std::error::Error>> {
    let config_path = dir.join(format!("{name}.toml"));
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let bin = &args.bridge;
    let started = Instant::now();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .arg("--until-caught-up")
        .arg("--no-progress")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    // From the first answer of /metrics (the bridge is up) to the last point written.
    let (mut up, mut all_written) = (None, None);
    let (mut tenth, mut ninth) = (None, None);
    let mut peak_rss_kib = 0;
    let ticks = loop {
        let Some((state, ticks)) = proc_stat(pid) else {
            return Err("the bridge vanished before it could be measured".into());
        };
        if state == 'Z' {
            break ticks;
        }
        peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        if all_written.is_none() {
            if let Ok((200, text)) = http(&metrics_url, "GET", "/metrics", "") {
                let now = Instant::now();
                up.get_or_insert(now);
                let written = counter(&text, "kinflux_points_written_total").unwrap_or(0);
                if written >= expected / 10 {
                    tenth.get_or_insert((now, written));
                }
                if written >= expected - expected / 10 {
                    ninth.get_or_insert((now, written));
                }
                if written >= expected {
                    all_written = Some(now);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the bridge failed ({}); see {}/{name}.log",
            output.status,
            dir.display()
        )
        .into());
    }
    // "done: R records in, P points written (...)"
    let written = stdout
        .split_once(" records in, ")
        .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    let end_to_end = match (up, all_written) {
        (Some(a), Some(b)) if b > a => expected as f64 / (b - a).as_secs_f64(),
        _ => written as f64 / wall,
    };
    let sustained = match (tenth, ninth) {
        (Some((a, wa)), Some((b, wb))) if b > a => (wb - wa) as f64 / (b - a).as_secs_f64(),
        _ => end_to_end,
    };
    Ok(BridgeRun {
        written,
        sustained,
        end_to_end,
        wall,
        cpu_seconds: ticks as f64 / clock_ticks(),
        peak_rss_kib,
    })
}

/// A bridge configuration; `group` names the consumer group and the database.
fn bridge_config(
    args: &Args,
    topic: &str,
    group: &str,
    metrics_port: u16,
    batch: usize,
    concurrency: usize,
    decode: &str,
) -> String {
    let brokers: Vec<String> = args.brokers.split(',').map(|b| format!("{b:?}")).collect();
    format!(
        r#"{tasks}
[kafka]
brokers = [{brokers}]
topics = ["{topic}"]
group_id = "{group}"
auto_offset_reset = "earliest"
fetch_max_wait = "100ms"

{decode}

[batch]
max_points = {batch}
max_age = "1s"

[influx]
{target}
concurrency = {concurrency}
{gzip}

[dead_letter]
on_error = "stop"

[metrics]
listen = "127.0.0.1:{metrics_port}"
"#,
        tasks = args.tasks.map_or(String::new(), |n| format!("tasks = {n}")),
        brokers = brokers.join(", "),
        target = if args.target == "v1" {
            format!(
                "url = \"{}\"\ndatabase = \"{group}\"\ncreate_database = true",
                args.influx_url
            )
        } else {
            format!(
                "url = \"{}\"\napi = \"v2\"\norg = \"{}\"\nbucket = \"{group}\"\ntoken = \"{}\"\ncreate_bucket = true",
                args.influx2_url, args.influx2_org, args.influx2_token
            )
        },
        gzip = match args.gzip {
            None => String::new(),
            Some(0) => "gzip = false".to_owned(),
            Some(level) => format!("gzip = true\ngzip_level = {level}"),
        },
    )
}

fn row(name: &str, run: &BridgeRun, stored: u64, ceiling: f64, kafka: f64) {
    let percent = if ceiling > 0.0 {
        format!("{:.0}%", run.sustained / ceiling * 100.0)
    } else {
        "-".to_owned()
    };
    println!(
        "| {name} | {} | {stored} | {:.1} | {:.0} | {:.0} | {percent} | {kafka:.0} | {:.2} | {:.2} | {:.0} |",
        run.written,
        run.wall,
        run.end_to_end,
        run.sustained,
        run.cpu_seconds,
        run.cpu_seconds / (run.written.max(1) as f64 / 1e6),
        run.peak_rss_kib as f64 / 1024.0,
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let wants = |what: &str| args.run.iter().any(|r| r == what);
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 100_000_000)
    );
    let temp = tempfile::Builder::new().prefix("kinflux-e2e-").tempdir()?;
    let dir = match &args.log_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => temp.path().to_owned(),
    };
    eprintln!(
        "generating {} points over {} series",
        args.points, args.series
    );
    let lines = generate(args.points, args.series);

    let (mut best, mut batch, mut concurrency) = (0.0, args.batch[0], args.concurrency[0]);
    if wants("ceiling") {
        (best, batch, concurrency) = ceiling(&args, &lines, &stamp).await?;
        println!("\nbest: {best:.0} points/s with batch {batch}, concurrency {concurrency}");
    }

    let mut results = Vec::new();
    if wants("line") {
        let topic = format!("e2e_lp_{stamp}");
        produce_lines(&args, &topic, &lines, args.lines_per_record).await?;
        let kafka = kafka_read_ceiling(&args, &topic).await? * args.lines_per_record.max(1) as f64;
        let work = batches_of(&lines, batch);
        println!("\n### Line protocol: ceiling and bridge in turns\n");
        println!("| turn | ceiling points/s | bridge sustained points/s | ratio | bridge CPU s |");
        println!("|---:|---:|---:|---:|---:|");
        let mut turns = Vec::new();
        for turn in 0..args.repeat.max(1) {
            let (ceiling, _) = write_once(
                &args,
                &work,
                concurrency,
                &format!("{topic}_ceiling_{turn}"),
            )
            .await?;
            let port = free_port()?;
            let decode = "[decode]\nformat = \"line\"\nprecision = \"ns\"";
            let group = format!("{topic}_{turn}");
            let config = bridge_config(&args, &topic, &group, port, batch, concurrency, decode);
            let run = run_bridge(
                &args,
                dir.as_path(),
                &format!("line_{turn}"),
                &config,
                port,
                lines.len() as u64,
            )
            .await?;
            let stored = stored(&args, &group, "load", "usage")?;
            if !args.keep {
                drop_target(&args, &group);
            }
            let ratio = run.sustained / ceiling;
            println!(
                "| {turn} | {ceiling:.0} | {:.0} | {:.0}% | {:.2} |",
                run.sustained,
                ratio * 100.0,
                run.cpu_seconds
            );
            turns.push((ratio, ceiling, run, stored));
        }
        turns.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (_, ceiling, run, stored) = turns.swap_remove(turns.len() / 2);
        best = ceiling;
        results.push(("line protocol (median turn)", run, stored, kafka));
    }
    drop(lines);
    if wants("json") {
        let topic = format!("e2e_json_{stamp}");
        let documents = generate_json(args.points, args.series);
        produce_lines(&args, &topic, &documents, 1).await?;
        drop(documents);
        let kafka = kafka_read_ceiling(&args, &topic).await?;
        let port = free_port()?;
        let decode = "[decode]\nformat = \"json\"\n\n[decode.mapping]\nmeasurement = { constant = \"load\" }\ntags = [\"host\", \"region\"]\ntimestamp = { field = \"time\", unit = \"ms\" }";
        let config = bridge_config(&args, &topic, &topic, port, batch, concurrency, decode);
        let run = run_bridge(
            &args,
            dir.as_path(),
            "json",
            &config,
            port,
            args.points as u64,
        )
        .await?;
        let stored = stored(&args, &topic, "load", "usage")?;
        results.push(("JSON", run, stored, kafka));
        if !args.keep {
            drop_target(&args, &topic);
        }
    }
    if wants("avro") {
        let topic = format!("e2e_avro_{stamp}");
        let schemas = dir.as_path().join("schemas");
        let started = Instant::now();
        let status = Command::new(&args.producer)
            .args(["--brokers", &args.brokers, "--topic", &topic])
            .args(["--count", &args.points.to_string()])
            .args(["--partitions", &args.partitions.to_string()])
            .args(["--sensors", &args.series.to_string(), "--batch", "2000"])
            .arg("--schema-dir")
            .arg(&schemas)
            .status()?;
        if !status.success() {
            return Err(format!("garden_producer failed: {status}").into());
        }
        eprintln!(
            "produced Avro readings in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let kafka = kafka_read_ceiling(&args, &topic).await?;
        let port = free_port()?;
        let decode = format!(
            "[decode]\nformat = \"avro\"\nframing = \"confluent\"\nschema_dir = {:?}\n\n[decode.mapping]\nmeasurement = {{ constant = \"garden\" }}\ntags = [\"sensor_id\", \"zone\", \"plant\"]\ntimestamp = {{ field = \"time\" }}",
            schemas.display().to_string()
        );
        let config = bridge_config(&args, &topic, &topic, port, batch, concurrency, &decode);
        let run = run_bridge(
            &args,
            dir.as_path(),
            "avro",
            &config,
            port,
            args.points as u64,
        )
        .await?;
        let stored = stored(&args, &topic, "garden", "soil_moisture")?;
        results.push(("Avro", run, stored, kafka));
        if !args.keep {
            drop_target(&args, &topic);
        }
    }

    if !results.is_empty() {
        println!(
            "\n### Bridge to {} (--until-caught-up, batch {batch}, concurrency {concurrency}, {} partitions, {} line(s) per record)\n",
            args.target, args.partitions, args.lines_per_record
        );
        println!(
            "| input | points written | points stored | wall s | end-to-end points/s | sustained points/s | % of ceiling | Kafka read ceiling points/s | CPU s | CPU s per 1M points | peak RSS MiB |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, run, stored, kafka) in &results {
            row(name, run, *stored, best, *kafka);
        }
    }
    Ok(())
}
