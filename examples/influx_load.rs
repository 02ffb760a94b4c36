//! Load test for the InfluxDB writer: writes N generated points with batch size B and C
//! concurrent requests, for every B and C given, and prints points/s with the server's
//! answers. Finds InfluxDB's ingest ceiling on this machine.
//!
//! ```text
//! cargo run --release -p kinflux-examples --example influx_load -- \
//!     --url http://127.0.0.1:8086 --points 1000000 --batch 1000,5000,10000 --concurrency 1,2,4
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use kinflux_influx::{LineBatch, WriteOutcome, Writer, WriterConfig};

#[derive(Parser, Debug)]
#[command(about = "Write generated points to InfluxDB 1.x and report points/s")]
struct Args {
    /// InfluxDB base URL (default: $KINFLUX_INFLUX_URL or http://127.0.0.1:8086).
    #[arg(long)]
    url: Option<String>,
    /// Points per run.
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Batch sizes (lines per request) to try, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    batch: Vec<usize>,
    /// Concurrent requests to try, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    concurrency: Vec<usize>,
    /// gzip level, 0 for uncompressed bodies.
    #[arg(long, default_value_t = 1)]
    gzip: u32,
    /// Distinct series (host tag values).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Also run every batch size and concurrency with each batch's lines sorted by series
    /// key then time (as the bridge's `batch.sort_by_series` writes them), to see whether
    /// InfluxDB ingests sorted batches faster.
    #[arg(long)]
    sorted: bool,
    /// Database name prefix; each run writes to a fresh database.
    #[arg(long, default_value = "kinflux_load")]
    db: String,
    /// Keep the databases written (by default each is dropped after its run).
    #[arg(long)]
    keep: bool,
}

/// `DROP DATABASE` through a plain HTTP/1.0 request (plain `http://` URLs only), so the
/// sweep leaves no data behind.
fn drop_database(url: &str, db: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs can be cleaned up"))?
        .trim_end_matches('/');
    let form = format!("q=DROP+DATABASE+%22{db}%22");
    let mut stream = std::net::TcpStream::connect(authority)?;
    write!(
        stream,
        "POST /query HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(answer))
    }
}

/// `points` lines of a `load` measurement, one distinct timestamp each.
fn generate(points: usize, series: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(points * 96);
    let start: u64 = 1_700_000_000_000_000_000;
    for i in 0..points {
        let host = i % series.max(1);
        body.extend_from_slice(
            format!(
                "load,host=server-{host:05},region=r{} usage={:.2},requests={}i,ok=true {}\n",
                host % 4,
                (i % 10_000) as f64 / 100.0,
                i % 977,
                start + i as u64 * 1_000,
            )
            .as_bytes(),
        );
    }
    body
}

/// Cuts the body into batches of `size` lines (before timing, so only writing is timed).
/// With `sorted`, each batch's lines are ordered by series key, then time: the generated
/// lines have no escapes, so the key is everything before the first space.
fn batches(body: &[u8], size: usize, sorted: bool) -> Vec<LineBatch> {
    let all = LineBatch::new(body.to_vec());
    let mut out = Vec::new();
    let mut lines = Vec::with_capacity(size);
    let cut = |lines: &mut Vec<&[u8]>, out: &mut Vec<LineBatch>| {
        if sorted {
            lines.sort_by_key(|l| {
                let key_end = l.iter().position(|&c| c == b' ').unwrap_or(l.len());
                let time_start = l.iter().rposition(|&c| c == b' ').unwrap_or(l.len());
                (&l[..key_end], l.len() - time_start, &l[time_start..])
            });
        }
        out.push(LineBatch::from_lines(lines.drain(..)));
    };
    for line in all.lines() {
        lines.push(line);
        if lines.len() == size {
            cut(&mut lines, &mut out);
        }
    }
    if !lines.is_empty() {
        cut(&mut lines, &mut out);
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("KINFLUX_INFLUX_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8086".to_owned());
    eprintln!(
        "generating {} points over {} series",
        args.points, args.series
    );
    let body = generate(args.points, args.series);
    println!(
        "| batch | lines | concurrency | points/s | MB/s (uncompressed) | requests | answers |"
    );
    println!("|---:|---|---:|---:|---:|---:|---|");
    let orders: &[bool] = if args.sorted {
        &[false, true]
    } else {
        &[false]
    };
    for &batch_size in &args.batch {
        for (&sorted, &concurrency) in orders
            .iter()
            .flat_map(|o| args.concurrency.iter().map(move |c| (o, c)))
        {
            let work = batches(&body, batch_size.max(1), sorted);
            let order = if sorted { "sorted" } else { "as generated" };
            let db = format!("{}_b{batch_size}_c{concurrency}", args.db);
            let mut config = WriterConfig::v1(&url, &db);
            config.max_in_flight = concurrency.max(1);
            config.gzip_level = (args.gzip > 0).then_some(args.gzip);
            config.retry.max_attempts = Some(20);
            let writer = Writer::new(config)?;
            writer.create_database().await?;

            let queue = Arc::new(Mutex::new(work.clone()));
            let answers = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
            let started = Instant::now();
            let tasks: Vec<_> = (0..concurrency.max(1))
                .map(|_| {
                    let (writer, queue, answers) = (writer.clone(), queue.clone(), answers.clone());
                    tokio::spawn(async move {
                        loop {
                            let next = queue.lock().expect("queue lock").pop();
                            let Some(batch) = next else { break };
                            let answer = match writer.write(batch).await {
                                Ok(WriteOutcome::Written { .. }) => "written".to_owned(),
                                Ok(WriteOutcome::Partial(p)) => {
                                    format!("partial ({} rejected)", p.rejected.len())
                                }
                                Err(e) => format!("error: {e}"),
                            };
                            *answers
                                .lock()
                                .expect("answers lock")
                                .entry(answer)
                                .or_default() += 1;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await?;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let stats = writer.stats().snapshot();
            let answers = answers.lock().expect("answers lock");
            let answers: Vec<String> = answers.iter().map(|(k, v)| format!("{v}x {k}")).collect();
            println!(
                "| {batch_size} | {order} | {concurrency} | {:.0} | {:.1} | {} | {} |",
                args.points as f64 / elapsed,
                stats.bytes_uncompressed as f64 / elapsed / 1e6,
                stats.requests,
                answers.join(", ")
            );
            if !args.keep {
                if let Err(e) = drop_database(&url, &db) {
                    eprintln!("could not drop {db}: {e}");
                }
            }
        }
    }
    Ok(())
}
