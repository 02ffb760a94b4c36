//! Consumer throughput: kinflux-kafka against librdkafka (Python confluent-kafka) on the same
//! topic, in the same run.
//!
//! ```text
//! KINFLUX_KAFKA_BROKERS=127.0.0.1:9092 cargo run --release -p kinflux-benches \
//!     --bin consume_bench -- [records] [value_bytes] [partitions]
//! ```
//!
//! It creates a fresh topic, fills it with rskafka, then lets each client read every record
//! in a fresh consumer group (from `earliest`), timing from the subscription to the last
//! record. It prints records/s and MB/s (key + value bytes) of both and their ratio.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use kinflux_kafka::{AutoOffsetReset, Consumer, ConsumerConfig, Message};
use rskafka::client::{
    ClientBuilder,
    partition::{Compression, UnknownTopicHandling},
};

const PRODUCE_BATCH: usize = 5_000;
/// Bytes of one produce request at most: Apache Kafka refuses a record batch over the
/// topic's `max.message.bytes` (1 MiB by default) with MESSAGE_TOO_LARGE.
const PRODUCE_BYTES: usize = 512 * 1024;
/// A record's bytes besides its value: key, timestamp, headers and framing, generously.
const RECORD_OVERHEAD: usize = 64;

#[derive(Debug)]
struct Run {
    records: u64,
    bytes: u64,
    seconds: f64,
    /// CPU time (user + system) the client process spent, all threads.
    cpu_seconds: f64,
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
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers =
        std::env::var("KINFLUX_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let records = arg(1, 400_000);
    let value_bytes = arg(2, 200);
    let partitions = i32::try_from(arg(3, 4))?;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let topic = format!("bench-{suffix}");
    println!(
        "consume_bench: {records} records of {value_bytes} B values in {partitions} partitions, brokers {brokers}"
    );

    // Fill the topic, partitions in parallel.
    let client = ClientBuilder::new(brokers.split(',').map(str::to_owned).collect())
        .build()
        .await?;
    client
        .controller_client()?
        .create_topic(&topic, partitions, 1, 5_000)
        .await?;
    let started = Instant::now();
    let per_partition = records / usize::try_from(partitions)?;
    let per_request = PRODUCE_BATCH
        .min(PRODUCE_BYTES / (value_bytes + RECORD_OVERHEAD))
        .max(1);
    let mut tasks = Vec::new();
    for p in 0..partitions {
        let pc = client
            .partition_client(&topic, p, UnknownTopicHandling::Retry)
            .await?;
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while i < per_partition {
                let n = per_request.min(per_partition - i);
                let batch = (i..i + n)
                    .map(|j| rskafka::record::Record {
                        key: Some(format!("sensor-{p}-{}", j % 1000).into_bytes()),
                        value: Some(vec![b'x'; value_bytes]),
                        headers: Default::default(),
                        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(
                            1_700_000_000_000 + j as i64,
                        )
                        .unwrap_or_default(),
                    })
                    .collect();
                pc.produce(batch, Compression::NoCompression).await?;
                i += n;
            }
            Ok::<_, rskafka::client::error::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = per_partition as u64 * u64::try_from(partitions)?;
    println!(
        "produced {total} records in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // kinflux-kafka
    let mut config = ConsumerConfig::new(
        brokers.split(',').map(str::to_owned),
        format!("bench-kinflux-{suffix}"),
        [topic.clone()],
    );
    config.auto_offset_reset = AutoOffsetReset::Earliest;
    config.fetch_max_wait = Duration::from_millis(100);
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let mut consumer = Consumer::connect(config).await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < total {
        if let Message::Records(rs) = consumer.recv().await? {
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
    let kinflux = Run {
        records: n,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: process_cpu_seconds() - cpu_started,
    };
    consumer.close().await?;

    // librdkafka through confluent-kafka
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/python/rdkafka_consume_bench.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args(["--brokers", &brokers, "--topic", &topic])
        .args(["--group", &format!("bench-rdkafka-{suffix}")])
        .args(["--count", &total.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "python helper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let rdkafka = Run {
        records: v["records"].as_u64().unwrap_or(0),
        bytes: v["bytes"].as_u64().unwrap_or(0),
        seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
        cpu_seconds: v["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
    };

    for (name, r) in [("kinflux-kafka", &kinflux), ("librdkafka", &rdkafka)] {
        println!(
            "{name:>14}: {:>9} records in {:>6.2}s = {:>10.0} records/s, {:>7.1} MB/s, client CPU {:>6.2}s",
            r.records,
            r.seconds,
            r.rate(),
            r.mb(),
            r.cpu_seconds
        );
    }
    println!(
        "ratio kinflux/librdkafka: {:.2}x records/s, {:.2}x client CPU per record",
        kinflux.rate() / rdkafka.rate(),
        (kinflux.cpu_seconds / kinflux.records as f64)
            / (rdkafka.cpu_seconds / rdkafka.records as f64)
    );
    Ok(())
}
