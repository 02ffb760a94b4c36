//! Arbitrary text through `kinflux::Config::from_toml_with_env`: TOML syntax, `${NAME}`
//! interpolation (with and without defaults, escapes, unknown names) and validation must
//! end in a config or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A fixed environment, so a run is reproducible: some names set, one empty, the rest
/// missing.
fn lookup(name: &str) -> Option<String> {
    match name {
        "BROKERS" => Some("127.0.0.1:9092".into()),
        "TOKEN" => Some("s3cr3t-${NESTED}".into()),
        "EMPTY" => Some(String::new()),
        "PORT" => Some("9273".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = kinflux::Config::from_toml_with_env(text, &lookup) {
        // A config that parses must also print (Debug redacts secrets) without panicking.
        let _ = format!("{config:?}");
    }
});
