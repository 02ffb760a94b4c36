//! JSON decoding as the pipeline does it: each document (`e2e_bench`'s JSON input) parsed
//! into a view that borrows from it, and added to a batcher, which encodes the line.
#![allow(missing_docs)] // `criterion_group!` defines an undocumented public function.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinflux::decode::{JsonDecoder, NumberMode, Typing};
use kinflux_batch::{Batcher, FlushPolicy, RecordId};
use kinflux_series::Precision;

const DOCUMENTS: usize = 10_000;
const SERIES: usize = 1000;

/// The mapping `e2e_bench` gives the bridge.
fn decoder(numbers: NumberMode) -> JsonDecoder {
    let mapping = toml::from_str(
        r#"
        measurement = { constant = "load" }
        tags = ["host", "region"]
        timestamp = { field = "time", unit = "ms" }
        "#,
    )
    .expect("a valid mapping");
    let mut typing = Typing::default();
    typing.numbers = numbers;
    JsonDecoder::with_typing(mapping, typing).expect("a valid decoder")
}

fn json_decode(c: &mut Criterion) {
    let documents: Vec<Vec<u8>> = (0..DOCUMENTS)
        .map(|i| kinflux_benches::load_json(i, SERIES).into_bytes())
        .collect();
    let source = RecordId {
        topic: Arc::from("load"),
        partition: 0,
        offset: 0,
    };
    let mut group = c.benchmark_group("json_decode");
    group.throughput(Throughput::Elements(DOCUMENTS as u64));
    for (name, numbers) in [("floats", NumberMode::Float), ("auto", NumberMode::Auto)] {
        let decoder = decoder(numbers);
        group.bench_function(format!("{name}_into_batcher"), |b| {
            let policy = FlushPolicy {
                max_points: DOCUMENTS,
                ..FlushPolicy::default()
            };
            let mut batcher = Batcher::new(policy, Precision::Nanoseconds);
            b.iter(|| {
                for doc in &documents {
                    decoder
                        .decode_each(doc, None, &mut |point| {
                            batcher.add(&point, &source).expect("encodable");
                        })
                        .expect("a valid document");
                }
                black_box(batcher.flush())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, json_decode);
criterion_main!(benches);
