//! Record values to points: the [`Decode`] trait, and the built-in decoders for line
//! protocol ([`LineDecoder`]), Avro ([`AvroDecoder`]) and JSON ([`JsonDecoder`]).
//!
//! A decoder hands each point it finds to an [`Emitter`], borrowing from the record where
//! it can, and reports what it could not decode. A line-protocol record may be partly
//! good: its good lines go on, and only the bad ones are reported.
//!
//! A program brings its own format by implementing [`Decode`]:
//!
//! ```
//! use kinflux::decode::{Decode, DecodeFailure, Decoding, Emitter, Input};
//! use kinflux::ErrorClass;
//! use kinflux::series::{Point, PointView};
//!
//! /// `name,value` text records.
//! #[derive(Debug)]
//! struct Csv;
//!
//! impl Decode for Csv {
//!     fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a> {
//!         let text = String::from_utf8_lossy(input.value);
//!         let parsed = text.trim().split_once(',').and_then(|(name, v)| {
//!             let v: f64 = v.parse().ok()?;
//!             let mut point = Point::builder(name).field("value", v);
//!             if let Some(t) = input.default_time {
//!                 point = point.timestamp(t);
//!             }
//!             point.build().ok()
//!         });
//!         match parsed {
//!             Some(point) => {
//!                 out.point(point.as_point_ref());
//!                 Decoding::ok()
//!             }
//!             None => Decoding::failed(DecodeFailure::new(ErrorClass::Decode, "expected name,value")),
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let (points, failure) = kinflux::decode::decode_value(&Csv, b"temp,21.5", None).await.unwrap();
//! assert_eq!(points[0].measurement().as_str(), "temp");
//! assert!(failure.is_none());
//! # });
//! ```

mod avro;
mod from_config;
mod json;
mod line;
mod time_format;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use kinflux_kafka::Record;
use kinflux_series::{Point, PointRef, Timestamp};

pub use avro::{AvroDecoder, Schemas, TelegrafAvro, TelegrafSchemas};
pub(crate) use from_config::from_config;
pub use from_config::registry_client;
pub use json::{
    FieldType, JsonDecoder, JsonError, JsonMappingError, NumberMode, TelegrafJsonDecoder, Typing,
};
pub use line::LineDecoder;
pub use time_format::TimeFormat;

use crate::pipeline::ErrorClass;

/// Turns a Kafka record's value into points.
///
/// `decode_record` runs on the pipeline's task, once per record, in offset order. Most
/// formats decode at once and return [`Decoding::ok`] or [`Decoding::failed`]; a decoder
/// that must fetch something first (a schema) returns [`Decoding::pending`] with a future.
/// A decoder is shared (`Sync`): keep caches behind interior mutability.
pub trait Decode: Send + Sync + fmt::Debug + 'static {
    /// Decodes `input`, handing each point to `out`.
    ///
    /// Returns a [`DecodeFailure`] for what cannot be decoded (the record, or its bad
    /// part, goes to the dead-letter topic), or [`Unavailable`] when the failure is not
    /// the record's (a schema registry is down): the pipeline then decodes the same
    /// record again later. A decoder that reports `Unavailable` should emit nothing first.
    fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a>;
}

/// A shared decoder decodes as the decoder it shares.
impl<D: Decode + ?Sized> Decode for std::sync::Arc<D> {
    fn decode_record<'a>(&'a self, input: Input<'a>, out: &'a mut Emitter<'_>) -> Decoding<'a> {
        (**self).decode_record(input, out)
    }
}

/// The record a decoder is given.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Input<'a> {
    /// The record's value (a tombstone never reaches a decoder).
    pub value: &'a [u8],
    /// The whole record: key, headers, topic, partition, offset, timestamp.
    pub record: Option<&'a Record>,
    /// The time of points whose data has none: the Kafka record's timestamp.
    pub default_time: Option<Timestamp>,
}

impl<'a> Input<'a> {
    /// An input of `value` alone, without a Kafka record.
    pub fn new(value: &'a [u8], default_time: Option<Timestamp>) -> Self {
        Input {
            value,
            record: None,
            default_time,
        }
    }

    /// The input of a Kafka record; `None` for a tombstone, which carries no point.
    pub fn of_record(record: &'a Record, default_time: Option<Timestamp>) -> Option<Self> {
        Some(Input {
            value: record.value.as_deref()?,
            record: Some(record),
            default_time,
        })
    }
}

