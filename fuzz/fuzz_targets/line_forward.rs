//! Any bytes: the forwarding path (`next_forward`, which reads plain lines in one pass)
//! agrees with the full parser line by line. A line forwarded as bytes is the point the
//! parser builds, written as the encoder writes it; a bad line is the same error.
#![no_main]

use kinflux_line::{Forward, encode_series_key, parse};
use kinflux_series::PointView;
use libfuzzer_sys::fuzz_target;

mod line_input;

fuzz_target!(|data: &[u8]| {
    let Some((options, input)) = line_input::split(data) else {
        return;
    };
    let (mut forwarded, mut parsed) = (parse(input, options), parse(input, options));
    loop {
        let (f, p) = (forwarded.next_forward(), parsed.next());
        assert_eq!(forwarded.line_range(), parsed.line_range());
        match (f, p) {
            (None, None) => break,
            (Some(Err(a)), Some(Err(b))) => assert_eq!(a, b),
            (Some(Ok(Forward::Point(a))), Some(Ok(b))) => assert_eq!(a, b),
            (
                Some(Ok(Forward::Raw {
                    series_key,
                    fields,
                    timestamp,
                    written_time,
                })),
                Some(Ok(point)),
            ) => {
                let mut key = Vec::new();
                encode_series_key(&point, &mut key).expect("a parsed point's key encodes");
                assert_eq!(&input[series_key], &key[..]);
                // Values keep their spelling (`1.50`, `t`), so compare what they read as.
                let line = [&key[..], b" ", &input[fields]].concat();
                let again = parse(&line, options)
                    .next()
                    .expect("one line")
                    .expect("forwarded bytes parse");
                assert!(again.fields().eq(point.fields()), "fields differ");
                assert_eq!(timestamp, point.timestamp());
                if let Some(written) = written_time {
                    assert_eq!(Some(written.timestamp()), point.timestamp());
                    assert_eq!(written.precision(), options.precision);
                }
            }
            (f, p) => panic!("the two paths disagree: {f:?} against {p:?}"),
        }
    }
});
