//! Produces garden sensor readings to Kafka as Avro in the Confluent framing.
//!
//! The schema is `examples/schemas/garden.avsc`. With `--registry-url` it is registered
//! under `--subject` and the registry's id is used; otherwise it is written to
//! `--schema-dir` as `<schema-id>.avsc` for a `SchemaDir` to read. Data is deterministic
//! (from `--seed`, timestamps from `--start-ms`), so a rerun writes the same points.
//!
//! ```text
//! cargo run --example garden_producer -- --brokers 127.0.0.1:9092 --topic garden --count 10000
//! ```

use std::time::{Duration, Instant};

use apache_avro::types::Value;
use apache_avro::{Schema, to_avro_datum};
use clap::Parser;
use kinflux_avro::{RegistryClient, RegistryConfig, SchemaDir, framing};
use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{ClientBuilder, partition::PartitionClient};
use rskafka::record::Record;

const SCHEMA: &str = include_str!("schemas/garden.avsc");
const ZONES: [&str; 5] = ["NORTH", "SOUTH", "EAST", "WEST", "GREENHOUSE"];
const PLANTS: [&str; 6] = ["tomato", "basil", "lettuce", "rosemary", "chili", "mint"];

/// Garden sensor readings to Kafka, Avro in the Confluent framing.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka bootstrap brokers, comma separated.
    #[arg(long, env = "KINFLUX_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// The topic to produce to; created with `--partitions` if missing.
    #[arg(long, default_value = "garden")]
    topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// How many readings to produce.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Readings per second; 0 produces as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How many sensors take turns; each reports once per `--interval-ms`.
    #[arg(long, default_value_t = 20)]
    sensors: u64,
    /// The seed of the readings.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The time of the first round of readings, in Unix milliseconds.
    #[arg(long, default_value_t = 1_700_000_000_000)]
    start_ms: i64,
    /// The time between two readings of one sensor, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    interval_ms: i64,
    /// Schema registry URL; without it the schema goes to `--schema-dir`.
    #[arg(long, env = "KINFLUX_SCHEMA_REGISTRY_URL")]
    registry_url: Option<String>,
    /// The registry subject (default: `<topic>-value`).
    #[arg(long)]
    subject: Option<String>,
    /// Where to write `<schema-id>.avsc` when there is no registry.
    #[arg(long, default_value = "target/garden-schemas")]
    schema_dir: String,
    /// The schema id to use without a registry.
    #[arg(long, default_value_t = 1)]
    schema_id: u32,
    /// Records per produce request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

