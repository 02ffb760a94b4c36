//! Line-protocol throughput per CPU second, for shared machines.
//!
//! Criterion measures wall time, which on a busy machine counts the time other processes
//! hold the core. This runs the same work as `line_protocol` and divides by the CPU time
//! of this thread (Linux: `/proc/thread-self/schedstat`; elsewhere it falls back to wall
//! time), keeping the best of five rounds.
//!
//! ```text
//! cargo bench -p kinflux-benches --bench line_protocol_cpu
//! ```

use std::hint::black_box;
use std::time::Instant;

use kinflux_benches::{consume_peer_line, consume_point, telegraf_corpus};
use kinflux_line::{Forward, ParseOptions, encode_points, parse, validate};
use kinflux_series::{Point, Precision};

const LINES: usize = 2_000;
const PASSES: u32 = 200;
const ROUNDS: usize = 5;

/// Nanoseconds this thread has run on a CPU, or wall nanoseconds where that is unknown.
fn cpu_nanos(start: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| start.elapsed().as_nanos())
}

/// Runs `pass` `PASSES` times per round and returns the best CPU seconds per pass.
fn measure(mut pass: impl FnMut() -> usize) -> f64 {
    black_box(pass());
    let start = Instant::now();
    (0..ROUNDS)
        .map(|_| {
            let before = cpu_nanos(start);
            for _ in 0..PASSES {
                black_box(pass());
            }
            (cpu_nanos(start) - before) as f64 / 1e9 / f64::from(PASSES)
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(name: &str, bytes: usize, secs: f64) {
    println!(
        "{name:<38} {:>8.1} MB/s {:>12.0} lines/s",
        bytes as f64 / secs / 1e6,
        LINES as f64 / secs
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported, so ignore arguments.
    let corpus = telegraf_corpus(LINES);
    let bytes = corpus.as_bytes();
    println!("corpus: {LINES} lines, {} bytes", bytes.len());

    let ours = measure(|| {
        parse(black_box(bytes), ParseOptions::default())
            .map(|p| consume_point(&p.expect("corpus is valid")))
            .sum()
    });
    report("parse kinflux_line", bytes.len(), ours);
    let peer = measure(|| {
        influxdb_line_protocol::parse_lines(black_box(&corpus))
            .map(|l| consume_peer_line(&l.expect("corpus is valid")))
            .sum()
    });
    report("parse influxdb_line_protocol 2.0.0", bytes.len(), peer);
    println!(
        "{:<38} {:>8.2}x",
        "parse ratio kinflux_line / peer",
        peer / ours
    );
    let check = measure(|| validate(black_box(bytes), ParseOptions::default()).good_lines);
    report("validate kinflux_line", bytes.len(), check);
    // What the bridge does with lines it adds nothing to: byte ranges, points only for
    // lines that must be encoded again (this corpus has escapes, so some do).
    let forward = measure(|| {
        let mut lines = parse(black_box(bytes), ParseOptions::default());
        let mut sum = 0;
        while let Some(line) = lines.next_forward() {
            sum += match line.expect("corpus is valid") {
                Forward::Raw { fields, .. } => fields.len(),
                Forward::Point(p) => consume_point(&p),
            };
        }
        sum
    });
    report("next_forward kinflux_line", bytes.len(), forward);

    let points: Vec<Point> = parse(bytes, ParseOptions::default())
        .map(|p| p.expect("corpus is valid").into_owned())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 2);
    encode_points(&points, Precision::Nanoseconds, &mut out).expect("encodable");
    let encoded = out.len();
    let encode = measure(|| {
        out.clear();
        encode_points(black_box(&points), Precision::Nanoseconds, &mut out).expect("encodable");
        out.len()
    });
    report("encode kinflux_line", encoded, encode);
}
