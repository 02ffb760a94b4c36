//! Any bytes: parsing never panics, and every accepted line survives encode then parse.
#![no_main]

use kinflux_line::{ParseOptions, encode_point, parse};
use kinflux_series::Precision;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the precision, so all four are exercised.
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let precision = match selector % 4 {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        _ => Precision::Seconds,
    };
    let options = ParseOptions {
        precision,
        default_time: None,
    };
    for item in parse(input, options) {
        let Ok(point) = item else { continue };
        let mut out = Vec::new();
        encode_point(&point, precision, &mut out).expect("an accepted point encodes");
        let mut again = parse(&out, options);
        let back = again
            .next()
            .expect("one line")
            .expect("an encoded point parses");
        assert!(again.next().is_none(), "an encoded point is one line");
        assert_eq!(back.into_owned(), point.into_owned());
    }
});
