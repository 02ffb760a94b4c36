//! The decode-and-batch stage of the pipeline on recorded fetch responses, no network:
//! how it scales from one task to two.
//!
//! Each partition's fetch responses (gzip record batches of line protocol, 100 lines a
//! record as Telegraf's batch format sends them) are built once. A task then does what a
//! pipeline lane does with them: decodes the record batches (kinflux-kafka's fetch path,
//! values as `Bytes` slices of the response), parses each record's lines (kinflux-line's
//! forwarding parser), and adds them to its own batcher (kinflux-batch), which encodes
//! the request bodies. The partitions are spread over the tasks as the pipeline spreads
//! them over its lanes; each task runs on a tokio worker thread of a multi-thread
//! runtime with as many workers as tasks.
//!
//! ```sh
//! cargo run --release -p kinflux-benches --bin scaling_bench -- --tasks 1,2
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use kinflux_batch::{Batcher, FlushPolicy, RecordId};
use kinflux_benches::Lcg;
use kinflux_kafka::fetch::{Compression, DecodeOptions, build::BatchBuilder, decode_partition};
use kinflux_line::{Forward, ParseOptions};
use kinflux_series::Precision;

/// Measures the decode-and-batch stage with 1 and 2 tasks.
#[derive(Debug, Parser)]
struct Args {
    /// Partitions (spread over the tasks).
    #[arg(long, default_value_t = 4)]
    partitions: usize,
    /// Points per partition.
    #[arg(long, default_value_t = 500_000)]
    points_per_partition: usize,
    /// Line-protocol lines per Kafka record.
    #[arg(long, default_value_t = 100)]
    lines_per_record: usize,
    /// Records per record batch (one producer request).
    #[arg(long, default_value_t = 50)]
    records_per_batch: usize,
    /// Record batches per fetch response of one partition.
    #[arg(long, default_value_t = 8)]
    batches_per_fetch: usize,
    /// Task counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    tasks: Vec<usize>,
    /// Rounds of each task count, taken in turns; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// One partition's fetch responses, in order.
fn record_partition(args: &Args, partition: usize) -> Vec<Bytes> {
    let mut rng = Lcg::new(42 + partition as u64);
    let records = args.points_per_partition / args.lines_per_record;
    let mut fetches = Vec::new();
    let mut fetch = BytesMut::new();
    let (mut offset, mut in_fetch) = (0usize, 0usize);
    let mut point = 0u64;
    while offset < records {
        let mut batch = BatchBuilder::new(offset as i64);
        batch.compression(Compression::Gzip);
        for _ in 0..args.records_per_batch.min(records - offset) {
            let mut value = String::new();
            for _ in 0..args.lines_per_record {
                let host = rng.below(1000);
                value.push_str(&format!(
                    "load,host=host{host:04},partition=p{partition} value={:.2},count={}i {}\n",
                    rng.below(100_000) as f64 / 100.0,
                    rng.below(1000),
                    1_700_000_000_000_000_000u64 + point * 1_000
                ));
                point += 1;
            }
            batch.record(None, Some(value.as_bytes()), &[]);
            offset += 1;
        }
        fetch.extend_from_slice(&batch.build().expect("gzip is built in"));
        in_fetch += 1;
        if in_fetch == args.batches_per_fetch {
            fetches.push(fetch.split().freeze());
            in_fetch = 0;
        }
    }
    if !fetch.is_empty() {
        fetches.push(fetch.freeze());
    }
    fetches
}

/// What a lane does with its partitions' fetch responses; returns the points batched.
fn decode_and_batch(partitions: &[(usize, Vec<Bytes>)]) -> u64 {
    let mut batcher = Batcher::new(FlushPolicy::default(), Precision::Nanoseconds);
    let options = DecodeOptions::default();
    let parse = ParseOptions {
        precision: Precision::Nanoseconds,
        default_time: None,
    };
    let topic: Arc<str> = Arc::from("scaling");
    let (mut points, mut body_bytes) = (0u64, 0usize);
    let rounds = partitions.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let mut next_offset = vec![0i64; partitions.len()];
    // Fetch responses arrive partition by partition, in turns.
    for round in 0..rounds {
        for (slot, (partition, fetches)) in partitions.iter().enumerate() {
            let Some(response) = fetches.get(round) else {
                continue;
            };
            let decoded = decode_partition(response.clone(), next_offset[slot], &[], &options);
            assert!(decoded.error.is_none(), "recorded batches decode");
            next_offset[slot] = decoded.next_offset;
            for record in &decoded.records {
                let Some(value) = &record.value else { continue };
                let mut lines = kinflux_line::parse(value, parse);
                let id = RecordId {
                    topic: topic.clone(),
                    partition: *partition as i32,
                    offset: record.offset,
                };
                while let Some(line) = lines.next_forward() {
                    let added = match line.expect("recorded lines parse") {
                        Forward::Raw {
                            series_key,
                            fields,
                            timestamp,
                            written_time,
                        } => match written_time {
                            Some(t) => batcher.add_encoded_written(
                                &value[series_key],
                                &value[fields],
                                t,
                                &id,
                            ),
                            None => batcher.add_encoded(
                                &value[series_key],
                                &value[fields],
                                timestamp,
                                &id,
                            ),
                        },
                        Forward::Point(p) => batcher.add(&p, &id),
                    };
                    points += 1;
                    if let Some(batch) = added.expect("points encode") {
                        body_bytes += batch.body().len();
                    }
                }
            }
        }
    }
    if let Some(batch) = batcher.flush() {
        body_bytes += batch.body().len();
    }
    assert!(body_bytes > 0);
    points
}

/// One round with `tasks` tasks: wall time and points.
fn round(recorded: &Arc<Vec<(usize, Vec<Bytes>)>>, tasks: usize) -> (Duration, u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(tasks)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    // Partition i goes to task i mod tasks, as lanes take partitions in turn.
                    let mine: Vec<(usize, Vec<Bytes>)> = recorded
                        .iter()
                        .filter(|(p, _)| p % tasks == t)
                        .cloned()
                        .collect();
                    decode_and_batch(&mine)
                })
            })
            .collect();
        let mut points = 0;
        for h in handles {
            points += h.await.expect("task ran");
        }
        (started.elapsed(), points)
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = Args::parse();
    let recorded: Arc<Vec<(usize, Vec<Bytes>)>> = Arc::new(
        (0..args.partitions)
            .map(|p| (p, record_partition(&args, p)))
            .collect(),
    );
    let total = (args.partitions * args.points_per_partition) as u64;
    let bytes: usize = recorded
        .iter()
        .flat_map(|(_, f)| f.iter().map(Bytes::len))
        .sum();
    println!(
        "{} partitions, {total} points, {} lines a record, {:.1} MiB of gzip fetch responses",
        args.partitions,
        args.lines_per_record,
        bytes as f64 / (1 << 20) as f64
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); args.tasks.len()];
    for _ in 0..args.rounds {
        for (i, &tasks) in args.tasks.iter().enumerate() {
            let (took, points) = round(&recorded, tasks);
            assert_eq!(points, total);
            rates[i].push(points as f64 / took.as_secs_f64());
        }
    }
    let base = median(rates[0].clone());
    println!(
        "| tasks | points/s (median of {}) | speed-up | rounds |",
        args.rounds
    );
    println!("|---:|---:|---:|---|");
    for (i, &tasks) in args.tasks.iter().enumerate() {
        let m = median(rates[i].clone());
        let all: Vec<String> = rates[i].iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {tasks} | {m:.0} | {:.2}x | {} |",
            m / base,
            all.join(", ")
        );
    }
}
