//! Arbitrary bytes through the facade's JSON decoder under a few mappings (flattened
//! objects, explicit fields, every timestamp unit and RFC 3339, a flat mapping whose flat
//! objects are read without a tree): a point or a typed error, never a panic.
#![no_main]

use std::sync::LazyLock;

use kinflux::decode::JsonDecoder;
use kinflux::series::Timestamp;
use libfuzzer_sys::fuzz_target;

const MAPPINGS: &[&str] = &[
    r#"
    measurement = { constant = "garden" }
    tags = ["sensor.id", "zone"]
    timestamp = { field = "ts", unit = "ms" }
    "#,
    r#"
    measurement = { field = "m" }
    tags = ["t"]
    fields = ["v", "list", "deep.x.y"]
    timestamp = { field = "ts" }
    "#,
    r#"
    measurement = { constant = "m" }
    timestamp = { field = "ts", unit = "ns" }
    "#,
    r#"
    measurement = { constant = "m" }
    tags = ["a.b.c"]
    timestamp = { field = "when", unit = "s" }
    "#,
    // Flat: every mapped path one top-level member, so flat objects skip the tree.
    r#"
    measurement = { field = "m" }
    tags = ["host", "region"]
    optional = ["region"]
    timestamp = { field = "time", unit = "ms" }
    "#,
];

static DECODERS: LazyLock<Vec<JsonDecoder>> = LazyLock::new(|| {
    MAPPINGS
        .iter()
        .map(|m| JsonDecoder::new(toml::from_str(m).expect("fuzz mapping parses")).expect("valid"))
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let decoder = &DECODERS[usize::from(pick) % DECODERS.len()];
    let fallback = (pick & 0x80 != 0).then(|| Timestamp::from_nanos(1_700_000_000_000_000_000));
    let _ = decoder.decode(body, fallback);
});
