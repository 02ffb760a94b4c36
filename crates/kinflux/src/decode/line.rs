//! InfluxDB line protocol, any number of lines per record. Lines the pipeline adds nothing
//! to are handed on as the bytes they came as (no point is built for them).

use kinflux_line::{Forward, ParseOptions};
use kinflux_series::Precision;

use super::{DecodeFailure, Decoded, Decoding, Emitter, Input, Raw};
use crate::pipeline::ErrorClass;

/// Decodes line protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineDecoder {
    options: ParseOptions,
}

impl LineDecoder {
    /// A decoder for timestamps written in `precision`.
    pub fn new(precision: Precision) -> Self {
        LineDecoder {
            options: ParseOptions {
                precision,
                default_time: None,
            },
        }
    }
}

impl super::Decode for LineDecoder {
    fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a> {
        match decode_lines(input, self.options, out) {
            None => Decoding::ok(),
            Some(failure) => Decoding::failed(failure),
        }
    }
}

fn decode_lines(
    input: Input<'_>,
    options: ParseOptions,
    out: &mut Emitter<'_>,
) -> Option<DecodeFailure> {
    let value = input.value;
    let options = ParseOptions {
        default_time: input.default_time,
        ..options
    };
    let forward_lines = out.forwards_lines();
    let mut lines = kinflux_line::parse(value, options);
    let mut messages = Vec::new();
    let mut bad_part = Vec::new();
    let mut good = 0usize;
    loop {
        let item = if forward_lines {
            lines.next_forward()
        } else {
            lines.next().map(|r| r.map(Forward::Point))
        };
        let Some(item) = item else { break };
        match item {
            Ok(Forward::Raw {
                series_key,
                fields,
                timestamp,
                written_time,
            }) => {
                good += 1;
                out.line(Decoded::Line {
                    series_key: &value[series_key],
                    fields: &value[fields],
                    timestamp,
                    written_time,
                });
            }
            Ok(Forward::Point(point)) => {
                good += 1;
                let sections = lines.raw_sections().unwrap_or(kinflux_line::RawSections {
                    series_key: None,
                    fields: None,
                });
                let raw = Raw {
                    series_key: sections.series_key.map(|r| &value[r]),
                    fields: sections.fields.map(|r| &value[r]),
                };
                out.point_with_raw(point, raw);
            }
            Err(e) => {
                messages.push(e.to_string());
                let range = lines.line_range();
                bad_part.extend_from_slice(&value[range]);
                bad_part.push(b'\n');
            }
        }
    }
    if messages.is_empty() {
        return None;
    }
    let failure = DecodeFailure::new(ErrorClass::Decode, messages.join("; "));
    // A record with no good line goes to the dead-letter topic whole.
    Some(if good > 0 {
        failure.with_bad_part(bad_part)
    } else {
        failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decode, decode_value};
    use kinflux_series::{PointView, Timestamp};

    #[tokio::test]
    async fn good_lines_go_on_and_only_bad_lines_are_reported() {
        let d = LineDecoder::default();
        let (points, failure) = decode_value(
            &d,
            b"cpu v=1 10\ncpu v=oops 11\nmem v=2\n",
            Some(Timestamp::from_nanos(99)),
        )
        .await
        .unwrap();
        let got: Vec<_> = points
            .iter()
            .map(|p| (p.measurement().to_string(), p.timestamp()))
            .collect();
        assert_eq!(
            got,
            [
                ("cpu".to_owned(), Some(Timestamp::from_nanos(10))),
                ("mem".to_owned(), Some(Timestamp::from_nanos(99)))
            ]
        );
        let failure = failure.unwrap();
        assert_eq!(failure.class, ErrorClass::Decode);
        assert!(failure.message.starts_with("2:"), "{}", failure.message);
        assert_eq!(failure.bad_part.as_deref(), Some(&b"cpu v=oops 11\n"[..]));
    }

    #[tokio::test]
    async fn lines_that_can_go_on_as_they_are_come_without_a_point() {
        let d = LineDecoder::default();
        let value = b"cpu,a=1,b=2 v=1 10\ncpu,b=2,a=1 v=2 11\ncpu v=oops\nmem v=3\n";
        let mut got = Vec::new();
        let mut sink = |d: Decoded<'_>| {
            got.push(match d {
                Decoded::Line {
                    series_key,
                    fields,
                    timestamp,
                    ..
                } => format!(
                    "line {} {} {timestamp:?}",
                    String::from_utf8_lossy(series_key),
                    String::from_utf8_lossy(fields)
                ),
                Decoded::Point(p, _) => format!("point {:?}", p.tags().collect::<Vec<_>>()),
            })
        };
        let mut out = Emitter::new(&mut sink, true);
        let failure = d
            .decode_record(Input::new(value, Some(Timestamp::from_nanos(99))), &mut out)
            .finish()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            [
                "line cpu,a=1,b=2 v=1 Some(Timestamp(10))",
                r#"point [("a", "1"), ("b", "2")]"#,
                "line mem v=3 Some(Timestamp(99))",
            ]
        );
        assert_eq!(failure.bad_part.as_deref(), Some(&b"cpu v=oops\n"[..]));
    }

    #[tokio::test]
    async fn a_record_with_no_good_line_is_reported_whole() {
        let (points, failure) = decode_value(&LineDecoder::default(), b"nonsense\n", None)
            .await
            .unwrap();
        assert!(points.is_empty());
        assert_eq!(failure.unwrap().bad_part, None);
    }
}
