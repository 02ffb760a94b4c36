//! Line-protocol throughput: kinflux-line's parser and encoder, and the parser of
//! InfluxDB IOx (`influxdb-line-protocol` 2.0.0) on the same bytes.
//!
//! ```text
//! cargo bench -p kinflux-benches --bench line_protocol -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p kinflux-benches --bench line_protocol -- forward_lines
//! ```

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinflux_benches::{consume_peer_line, consume_point, load_lines, telegraf_corpus};
use kinflux_line::{Forward, ParseOptions, encode_points, parse, validate};
use kinflux_series::{Point, Precision};

const LINES: usize = 2_000;

fn parse_groups(c: &mut Criterion) {
    let corpus = telegraf_corpus(LINES);
    let bytes = corpus.as_bytes();
    for (group, throughput) in [
        ("parse_lines", Throughput::Bytes(bytes.len() as u64)),
        ("parse_lines_per_line", Throughput::Elements(LINES as u64)),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(throughput);
        g.bench_function("kinflux_line", |b| {
            b.iter(|| {
                let mut n = 0;
                for p in parse(black_box(bytes), ParseOptions::default()) {
                    n += consume_point(&p.expect("corpus is valid"));
                }
                n
            })
        });
        g.bench_function("influxdb_line_protocol_2_0_0", |b| {
            b.iter(|| {
                let mut n = 0;
                for l in influxdb_line_protocol::parse_lines(black_box(&corpus)) {
                    n += consume_peer_line(&l.expect("corpus is valid"));
                }
                n
            })
        });
        g.bench_function("kinflux_line_validate", |b| {
            b.iter(|| validate(black_box(bytes), ParseOptions::default()).good_lines)
        });
        g.finish();
    }
}

fn encode_groups(c: &mut Criterion) {
    let corpus = telegraf_corpus(LINES);
    let points: Vec<Point> = parse(corpus.as_bytes(), ParseOptions::default())
        .map(|p| p.expect("corpus is valid").into_owned())
        .collect();
    let mut out = Vec::with_capacity(corpus.len() * 2);
    encode_points(&points, Precision::Nanoseconds, &mut out).expect("encodable");
    let encoded_len = out.len() as u64;
    for (group, throughput) in [
        ("encode_lines", Throughput::Bytes(encoded_len)),
        ("encode_lines_per_line", Throughput::Elements(LINES as u64)),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(throughput);
        g.bench_function("kinflux_line", |b| {
            b.iter(|| {
                out.clear();
                encode_points(black_box(&points), Precision::Nanoseconds, &mut out)
                    .expect("encodable");
                out.len()
            })
        });
        g.finish();
    }
}

/// The bridge's path for line protocol: `next_forward` over `e2e_bench`'s lines and the
/// Telegraf corpus, counting the lines that go on as written.
fn forward_groups(c: &mut Criterion) {
    let load = load_lines(LINES, 1_000);
    let telegraf = telegraf_corpus(LINES);
    let mut g = c.benchmark_group("forward_lines_per_line");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, corpus) in [("e2e_load", &load[..]), ("telegraf", telegraf.as_bytes())] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut raw = 0;
                let mut lines = parse(black_box(corpus), ParseOptions::default());
                while let Some(item) = lines.next_forward() {
                    raw += usize::from(matches!(item, Ok(Forward::Raw { .. })));
                }
                raw
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse_groups, encode_groups, forward_groups);
criterion_main!(benches);
