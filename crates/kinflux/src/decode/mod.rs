//! Record values to points: line protocol, Avro and JSON.
//!
//! A decoder hands each point it finds to a callback, borrowing from the record where it
//! can, and reports what it could not decode. A line-protocol record may be partly good:
//! its good lines go on, and only the bad ones are reported.

mod avro;
mod json;

use kinflux_line::Forward;
use kinflux_series::{PointRef, Timestamp};

pub use avro::{AvroDecoder, Schemas};
pub use json::{JsonDecoder, JsonError, JsonMappingError};

use crate::metrics::ErrorClass;

/// What could not be decoded from one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// Why, as the dead-letter header names it.
    pub class: ErrorClass,
    /// What went wrong, with positions where there are any.
    pub message: String,
    /// The bad part of the value when only part of it is bad (the bad lines of a
    /// line-protocol record); `None` means the whole value.
    pub bad_part: Option<Vec<u8>>,
}

/// A failure that is not the record's fault (the schema registry is down): the record
/// must be decoded again later, not dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// A line-protocol point's bytes as they came in the record, for writing them on without
/// encoding the point again; see [`kinflux_line::RawSections`]. Empty for other formats.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Raw<'a> {
    /// The series key, when it is exactly what the encoder would write.
    pub(crate) series_key: Option<&'a [u8]>,
    /// The field section, when no field key repeats in it.
    pub(crate) fields: Option<&'a [u8]>,
}

/// What a decoder hands the pipeline.
#[derive(Debug)]
pub(crate) enum Decoded<'p> {
    /// A point, with its bytes as they came where the format has them.
    Point(PointRef<'p>, Raw<'p>),
    /// A valid line-protocol line to write on as it is (only when asked for).
    Line {
        /// The series key, exactly as the encoder would write it.
        series_key: &'p [u8],
        /// The field section, with no key repeated.
        fields: &'p [u8],
        /// The line's time, or the fallback.
        timestamp: Option<Timestamp>,
        /// The line's own time as written, for copying instead of formatting.
        written_time: Option<kinflux_line::WrittenTime<'p>>,
    },
}

/// Decodes record values in the configured format.
#[derive(Debug)]
#[non_exhaustive]
pub enum Decoder {
    /// InfluxDB line protocol.
    Line(kinflux_line::ParseOptions),
    /// Avro.
    Avro(AvroDecoder),
    /// JSON.
    Json(JsonDecoder),
}

impl Decoder {
    /// Decodes `value`, calling `emit` for each point. `fallback` is the time of points
    /// whose data has none (the Kafka record timestamp).
    pub async fn decode(
        &self,
        value: &[u8],
        fallback: Option<Timestamp>,
        emit: &mut (dyn for<'p> FnMut(PointRef<'p>) + Send),
    ) -> Result<Option<DecodeFailure>, Unavailable> {
        self.decode_raw(value, fallback, false, &mut |decoded| {
            if let Decoded::Point(point, _) = decoded {
                emit(point);
            }
        })
        .await
    }

    /// As [`decode`](Self::decode), also handing over the point's bytes as they came
    /// (line protocol only), so the pipeline can copy them instead of encoding again.
    /// With `lines`, line-protocol lines that can be written on as they are come as
    /// [`Decoded::Line`], without a point.
    pub(crate) async fn decode_raw(
        &self,
        value: &[u8],
        fallback: Option<Timestamp>,
        lines: bool,
        emit: &mut (dyn for<'p> FnMut(Decoded<'p>) + Send),
    ) -> Result<Option<DecodeFailure>, Unavailable> {
        match self {
            Decoder::Line(options) => Ok(decode_lines(value, *options, fallback, lines, emit)),
            Decoder::Avro(d) => {
                d.decode(value, fallback, &mut |point| {
                    emit(Decoded::Point(point, Raw::default()))
                })
                .await
            }
            Decoder::Json(d) => Ok(match d.decode(value, fallback) {
                Ok(point) => {
                    emit(Decoded::Point(point.as_point_ref(), Raw::default()));
                    None
                }
                Err(e) => Some(DecodeFailure {
                    class: ErrorClass::Decode,
                    message: e.to_string(),
                    bad_part: None,
                }),
            }),
        }
    }
}

fn decode_lines(
    value: &[u8],
    options: kinflux_line::ParseOptions,
    fallback: Option<Timestamp>,
    forward_lines: bool,
    emit: &mut (dyn for<'p> FnMut(Decoded<'p>) + Send),
) -> Option<DecodeFailure> {
    let options = kinflux_line::ParseOptions {
        default_time: fallback,
        ..options
    };
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
                emit(Decoded::Line {
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
                emit(Decoded::Point(point, raw));
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
    Some(DecodeFailure {
        class: ErrorClass::Decode,
        message: messages.join("; "),
        // A record with no good line goes to the dead-letter topic whole.
        bad_part: (good > 0).then_some(bad_part),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinflux_series::PointView;

    #[tokio::test]
    async fn good_lines_go_on_and_only_bad_lines_are_reported() {
        let d = Decoder::Line(Default::default());
        let mut got = Vec::new();
        let failure = d
            .decode(
                b"cpu v=1 10\ncpu v=oops 11\nmem v=2\n",
                Some(Timestamp::from_nanos(99)),
                &mut |p| got.push((p.measurement().to_owned(), p.timestamp())),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            [
                ("cpu".to_owned(), Some(Timestamp::from_nanos(10))),
                ("mem".to_owned(), Some(Timestamp::from_nanos(99)))
            ]
        );
        assert_eq!(failure.class, ErrorClass::Decode);
        assert!(failure.message.starts_with("2:"), "{}", failure.message);
        assert_eq!(failure.bad_part.as_deref(), Some(&b"cpu v=oops 11\n"[..]));
    }

    #[tokio::test]
    async fn lines_that_can_go_on_as_they_are_come_without_a_point() {
        let d = Decoder::Line(Default::default());
        let value = b"cpu,a=1,b=2 v=1 10\ncpu,b=2,a=1 v=2 11\ncpu v=oops\nmem v=3\n";
        let mut got = Vec::new();
        let failure = d
            .decode_raw(value, Some(Timestamp::from_nanos(99)), true, &mut |d| {
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
            })
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
        let d = Decoder::Line(Default::default());
        let failure = d
            .decode(b"nonsense\n", None, &mut |_| panic!("no point expected"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failure.bad_part, None);
    }
}
