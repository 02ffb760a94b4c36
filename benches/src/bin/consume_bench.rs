//! Consumer throughput and CPU: kinflux-kafka against librdkafka (Python confluent-kafka)
//! on the same Apache Kafka topics, in the same run, for each compression codec.
//!
//! ```text
//! KINFLUX_KAFKA_BROKERS=127.0.0.1:9092 cargo run --release -p kinflux-benches \
//!     --bin consume_bench -- --records 400000 --value-bytes 200 --partitions 4 --rounds 3
//! ```
//!
//! For each codec it creates a topic and fills it through librdkafka
//! (`python/rdkafka_produce.py`, line-protocol values with varying numbers, so every codec
//! compresses them as it would real metrics). Then each client reads every record in a
//! fresh consumer group from `earliest`, timed from the subscription to the last record,
//! taking turns (kinflux, librdkafka, then librdkafka, kinflux, ...) because the machine is
//! shared. It prints the median records/s and CPU microseconds per record of both, and
//! their ratios, as a Markdown table.
//!
//! librdkafka's CPU includes the Python loop that takes each message (`consume()` in
//! batches of 10,000): that is the client a Python user runs, not librdkafka alone.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use clap::Parser;
use kinflux_kafka::{AutoOffsetReset, Consumer, ConsumerConfig, Message};
use rskafka::client::ClientBuilder;

/// The flags.
#[derive(Debug, Parser)]
struct Args {
    /// Records per topic.
    #[arg(long, default_value_t = 400_000)]
    records: u64,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 200)]
    value_bytes: usize,
    /// Partitions per topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Codecs, each on a topic of its own: none, gzip, snappy, lz4, zstd.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,gzip,snappy,lz4,zstd"
    )]
    codecs: Vec<String>,
    /// Runs of each client per codec; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Bootstrap brokers.
    #[arg(long, env = "KINFLUX_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
}

#[derive(Debug)]
struct Run {
    records: u64,
    bytes: u64,
    seconds: f64,
    /// CPU time (user + system) the client process spent, all threads.
    cpu_seconds: f64,
    /// From the subscription to the first record: the group join and the first fetch.
    first_seconds: f64,
}

