//! The record-batch decoder of kinflux-kafka's fetch path, in records per second, per
//! codec: 200-byte line-protocol values, 500 records per batch, 20 batches per fetched
//! partition (the shape of `consume_bench`). kafka-protocol's `RecordBatchDecoder` decodes
//! the same bytes beside it: it copies headers into an `IndexMap` and each compressed
//! batch through its own buffers.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::records::RecordBatchDecoder;
use kinflux_benches::Lcg;
use kinflux_kafka::fetch::{Compression, DecodeOptions, build::BatchBuilder, decode_partition};

const BATCHES: usize = 20;
const PER_BATCH: usize = 500;

/// One fetched partition's bytes: `BATCHES` batches of `PER_BATCH` records.
fn partition(codec: Compression) -> Bytes {
    let mut rng = Lcg::new(42);
    let mut out = BytesMut::new();
    for b in 0..BATCHES {
        let mut batch = BatchBuilder::new((b * PER_BATCH) as i64);
        batch.compression(codec).xerial_snappy(true);
        for i in 0..PER_BATCH {
            let host = rng.below(200);
            let value = format!(
                "cpu,cpu=cpu{},host=server-{host:03},region=eu-west-{} usage_user={:.3},usage_system={:.3},usage_idle={:.3} {}",
                i % 8,
                host % 3,
                rng.below(10_000) as f64 / 100.0,
                rng.below(5_000) as f64 / 100.0,
                rng.below(10_000) as f64 / 100.0,
                1_700_000_000_000_000_000u64 + (b * PER_BATCH + i) as u64 * 10_000_000,
            );
            batch.record(None, Some(value.as_bytes()), &[]);
        }
        out.extend_from_slice(&batch.build().expect("codec feature on"));
    }
    out.freeze()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch_decode");
    group.throughput(Throughput::Elements((BATCHES * PER_BATCH) as u64));
    let options = DecodeOptions::default();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let data = partition(codec);
        let check = decode_partition(data.clone(), 0, &[], &options);
        assert_eq!(check.records.len(), BATCHES * PER_BATCH);
        assert!(check.error.is_none());
        eprintln!(
            "{codec}: {} bytes for {} records",
            data.len(),
            BATCHES * PER_BATCH
        );
        group.bench_function(format!("kinflux/{codec}"), |b| {
            b.iter(|| {
                decode_partition(black_box(data.clone()), 0, &[], &options)
                    .records
                    .len()
            })
        });
        group.bench_function(format!("kafka-protocol/{codec}"), |b| {
            b.iter(|| {
                let mut buf = black_box(data.clone());
                RecordBatchDecoder::decode_all(&mut buf)
                    .expect("decodes")
                    .iter()
                    .map(|s| s.records.len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
