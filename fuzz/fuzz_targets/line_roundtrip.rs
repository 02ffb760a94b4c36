//! Any bytes: parsing never panics, and every accepted line survives encode then parse.
#![no_main]

use kinflux_line::{encode_point, parse};
use libfuzzer_sys::fuzz_target;

mod line_input;

fuzz_target!(|data: &[u8]| {
    let Some((options, input)) = line_input::split(data) else {
        return;
    };
    for item in parse(input, options) {
        let Ok(point) = item else { continue };
        let mut out = Vec::new();
        encode_point(&point, options.precision, &mut out).expect("an accepted point encodes");
        let mut again = parse(&out, options);
        let back = again
            .next()
            .expect("one line")
            .expect("an encoded point parses");
        assert!(again.next().is_none(), "an encoded point is one line");
        assert_eq!(back.into_owned(), point.into_owned());
    }
});
