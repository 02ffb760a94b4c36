//! Merge plus encode: points in, line-protocol batches out, in points per second; and
//! parsed line-protocol lines forwarded into batches, as the bridge does.
//!
//! `cargo bench -p kinflux-benches --bench batch_merge`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public function.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kinflux_batch::{Batcher, FlushPolicy, RecordId};
use kinflux_line::{Forward, ParseOptions};
use kinflux_series::{Point, Precision, Timestamp};

/// Telegraf-like `cpu` points: 6 tags, 10 float fields, one series per host and cpu.
/// With `split_fields`, each (series, time) arrives as two points with half the fields
/// each, so every second point is merged.
fn corpus(n: usize, split_fields: bool) -> Vec<Point> {
    let fields = [
        "usage_user",
        "usage_system",
        "usage_idle",
        "usage_nice",
        "usage_iowait",
        "usage_irq",
        "usage_softirq",
        "usage_steal",
        "usage_guest",
        "usage_guest_nice",
    ];
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let host = format!("host-{:03}", i % 200);
        let cpu = format!("cpu{}", i % 8);
        let ts =
            Timestamp::from_nanos(1_700_000_000_000_000_000 + (i / 1600) as i64 * 10_000_000_000);
        let halves: &[&[&str]] = if split_fields {
            &[&fields[..5], &fields[5..]]
        } else {
            &[&fields]
        };
        for half in halves {
            let mut b = Point::builder("cpu")
                .tag("host", host.as_str())
                .tag("cpu", cpu.as_str())
                .tag("region", "eu-west-1")
                .tag("dc", "dub2")
                .tag("rack", format!("r{}", i % 17))
                .tag("os", "linux")
                .timestamp(ts);
            for (j, f) in half.iter().enumerate() {
                b = b.field(*f, (i * 7 + j) as f64 / 3.0);
            }
            out.push(b.build().expect("corpus points are valid"));
        }
        i += 1;
    }
    out.truncate(n);
    out
}

fn merge_and_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_merge_encode");
    let topic: std::sync::Arc<str> = "telemetry".into();
    for (name, split) in [("distinct", false), ("half_merged", true)] {
        let points = corpus(20_000, split);
        group.throughput(Throughput::Elements(points.len() as u64));
        group.bench_with_input(BenchmarkId::new("points", name), &points, |b, points| {
            let policy = FlushPolicy {
                max_points: 5_000,
                max_bytes: 8 << 20,
                max_age: Duration::from_secs(60),
                sort_by_series: true,
            };
            let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
            b.iter(|| {
                let mut bytes = 0;
                for (offset, p) in points.iter().enumerate() {
                    let record = RecordId {
                        topic: topic.clone(),
                        partition: 0,
                        offset: offset as i64,
                    };
                    if let Some(batch) = batcher.add(p, &record).expect("corpus points encode") {
                        bytes += batch.body().len();
                    }
                }
                if let Some(batch) = batcher.flush() {
                    bytes += batch.body().len();
                }
                black_box(bytes)
            });
        });
    }
    group.finish();
}

/// Parsed lines into batches of 10,000, the bridge's path for line protocol: series key,
/// fields and time as written, 100 lines a record.
fn forward_lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_forward");
    let input = kinflux_benches::load_lines(20_000, 1_000);
    let parsed: Vec<_> = {
        let mut lines = kinflux_line::parse(&input, ParseOptions::default());
        std::iter::from_fn(|| lines.next_forward())
            .map(|line| match line.expect("generated lines parse") {
                Forward::Raw {
                    series_key,
                    fields,
                    written_time: Some(time),
                    ..
                } => (series_key, fields, time),
                other => panic!("generated lines forward raw with their time: {other:?}"),
            })
            .collect()
    };
    let records: Vec<RecordId> = (0..parsed.len() / 100 + 1)
        .map(|offset| RecordId {
            topic: "load".into(),
            partition: 0,
            offset: offset as i64,
        })
        .collect();
    group.throughput(Throughput::Elements(parsed.len() as u64));
    group.bench_function("lines", |b| {
        let policy = FlushPolicy {
            max_points: 10_000,
            ..FlushPolicy::default()
        };
        let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
        b.iter(|| {
            let mut bytes = 0;
            for (i, (key, fields, time)) in parsed.iter().enumerate() {
                let (key, fields) = (&input[key.clone()], &input[fields.clone()]);
                let added = batcher.add_encoded_written(key, fields, *time, &records[i / 100]);
                if let Some(batch) = added.expect("generated lines encode") {
                    bytes += batch.body().len();
                }
            }
            if let Some(batch) = batcher.flush() {
                bytes += batch.body().len();
            }
            black_box(bytes)
        });
    });
    group.finish();
}

criterion_group!(benches, merge_and_encode, forward_lines);
criterion_main!(benches);