/// What decoding one record came to.
pub type DecodeResult = Result<Option<DecodeFailure>, Unavailable>;

/// A decoder's answer: done, or a future to wait for.
#[must_use = "a decoding does nothing unless it is awaited"]
pub enum Decoding<'a> {
    /// Decoded.
    Done(DecodeResult),
    /// Decoding goes on in this future.
    Pending(Pin<Box<dyn Future<Output = DecodeResult> + Send + 'a>>),
}

impl<'a> Decoding<'a> {
    /// Every point was decoded.
    pub fn ok() -> Self {
        Decoding::Done(Ok(None))
    }

    /// Some or all of the record could not be decoded.
    pub fn failed(failure: DecodeFailure) -> Self {
        Decoding::Done(Ok(Some(failure)))
    }

    /// Decoding needs to wait for `future`.
    pub fn pending(future: impl Future<Output = DecodeResult> + Send + 'a) -> Self {
        Decoding::Pending(Box::pin(future))
    }

    /// Waits for the answer.
    pub async fn finish(self) -> DecodeResult {
        match self {
            Decoding::Done(result) => result,
            Decoding::Pending(future) => future.await,
        }
    }
}

impl fmt::Debug for Decoding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decoding::Done(r) => f.debug_tuple("Done").field(r).finish(),
            Decoding::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// What could not be decoded from one record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeFailure {
    /// Why, as the dead-letter header names it.
    pub class: ErrorClass,
    /// What went wrong, with positions where there are any.
    pub message: String,
    /// The bad part of the value when only part of it is bad (the bad lines of a
    /// line-protocol record); `None` means the whole value.
    pub bad_part: Option<Vec<u8>>,
}

impl DecodeFailure {
    /// The whole record is bad, for `message`.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        DecodeFailure {
            class,
            message: message.into(),
            bad_part: None,
        }
    }

    /// Only `bad_part` of the record is bad; the rest was decoded.
    pub fn with_bad_part(mut self, bad_part: Vec<u8>) -> Self {
        self.bad_part = Some(bad_part);
        self
    }
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

/// Where a decoder puts the points it finds.
pub struct Emitter<'s> {
    sink: &'s mut (dyn for<'p> FnMut(Decoded<'p>) + Send),
    /// Whether the pipeline takes line-protocol lines as they came ([`Decoded::Line`]):
    /// only when it adds nothing to the points.
    forward_lines: bool,
}

impl fmt::Debug for Emitter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("forward_lines", &self.forward_lines)
            .finish_non_exhaustive()
    }
}

impl<'s> Emitter<'s> {
    pub(crate) fn new(
        sink: &'s mut (dyn for<'p> FnMut(Decoded<'p>) + Send),
        forward_lines: bool,
    ) -> Self {
        Emitter {
            sink,
            forward_lines,
        }
    }

    /// Hands on one decoded point.
    pub fn point(&mut self, point: PointRef<'_>) {
        (self.sink)(Decoded::Point(point, Raw::default()));
    }

    /// Hands on a line-protocol point with its bytes as they came.
    pub(crate) fn point_with_raw(&mut self, point: PointRef<'_>, raw: Raw<'_>) {
        (self.sink)(Decoded::Point(point, raw));
    }

    /// Hands on a valid line to write as it is.
    pub(crate) fn line(&mut self, line: Decoded<'_>) {
        (self.sink)(line);
    }

    pub(crate) fn forwards_lines(&self) -> bool {
        self.forward_lines
    }
}

/// Decodes one value outside a pipeline and collects the points: for trying a decoder,
/// and in tests.
pub async fn decode_value<D: Decode + ?Sized>(
    decoder: &D,
    value: &[u8],
    default_time: Option<Timestamp>,
) -> Result<(Vec<Point>, Option<DecodeFailure>), Unavailable> {
    let mut points = Vec::new();
    let mut sink = |decoded: Decoded<'_>| {
        if let Decoded::Point(point, _) = decoded {
            points.push(point.into_owned());
        }
    };
    let failure = {
        let mut out = Emitter::new(&mut sink, false);
        decoder
            .decode_record(Input::new(value, default_time), &mut out)
            .finish()
            .await?
    };
    Ok((points, failure))
}