/// splitmix64: a small deterministic generator, so reruns produce the same readings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a: a stable hash, so a sensor always lands on the same partition.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The reading number `i`: sensor, time and values follow from the seed and `i` alone.
fn reading(args: &Args, i: u64) -> (String, i64, Value) {
    let sensor = i % args.sensors;
    let round = i64::try_from(i / args.sensors).unwrap_or(i64::MAX);
    let mut rng = Rng(args.seed ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let sensor_id = format!("sensor-{sensor:03}");
    let zone = (sensor % ZONES.len() as u64) as usize;
    let plant = PLANTS[(sensor % PLANTS.len() as u64) as usize];
    let time = args.start_ms + round * args.interval_ms;
    let ph = if rng.unit() < 0.3 {
        Value::Union(0, Box::new(Value::Null))
    } else {
        Value::Union(1, Box::new(Value::Double(5.5 + rng.unit() * 2.0)))
    };
    let note = if i % 97 == 0 {
        Value::Union(1, Box::new(Value::String("watered".into())))
    } else {
        Value::Union(0, Box::new(Value::Null))
    };
    let value = Value::Record(vec![
        ("sensor_id".into(), Value::String(sensor_id.clone())),
        ("zone".into(), Value::Enum(zone as u32, ZONES[zone].into())),
        ("plant".into(), Value::String(plant.into())),
        (
            "soil_moisture".into(),
            Value::Double(0.1 + rng.unit() * 0.5),
        ),
        (
            "temperature".into(),
            Value::Float(12.0 + (rng.unit() * 18.0) as f32),
        ),
        (
            "light_lux".into(),
            Value::Long((rng.unit() * 50_000.0) as i64),
        ),
        (
            "battery".into(),
            Value::Double(1.0 - (round as f64 * 0.0001).min(0.9)),
        ),
        ("ph".into(), ph),
        ("note".into(), note),
        ("time".into(), Value::TimestampMillis(time)),
    ]);
    (sensor_id, time, value)
}

async fn schema_id(args: &Args) -> Result<u32, Box<dyn std::error::Error>> {
    match &args.registry_url {
        Some(url) => {
            let subject = args
                .subject
                .clone()
                .unwrap_or_else(|| format!("{}-value", args.topic));
            let id = RegistryClient::new(RegistryConfig::new(url))?
                .register(&subject, SCHEMA)
                .await?;
            eprintln!("registered the garden schema under {subject:?} as id {id}");
            Ok(id)
        }
        None => {
            let dir = SchemaDir::new(&args.schema_dir);
            dir.store(args.schema_id, SCHEMA)?;
            eprintln!("wrote {}", dir.file_of(args.schema_id).display());
            Ok(args.schema_id)
        }
    }
}

async fn flush(
    client: &PartitionClient,
    pending: &mut Vec<Record>,
) -> Result<(), Box<dyn std::error::Error>> {
    if !pending.is_empty() {
        client
            .produce(std::mem::take(pending), Compression::NoCompression)
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.sensors == 0 || args.partitions < 1 || args.batch == 0 {
        return Err("--sensors, --partitions and --batch must be at least 1".into());
    }
    let schema = Schema::parse_str(SCHEMA)?;
    let id = schema_id(&args).await?;

    let brokers = args.brokers.split(',').map(str::to_owned).collect();
    let client = ClientBuilder::new(brokers).build().await?;
    let topics = client.list_topics().await?;
    let partitions = match topics.iter().find(|t| t.name == args.topic) {
        Some(topic) => topic.partitions.len() as i32,
        None => {
            client
                .controller_client()?
                .create_topic(&args.topic, args.partitions, 1, 5_000)
                .await?;
            eprintln!(
                "created topic {} with {} partitions",
                args.topic, args.partitions
            );
            args.partitions
        }
    };
    let mut clients = Vec::new();
    for p in 0..partitions {
        clients.push(
            client
                .partition_client(&args.topic, p, UnknownTopicHandling::Retry)
                .await?,
        );
    }
    let mut pending: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();

    let started = Instant::now();
    for i in 0..args.count {
        let (sensor_id, time, value) = reading(&args, i);
        let mut payload = Vec::with_capacity(96);
        framing::write_confluent_header(id, &mut payload);
        payload.extend_from_slice(&to_avro_datum(&schema, value)?);
        let p = (fnv1a(sensor_id.as_bytes()) % partitions as u64) as usize;
        pending[p].push(Record {
            key: Some(sensor_id.into_bytes()),
            value: Some(payload),
            headers: Default::default(),
            timestamp: Utc
                .timestamp_millis_opt(time)
                .single()
                .ok_or("reading time out of range")?,
        });
        if pending[p].len() >= args.batch {
            flush(&clients[p], &mut pending[p]).await?;
        }
        if args.rate > 0.0 {
            // Keep to the schedule: reading i is due at i / rate seconds.
            let due = Duration::from_secs_f64((i + 1) as f64 / args.rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                for (c, batch) in clients.iter().zip(pending.iter_mut()) {
                    flush(c, batch).await?;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
    for (c, batch) in clients.iter().zip(pending.iter_mut()) {
        flush(c, batch).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} readings to {} ({} partitions) with schema id {id} in {secs:.2}s ({:.0}/s)",
        args.count,
        args.topic,
        partitions,
        args.count as f64 / secs.max(1e-9)
    );
    Ok(())
}