/// CPU time of this process from `/proc/self/stat` (Linux; clock ticks of 1/100 s).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
    fn mb(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
    /// Records per second from the first record to the last: the rate once the group is
    /// joined, which a long-running consumer sees.
    fn steady_rate(&self) -> f64 {
        self.records as f64 / (self.seconds - self.first_seconds)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Run {
    fn cpu_us_per_record(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.records as f64
    }
}

async fn kinflux_run(
    brokers: &str,
    topic: &str,
    group: String,
    total: u64,
) -> Result<Run, Box<dyn std::error::Error>> {
    let mut config = ConsumerConfig::new(
        brokers.split(',').map(str::to_owned),
        group,
        [topic.to_owned()],
    );
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    config.fetch_max_wait = Duration::from_millis(100);
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let mut consumer = Consumer::connect(config).await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut first_seconds = None;
    while n < total {
        if let Message::Records(rs) = consumer.recv().await? {
            if !rs.is_empty() {
                first_seconds.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            n += rs.len() as u64;
            bytes += rs
                .iter()
                .map(|r| {
                    (r.key.as_ref().map_or(0, |k| k.len())
                        + r.value.as_ref().map_or(0, |v| v.len())) as u64
                })
                .sum::<u64>();
        }
    }
    let run = Run {
        records: n,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: process_cpu_seconds() - cpu_started,
        first_seconds: first_seconds.unwrap_or(0.0),
    };
    consumer.close().await?;
    Ok(run)
}

fn python(script: &str, args: &[String]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let path = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(path).args(args).output()?;
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn rdkafka_run(
    brokers: &str,
    topic: &str,
    group: String,
    total: u64,
) -> Result<Run, Box<dyn std::error::Error>> {
    let v = python(
        "rdkafka_consume_bench.py",
        &[
            "--brokers".into(),
            brokers.into(),
            "--topic".into(),
            topic.into(),
            "--group".into(),
            group,
            "--count".into(),
            total.to_string(),
        ],
    )?;
    let run = Run {
        records: v["records"].as_u64().unwrap_or(0),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        cpu_seconds: v["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
        first_seconds: v["first_seconds"].as_f64().unwrap_or(f64::NAN),
    };
    if run.records < total {
        return Err(format!("librdkafka read {} of {total} records", run.records).into());
    }
    Ok(run)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let per_partition = args.records / u64::try_from(args.partitions)?;
    let total = per_partition * u64::try_from(args.partitions)?;
    println!(
        "consume_bench: {total} records of {} B values in {} partitions per codec, {} rounds, brokers {}",
        args.value_bytes, args.partitions, args.rounds, args.brokers
    );
    let client = ClientBuilder::new(args.brokers.split(',').map(str::to_owned).collect())
        .build()
        .await?;

    let mut rows = Vec::new();
    for codec in &args.codecs {
        let topic = format!("bench-{codec}-{suffix}");
        client
            .controller_client()?
            .create_topic(&topic, args.partitions, 1, 5_000)
            .await?;
        let produced = python(
            "rdkafka_produce.py",
            &[
                "--brokers".into(),
                args.brokers.clone(),
                "--topic".into(),
                topic.clone(),
                "--partitions".into(),
                args.partitions.to_string(),
                "--count".into(),
                total.to_string(),
                "--value-bytes".into(),
                args.value_bytes.to_string(),
                "--codec".into(),
                codec.clone(),
            ],
        )?;
        println!(
            "{codec}: produced {total} records in {:.1}s",
            produced["seconds"].as_f64().unwrap_or(f64::NAN)
        );

        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            // Take turns, so neither client always runs on the warmer page cache.
            let kinflux_first = round % 2 == 0;
            for first in [true, false] {
                if first == kinflux_first {
                    let r = kinflux_run(
                        &args.brokers,
                        &topic,
                        format!("bench-kinflux-{codec}-{round}-{suffix}"),
                        total,
                    )
                    .await?;
                    println!(
                        "  round {round} kinflux-kafka: {:>10.0} records/s, {:>6.1} MB/s, {:.3} CPU us/record",
                        r.rate(),
                        r.mb(),
                        r.cpu_us_per_record()
                    );
                    ours.push(r);
                } else {
                    let r = rdkafka_run(
                        &args.brokers,
                        &topic,
                        format!("bench-rdkafka-{codec}-{round}-{suffix}"),
                        total,
                    )?;
                    println!(
                        "  round {round} librdkafka:    {:>10.0} records/s, {:>6.1} MB/s, {:.3} CPU us/record",
                        r.rate(),
                        r.mb(),
                        r.cpu_us_per_record()
                    );
                    theirs.push(r);
                }
            }
        }
        rows.push((codec.clone(), ours, theirs));
    }

    println!();
    println!(
        "| codec | kinflux-kafka records/s | librdkafka records/s | ratio | after the first record: kinflux-kafka | librdkafka | ratio | kinflux-kafka CPU µs/record | librdkafka CPU µs/record | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (codec, ours, theirs) in &rows {
        let rate = |v: &Vec<Run>| median(v.iter().map(Run::rate).collect());
        let steady = |v: &Vec<Run>| median(v.iter().map(Run::steady_rate).collect());
        let cpu = |v: &Vec<Run>| median(v.iter().map(Run::cpu_us_per_record).collect());
        println!(
            "| {codec} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.2}x | {:.3} | {:.3} | {:.2}x |",
            rate(ours),
            rate(theirs),
            rate(ours) / rate(theirs),
            steady(ours),
            steady(theirs),
            steady(ours) / steady(theirs),
            cpu(ours),
            cpu(theirs),
            cpu(ours) / cpu(theirs)
        );
    }
    Ok(())
}
