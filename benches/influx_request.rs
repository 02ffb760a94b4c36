//! The cost of preparing an InfluxDB write request: scanning the line boundaries of a
//! body and gzipping it, per MB of realistic line protocol. The writer's gzip
//! (libdeflate) runs beside flate2's default miniz_oxide backend, which it replaced.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinflux_influx::{LineBatch, gzip_body};

/// About 1 MiB of Telegraf-like `cpu` lines: 200 hosts, 8 fields, ns timestamps.
fn body() -> Vec<u8> {
    let mut body = Vec::with_capacity(1 << 20);
    let mut i: u64 = 0;
    while body.len() < 1 << 20 {
        let host = i % 200;
        let t = 1_700_000_000_000_000_000 + i * 10_000_000;
        let line = format!(
            "cpu,cpu=cpu{},host=server-{host:03},region=eu-west-{} usage_user={:.3},usage_system={:.3},usage_idle={:.3},usage_iowait={:.3},usage_irq=0,usage_softirq={:.3},usage_steal=0,usage_guest=0 {t}\n",
            i % 8,
            host % 3,
            (i * 7919 % 10_000) as f64 / 100.0,
            (i * 104_729 % 5_000) as f64 / 100.0,
            (i * 1_299_709 % 10_000) as f64 / 100.0,
            (i * 15_485_863 % 300) as f64 / 100.0,
            (i * 32_452_843 % 200) as f64 / 100.0,
        );
        body.extend_from_slice(line.as_bytes());
        i += 1;
    }
    body
}

fn prepare_request(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("influx_request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("line_starts_1MiB", |b| {
        b.iter(|| LineBatch::new(black_box(body.clone())).len())
    });
    for level in [1, 6] {
        group.bench_function(format!("gzip_level{level}_1MiB"), |b| {
            b.iter(|| gzip_body(black_box(&body), level).len())
        });
        group.bench_function(format!("flate2_miniz_level{level}_1MiB"), |b| {
            b.iter(|| flate2_gzip(black_box(&body), level).len())
        });
    }
    group.finish();
    for level in [1, 6] {
        for (name, packed) in [
            ("writer (libdeflate)", gzip_body(&body, level).to_vec()),
            ("flate2 miniz_oxide", flate2_gzip(&body, level)),
        ] {
            eprintln!(
                "gzip level {level}, {name}: {} -> {} bytes ({:.1}x)",
                body.len(),
                packed.len(),
                body.len() as f64 / packed.len() as f64
            );
        }
    }
}

/// The peer: flate2's streaming encoder on its default backend.
fn flate2_gzip(body: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        flate2::Compression::new(level),
    );
    encoder.write_all(body).expect("writing into a Vec");
    encoder.finish().expect("finishing into a Vec")
}

criterion_group!(benches, prepare_request);
criterion_main!(benches);
